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
