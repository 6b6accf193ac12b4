"""dinamics.phase_detect.PhaseDetector: which phases carry the car, from CT changes across the
car's own current changes (pure logic; ticks and readings passed in)."""
from dinamics.phase_detect import PhaseDetector

ALL = 7  # three CTs fitted


def always(_tick):
    return True


def test_a_confirmed_car_step_on_one_phase_is_detected():
    d = PhaseDetector()
    d.baseline((3.0, 2.0, 4.0), 0.0)  # the car draws nothing
    assert not d.on_gg(16.0, 1000, ALL, (3.0, 2.0, 4.0), always)  # a change: wait for confirmation
    assert d.mask == 0
    assert d.on_gg(16.0, 2000, ALL, (3.1, 18.0, 4.0), always)  # confirmed, L2 moved by 16 A
    assert d.mask == 2


def test_no_verdict_until_a_reading_lies_after_the_change():
    d = PhaseDetector()
    d.baseline((3.0, 2.0, 4.0), 0.0)
    d.on_gg(16.0, 1000, ALL, (3.0, 2.0, 4.0), always)
    assert not d.on_gg(16.0, 2000, ALL, (3.0, 10.0, 4.0), lambda tick: False)
    assert d.mask == 0 and d.pend_ev == 16.0
    assert d.on_gg(16.0, 3000, ALL, (3.0, 18.0, 4.0), always) and d.mask == 2


def test_a_house_load_moving_at_the_same_time_is_no_evidence():
    d = PhaseDetector()
    d.baseline((3.0, 2.0, 4.0), 0.0)
    d.on_gg(16.0, 1000, ALL, (3.0, 2.0, 4.0), always)
    # L2 follows the car, but L1 moved by 9 A as well (an oven): neither ~0 nor ~16 A
    assert not d.on_gg(16.0, 2000, ALL, (12.0, 18.0, 4.0), always)
    assert d.mask == 0


def test_a_3_phase_car_and_a_later_event_can_only_add_phases():
    d = PhaseDetector()
    d.baseline((1.0, 1.0, 1.0), 0.0)
    d.on_gg(10.0, 1000, ALL, (1.0, 1.0, 1.0), always)
    assert d.on_gg(10.0, 2000, ALL, (1.0, 11.0, 1.0), always) and d.mask == 2
    d.on_gg(20.0, 3000, ALL, (1.0, 11.0, 1.0), always)
    assert d.on_gg(20.0, 4000, ALL, (11.0, 21.0, 11.0), always)
    assert d.mask == 7
    d.reset()
    assert d.mask == 0 and not d.snap_ok


def test_one_ct_tells_nothing():
    d = PhaseDetector()
    d.baseline((3.0, 0.0, 0.0), 0.0)
    d.on_gg(16.0, 1000, 1, (3.0, 0.0, 0.0), always)
    assert not d.on_gg(16.0, 2000, 1, (19.0, 0.0, 0.0), always)
    assert d.mask == 0
