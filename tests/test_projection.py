"""dinamics.projection.Projection: what one CT reading leaves for the car (pure arithmetic, no
clock)."""
from dinamics import headroom as hr
from dinamics.projection import Projection

BREAKER = 25
L1 = 1


def test_a_steady_car_gives_one_headroom_and_a_base():
    p = Projection()
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, True, 16)
    assert not p.mixed and p.h_hi == p.h_lo == hr.headroom(BREAKER, (20.0, 0.0, 0.0), 16.0, L1)
    assert p.base == [4.0, -16.0, -16.0]
    p.project(BREAKER, (30.0, 0.0, 0.0), L1, 16.0, 16.0, None, False, 16)
    assert p.base == [4.0, -16.0, -16.0]  # not unambiguous: the base stays


def test_a_car_that_changed_during_the_reading_uses_the_base():
    p = Projection()
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, True, 16)
    p.project(BREAKER, (14.0, 0.0, 0.0), L1, 10.0, 16.0, None, True, 10)
    assert p.mixed and (p.ev_lo, p.ev_hi) == (10.0, 16.0)
    assert p.h_hi == hr.headroom_mixed(BREAKER, (14.0, 0.0, 0.0), 10.0, 16.0, L1, [4.0, 0, 0])
    assert p.h_lo == hr.headroom(BREAKER, (14.0, 0.0, 0.0), 10.0, L1)
    assert p.base[0] == 4.0  # a mixed reading never becomes the base


def test_a_new_overload_caps_the_car_and_relaxing_never_assumes_more_than_the_command():
    p = Projection()
    p.project(BREAKER, (30.0, 0.0, 0.0), L1, 10.0, 16.0, 12.0, False, 16)
    assert p.mixed and (p.ev_lo, p.ev_hi) == (10.0, 12.0)  # mixed is judged before the cap
    p.project(BREAKER, (30.0, 0.0, 0.0), L1, 16.0, 16.0, 12.0, False, 16)
    assert (p.ev_lo, p.ev_hi) == (12.0, 12.0) and p.h_lo == p.h_hi
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, False, 10)
    assert (p.ev_lo, p.ev_hi) == (10.0, 16.0)
    assert p.h_lo == hr.headroom(BREAKER, (20.0, 0.0, 0.0), 10.0, L1) < p.h_hi
    p.project(BREAKER, (20.0, 0.0, 0.0), L1, 16.0, 16.0, None, False, None)  # not charging
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
    p.project(BREAKER, (-9.0, 0.0, 0.0), L1, 0.0, 0.0, None, True, None)
    assert p.limit_to_export((-9.0, 0.0, 0.0), L1)
    assert p.h_hi == p.h_lo == 9.0 + hr.MARGIN_A  # zero net import at 9 A
    p.project(BREAKER, (-30.0, 0.0, 0.0), L1, 0.0, 0.0, None, True, None)
    assert not p.limit_to_export((-30.0, 0.0, 0.0), L1)  # the breaker is the lower limit


def test_decide_cuts_on_the_optimistic_and_raises_on_the_pessimistic_headroom():
    assert hr.decide(16, 10.0, 30.0, 6, 32) == hr.regulate(16, 10.0, 6, 32)  # a cut
    assert hr.decide(16, 30.0, 10.0, 6, 32) == (hr.HOLD, 16)  # no raise on a transient
    assert hr.decide(16, 30.0, 25.0, 6, 32) == hr.regulate(16, 25.0, 6, 32)
    assert hr.decide(16, 3.0, 30.0, 6, 32)[0] == hr.SHORT
