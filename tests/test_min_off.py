"""dinamics.min_off.MinOff: the minimum-off time of a pause and its anti-cycling back-off (pure
logic on ticks; the clock here starts just before the ticks wrap)."""
from adafruit_ticks import ticks_add

from dinamics import headroom as hr
from dinamics.min_off import MinOff

BASE = 30000
T0 = (1 << 29) - 5000  # ticks wrap at 2**29 ms: every figure below crosses the wrap


def at(ms):
    return ticks_add(T0, ms)


def cycle(mo, start_ms, off_ms=None):
    """A shortage pause at start_ms, resumed off_ms later (None: as soon as allowed); returns
    the pause's minimum-off time."""
    mo.pause(at(start_ms), True)
    got = mo.ms(BASE)
    assert not mo.over(at(start_ms + got - 1), BASE) and mo.over(at(start_ms + got), BASE)
    mo.resumed(at(start_ms + (got if off_ms is None else off_ms)))
    return got


def test_back_off_after_the_free_pauses_and_capped():
    assert (hr.CYCLE_FREE_PAUSES, hr.OFF_BACKOFF_MAX) == (2, 3)
    mo = MinOff()
    got = []
    t = 0
    for _ in range(8):
        off = cycle(mo, t)
        got.append(off)
        t += off + 60000  # the next pause a minute after the resume: cycling
        mo.tick(at(t))
    assert got == [BASE, BASE, BASE, 2 * BASE, 4 * BASE, 8 * BASE, 8 * BASE, 8 * BASE]


def cycles(mo, t, n):
    """n shortage pauses 100 s apart (each resumed as soon as allowed); returns the time after."""
    for _ in range(n):
        cycle(mo, t)
        t += 100000
    return t


def test_a_calm_window_or_an_unplug_starts_over():
    mo = MinOff()
    t = cycles(mo, 0, 4)
    assert mo.level == 1
    t += hr.CYCLE_WINDOW_MS  # charging calmly since the last resume
    mo.tick(at(t))
    assert cycle(mo, t) == BASE and mo.in_row == 0
    cycles(mo, t + 100000, 3)
    assert mo.level == 1
    mo.forget()
    assert cycle(mo, t + 500000) == BASE


def test_fault_pauses_do_not_count_and_a_waived_pause_may_restart_at_once():
    mo = MinOff()
    t = cycles(mo, 0, 3)
    mo.pause(at(t), False)  # stale CT data: a fault, plain min_off_ms, the row is kept
    assert mo.ms(BASE) == BASE and mo.in_row == 2
    mo.resumed(at(t + 40000))
    mo.pause(at(t + 100000), False, waive=True)  # solar: waiting for export
    assert mo.over(at(t + 100000), BASE)
    mo.resumed(at(t + 140000))
    assert cycle(mo, t + 200000) == 2 * BASE  # the third cycling pause in a row
