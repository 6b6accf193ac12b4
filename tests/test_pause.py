"""dinamics.pause.Pause: the balancer pause, the only writer of its reason, driving the
minimum-off time (pure logic on ticks; the clock here starts just before the ticks wrap)."""
from adafruit_ticks import ticks_add

from dinamics import pause as pz
from dinamics.pause import Pause

MIN_OFF = 30000
T0 = (1 << 29) - 5000  # ticks wrap at 2**29 ms: the figures below cross the wrap


def at(ms):
    return ticks_add(T0, ms)


def test_a_pause_begins_once_and_may_resume_after_min_off_across_the_wrap():
    p = Pause()
    assert p.reason is None
    assert p.begin(at(0), pz.NO_HEADROOM)
    assert not p.begin(at(1000), pz.NO_HEADROOM)  # already paused: not a new pause
    assert p.reason == pz.NO_HEADROOM
    assert not p.may_resume(at(MIN_OFF - 1), MIN_OFF)  # counted from the first begin
    assert p.may_resume(at(MIN_OFF), MIN_OFF)
    p.resumed(at(MIN_OFF + 2000))
    assert p.reason is None and p.min_off.resumed_at == at(MIN_OFF + 2000)


def test_stale_data_while_paused_is_a_fault_and_then_waits_for_room():
    p = Pause()
    assert p.begin(at(0), pz.SOLAR_WAIT, waive_min_off=True)
    assert p.may_resume(at(0), MIN_OFF)  # solar's first start waives min_off
    p.data_stale()
    assert p.reason == pz.STALE and not p.may_resume(at(MIN_OFF - 1), MIN_OFF)
    assert not p.end_solar_wait() and p.reason == pz.STALE
    p.data_back()
    assert p.reason == pz.NO_HEADROOM
    p.data_back()  # only a stale pause changes
    assert p.reason == pz.NO_HEADROOM


def test_solar_wait_ends_and_cancel_is_not_a_resume():
    p = Pause()
    assert not p.end_solar_wait()  # nothing to end
    p.begin(at(0), pz.SOLAR_WAIT, waive_min_off=True)
    assert p.end_solar_wait() and p.reason is None
    p.begin(at(100), pz.NO_HEADROOM)
    p.cancel()
    assert p.reason is None and p.min_off.resumed_at is None  # no cycling history from it


def test_cycling_pauses_back_off_and_an_unplug_forgets_them():
    p = Pause()
    t = 0
    got = []
    for _ in range(4):
        p.begin(at(t), pz.NO_HEADROOM)
        got.append(p.off_ms(MIN_OFF))
        t += p.off_ms(MIN_OFF)
        p.resumed(at(t))
        t += 60000  # the next shortage a minute after the resume: cycling
        p.tick(at(t))
    assert got == [MIN_OFF, MIN_OFF, MIN_OFF, 2 * MIN_OFF]
    p.unplugged()
    p.begin(at(t), pz.NO_HEADROOM)
    assert p.off_ms(MIN_OFF) == MIN_OFF
    p.reset()
    assert p.reason is None and p.min_off.paused_at is None


def test_the_solar_import_timer_runs_across_the_wrap_and_a_pause_or_resume_restarts_it():
    p = Pause()
    assert not p.import_lasted(at(0), True, 20000)
    assert not p.import_lasted(at(19999), True, 20000)
    assert p.import_lasted(at(20000), True, 20000)
    assert not p.import_lasted(at(20100), False, 20000)  # a break starts over
    assert not p.import_lasted(at(20200), True, 20000) and p.import_since == at(20200)
    p.begin(at(30000), pz.SOLAR_WAIT)
    assert p.import_since is None
    p.import_lasted(at(31000), True, 20000)
    p.resumed(at(32000))
    assert p.import_since is None
