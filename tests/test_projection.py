"""dinamics.projection.Projection: what one CT reading leaves for the car (pure arithmetic, no
clock)."""
from dinamics import headroom as hr
from dinamics.projection import Projection

BREAKER = 25
L1 = 1


def test_a_steady_car_gives_one_headroom_and_a_base():
    p = Projection()
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, True, True, 16)
    assert not p.mixed and p.h_hi == p.h_lo == hr.headroom(BREAKER, (20.0, 0.0, 0.0), 16.0, L1)
    assert p.base == [4.0, -16.0, -16.0]
    p.project(BREAKER, (30.0, 0.0, 0.0), L1, 16.0, 16.0, None, True, False, 16)
    assert p.base == [4.0, -16.0, -16.0]  # not unambiguous: the base stays


def test_a_car_that_changed_during_the_reading_uses_the_base():
    p = Projection()
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, True, True, 16)
    p.project(BREAKER, (14.0, 0.0, 0.0), L1, 10.0, 16.0, None, True, True, 10)
    assert p.mixed and (p.ev_lo, p.ev_hi) == (10.0, 16.0)
    assert p.h_hi == hr.headroom_mixed(BREAKER, (14.0, 0.0, 0.0), 10.0, 16.0, L1, [4.0, 0, 0])
    assert p.h_lo == hr.headroom(BREAKER, (14.0, 0.0, 0.0), 10.0, L1)
    assert p.base[0] == 4.0  # a mixed reading never becomes the base


def test_a_new_overload_caps_the_car_and_relaxing_never_assumes_more_than_the_command():
    p = Projection()
    p.project(BREAKER, (30.0, 0.0, 0.0), L1, 10.0, 16.0, 12.0, False, False, 16)
    assert p.mixed and (p.ev_lo, p.ev_hi) == (10.0, 12.0)  # mixed is judged before the cap
    p.project(BREAKER, (30.0, 0.0, 0.0), L1, 16.0, 16.0, 12.0, False, False, 16)
    assert (p.ev_lo, p.ev_hi) == (12.0, 12.0) and p.h_lo == p.h_hi
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, False, False, 10)
    assert (p.ev_lo, p.ev_hi) == (10.0, 16.0)
    assert p.h_lo == hr.headroom(BREAKER, (20.0, 0.0, 0.0), 10.0, L1) < p.h_hi
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, False, False, None)  # not charging
    assert p.h_lo == p.h_hi


def test_an_overload_is_new_until_a_change_follows_and_escalates_after_escalate_ms():
    from adafruit_ticks import ticks_add
    t0 = (1 << 29) - 2000  # across the tick wrap

    def at(ms):
        return ticks_add(t0, ms)

    p = Projection()
    assert not p.overload(at(0), 0.0, None) and p.over_since is None
    assert p.overload(at(0), 2.0, None)  # no command change yet: new
    assert p.overload(at(100), 2.0, at(-500))  # the last change came before it began
    assert not p.overload(at(200), 2.0, at(150))  # a cut answered it
    assert not p.escalation_due(at(hr.ESCALATE_MS - 1), at(150))
    assert not p.escalation_due(at(hr.ESCALATE_MS), at(150))  # counted from the last change too
    assert p.escalation_due(at(150 + hr.ESCALATE_MS), at(150))
    p.escalated(at(7000))
    assert p.over_since == at(7000) and not p.escalation_due(at(7100), None)
    p.calm()
    assert p.over_since is None
    assert not p.overload(at(8000), -1.0, None)


def test_the_export_caps_both_headrooms_in_solar_mode():
    p = Projection()
    p.project(BREAKER, (-9.0, 0.0, 0.0), L1, 0.0, 0.0, None, True, True, None)
    assert p.limit_to_export((-9.0, 0.0, 0.0), L1)
    assert p.h_hi == p.h_lo == 9.0 + hr.MARGIN_A  # zero net import at 9 A
    p.project(BREAKER, (-30.0, 0.0, 0.0), L1, 0.0, 0.0, None, True, True, None)
    assert not p.limit_to_export((-30.0, 0.0, 0.0), L1)  # the breaker is the lower limit


def test_decide_cuts_on_the_optimistic_and_raises_on_the_pessimistic_headroom():
    assert hr.decide(16, 10.0, 30.0, 6, 32) == hr.regulate(16, 10.0, 6, 32)  # a cut
    assert hr.decide(16, 30.0, 10.0, 6, 32) == (hr.HOLD, 16)  # no raise on a transient
    assert hr.decide(16, 30.0, 25.0, 6, 32) == hr.regulate(16, 25.0, 6, 32)
    assert hr.decide(16, 3.0, 30.0, 6, 32)[0] == hr.SHORT


