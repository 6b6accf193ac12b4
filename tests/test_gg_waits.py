"""dinamics.gg_waits.GgWaits: balancer decisions that wait for the $GG that settles them, at most
GG_DEFER_MAX_MS (pure logic on ticks; the clock here starts just before the ticks wrap)."""
from adafruit_ticks import ticks_add

from dinamics import headroom as hr
from dinamics.car_current import CarCurrent
from dinamics.gg_waits import GgWaits

T0 = (1 << 29) - 500  # ticks wrap at 2**29 ms: every wait below crosses the wrap
MAX = hr.GG_DEFER_MAX_MS


def at(ms):
    return ticks_add(T0, ms)


def charging_car(gg_ms):
    c = CarCurrent()
    c.enter_c(at(-5000))
    c.on_gg(16000, at(gg_ms))
    return c


def test_a_cut_waits_for_a_gg_after_its_reading_at_most_max():
    car = charging_car(-1000)
    w = GgWaits()
    assert w.cut(at(0), at(0), False, car) and w.ask and w.waiting()  # begins: ask for a $GG
    assert w.cut(at(100), at(100), False, car) and not w.ask  # still waiting, asked already
    assert w.cut_ref == at(0)
    assert not w.cut(at(MAX), at(MAX), False, car) and not w.waiting()  # over: decide
    assert w.cut(at(MAX + 100), at(MAX + 100), False, car) and w.ask  # a new wait
    car.on_gg(15000, at(MAX + 150))  # the $GG it waited for (after the reading)
    assert not w.cut(at(MAX + 200), at(MAX + 200), False, car) and not w.waiting()


def test_a_new_actual_overload_or_a_gg_already_after_the_reading_decides_at_once():
    w = GgWaits()
    assert not w.cut(at(0), at(0), True, charging_car(-1000)) and not w.ask
    assert not w.cut(at(0), at(-100), False, charging_car(-50)) and not w.waiting()


def test_a_hard_over_pause_waits_until_the_car_is_known():
    w = GgWaits()
    assert w.pause(at(0), False, False) and w.ask
    assert w.pause(at(MAX - 1), False, False) and not w.ask
    assert not w.pause(at(MAX), False, False)
    assert w.pause(at(MAX + 1), False, False) and w.ask
    assert not w.pause(at(MAX + 2), False, True) and not w.waiting()  # known now
    assert not w.pause(at(0), True, False) and not w.ask  # not charging / no link
    w.pause(at(0), False, False)
    w.cut(at(0), at(0), False, charging_car(-1000))
    w.no_pause()
    assert w.waiting()
    w.no_cut()
    assert not w.waiting()
    w.pause(at(0), False, False)
    w.reset()
    assert not w.waiting() and not w.ask
