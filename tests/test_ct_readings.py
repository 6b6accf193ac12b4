"""dinamics.ct_readings.CtReadings: the balancer's view of the CT readings (pure logic on ticks;
the clock here starts just before the ticks wrap)."""
from adafruit_ticks import ticks_add

from dinamics.ct_readings import PERIOD_DEFAULT_MS, CtReadings

T0 = (1 << 29) - 1000  # ticks wrap at 2**29 ms: the readings below cross the wrap
ALL = 7
OK = (0, 0, 0)


def at(ms):
    return ticks_add(T0, ms)


def test_each_reading_once_never_back_in_time_and_the_period_follows():
    c = CtReadings()
    assert c.accept(at(0), (5.0, 5.0, 5.0), ALL, OK, ALL)
    assert not c.accept(at(0), (5.0, 5.0, 5.0), ALL, OK, ALL)  # the same one again
    assert not c.accept(at(-100), (5.0, 5.0, 5.0), ALL, OK, ALL)  # older
    for i in range(1, 30):
        assert c.accept(at(i * 100), (5.0, 5.0, 5.0), ALL, OK, ALL)
    assert abs(c.period - 100) <= 2 and c.good_t == at(2900) and c.readings == 30
    c.accept(at(9000), (5.0, 5.0, 5.0), ALL, OK, ALL)  # a gap > 2 s: not a period
    assert abs(c.period - 100) <= 2
    assert c.window_ms(ALL) == 3 * c.period and c.window_ms(0) == c.period


def test_an_implausible_reading_is_not_fresh_and_steadiness_counts_fitted_phases():
    c = CtReadings()
    assert not c.accept(at(0), (5.0, 5.0, 5.0), 3, OK, ALL)  # CT3 not valid
    assert c.bad_readings == 1 and c.good_t is None and c.last_t == at(0)
    assert not c.accept(at(100), (5.0, 0.0, 0.0), 1, OK, 0)  # nothing fitted
    assert c.accept(at(200), (5.0, 0.0, 0.0), 1, OK, 1)
    assert not c.steady and c.jump_t == at(200)  # from 0 A
    assert c.accept(at(300), (5.5, 9.0, 0.0), 1, OK, 1)
    assert c.steady and c.jump_t == at(200)  # L2 is not fitted
    assert c.accept(at(400), (7.0, 9.0, 0.0), 1, OK, 1) and not c.steady


def test_window_after_needs_the_latest_reading_to_be_good():
    c = CtReadings()
    assert not c.window_after(at(0))
    c.accept(at(1000), (5.0, 5.0, 5.0), ALL, OK, ALL)
    # its values span a round of the three CTs (ct_meter posts after every CT)
    assert c.window_after(at(1000 - 3 * PERIOD_DEFAULT_MS))
    assert not c.window_after(at(1001 - 3 * PERIOD_DEFAULT_MS))
    c.accept(at(1300), (5.0, 5.0, 5.0), 1, OK, 1)  # one CT: its own window
    assert c.window_after(at(1300 - PERIOD_DEFAULT_MS))
    assert not c.window_after(at(1301 - PERIOD_DEFAULT_MS))
    c.accept(at(1600), (5.0, 5.0, 5.0), 0, OK, ALL)  # a bad one came after it
    assert not c.window_after(at(0))


def test_stale_once_per_outage_and_fresh_again():
    c = CtReadings()
    assert c.went_stale(at(3000), None, 3000) is None  # no reference yet
    assert c.went_stale(at(3000), at(0), 3000) is None
    assert c.went_stale(at(3001), at(0), 3000) == 3001  # since boot
    assert c.stale and c.went_stale(at(5000), at(0), 3000) is None  # once
    c.accept(at(6000), (1.0, 1.0, 1.0), ALL, OK, ALL)
    assert c.fresh_again() and not c.fresh_again()
    assert c.went_stale(at(9500), at(0), 3000) == 3500  # since the last good reading
    c.forget_stale()
    assert not c.stale and not c.fresh_again()