def test_a_mixed_reading_takes_the_house_at_its_last_known_value_within_the_ct_value():
    # house 4 A on L1 (a base with the car at 16 A), then the car comes down to 10 A (a cut)
    p = Projection()
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, True, True, 16)
    p.project(BREAKER, (17.0, 0.0, 0.0), L1, 10.0, 16.0, None, True, True, 10)
    assert p.h_hi == BREAKER - 4.0  # not 25 - max(0, 17 - 16): the CT saw the car at 13 A
    p.project(BREAKER, (13.0, 0.0, 0.0), L1, 10.0, 16.0, None, True, True, 10)
    assert p.h_hi == BREAKER - 3.0  # the CT value allows no more (the house went down)
    p.project(BREAKER, (20.5, 0.0, 0.0), L1, 10.0, 16.0, None, True, True, 10)
    assert p.h_hi == BREAKER - 4.5  # nor less (a small rise, within STEP_A)
    assert hr.mixed_load(19.0, 10.0, 16.0, 4.0, 0) == 4.0
    assert hr.mixed_load(22.0, 10.0, 16.0, 4.0, 0) == 12.0  # 6 > 4 + STEP_A: a house step


def test_a_phase_seen_rising_with_the_car_known_is_taken_pessimistically_once():
    p = Projection()
    p.project(BREAKER, (6.0, 6.0, 6.0), 7, 6.0, 6.0, None, True, True, 12, 100)  # house 0
    p.project(BREAKER, (9.9, 6.0, 6.0), 7, 6.0, 6.0, None, True, False, 12, 400)  # part of a step
    assert p.stepped == L1 and p.step_t[0] == 400 and p.new_step and p.base[0] == 0.0
    # the car rises 6 -> 12 A during the next reading: L1 11 A is house 5 + car 6 or -1 + 12.
    # A $GG taken after the marked reading (420) still showed 6 A: the rise was the house's
    p.project(BREAKER, (11.0, 6.0, 11.0), 7, 6.0, 12.0, None, True, True, 12, 700, 420)
    assert p.h_hi == BREAKER - 5.0  # the whole step
    assert p.stepped == 0 and p.base[0] == 5.0  # that is the house now ...
    p.project(BREAKER, (17.0, 12.0, 12.0), 7, 6.0, 12.0, None, True, True, 10, 1000, 420)
    assert p.h_hi == BREAKER - 5.0  # ... so the car arriving at 12 A is no second step
    p.project(BREAKER, (17.0, 12.0, 12.0), 7, 12.0, 12.0, None, True, True, 10, 1300)
    assert p.stepped == 0 and p.base == [5.0, 0.0, 0.0]


def test_a_rise_the_car_may_have_caused_is_no_house_step():
    p = Projection()
    p.project(BREAKER, (16.3, 0.0, 0.0), L1, 8.0, 8.0, None, True, True, 8, 100)  # house 8.3
    # the car rises 8 -> 10 A (an older command) just after its $GG (at 50): the CT sees part
    p.project(BREAKER, (17.33, 0.0, 0.0), L1, 8.0, 8.0, None, True, False, 8, 400)
    assert p.stepped == L1
    # the next $GG (450) shows 10 A; the last one that showed 8 A was taken before the reading
    p.project(BREAKER, (18.3, 0.0, 0.0), L1, 8.0, 10.0, None, True, True, 8, 700, 50)
    assert p.h_hi == BREAKER - 8.3 and p.stepped == 0  # the base, not 10.3 (a hard shortage)


def test_a_reading_the_answering_gg_shows_mixed_is_no_base():
    # the car rose 10 -> 11 A just after its $GG: CT2 caught part of it (L2 15.31 A, house
    # 4.5 A). The reading looked steady with the car known (a base: L2 5.31 A); the $GG that
    # answers it shows 11 A, the same reading is judged again as mixed: the base it set is
    # withdrawn, or the car's own rise would stand in for the house (a needless 1 A cut)
    p = Projection()
    p.project(16, (14.2, 14.5, 10.3), 7, 10.0, 10.0, None, True, True, 11, 100)
    p.project(16, (14.2, 15.31, 10.3), 7, 10.0, 10.0, None, True, True, 11, 200)
    assert abs(p.base[1] - 5.31) < 1e-9
    p.project(16, (14.2, 15.31, 10.3), 7, 10.0, 11.0, None, True, True, 11, 200, 150)
    assert [round(b, 6) for b in p.base] == [4.2, 4.5, 0.3] and abs(p.h_hi - 11.5) < 1e-9
