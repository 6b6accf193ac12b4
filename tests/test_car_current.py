"""dinamics.car_current.CarCurrent: the car's current from $GG and the estimates built on it
(pure logic on ticks; the clock here starts just before the ticks wrap)."""
from adafruit_ticks import ticks_add

from dinamics import headroom as hr
from dinamics.car_current import CarCurrent

T0 = (1 << 29) - 3000  # ticks wrap at 2**29 ms: every session below crosses the wrap


def at(ms):
    return ticks_add(T0, ms)


def charging(ms=0):
    c = CarCurrent()
    c.enter_c(at(ms))
    return c


def test_estimate_outside_c_before_the_first_gg_fresh_and_old():
    c = CarCurrent()
    assert c.estimate(at(0), 16) == 0.0 and c.draw() == 0.0  # not in state C
    assert not c.on_gg(10000, at(0))  # a $GG outside state C does not count
    c.enter_c(at(0))
    assert c.estimate(at(hr.GG_STALE_MS - 1), 16) == 0.0  # no $GG yet: conservative
    assert c.estimate(at(hr.GG_STALE_MS), 16) == 16.0  # ... then the command
    assert c.draw() is None
    assert c.on_gg(12000, at(3500))
    assert c.estimate(at(3500 + hr.GG_STALE_MS), 16) == 12.0 and c.draw() == 12.0
    assert c.estimate(at(3501 + hr.GG_STALE_MS), 10) == 10.0  # old: min($GG, command)
    assert c.estimate(at(3501 + hr.GG_STALE_MS), 16) == 12.0
    assert c.estimate(at(3600), 16, cap=6.0) == 6.0  # the heartbeat fallback caps it
    c.leave_c(at(4000))
    assert c.estimate(at(4000), 16) == 0.0 and c.may_draw(at(8000)) and not c.may_draw(at(8001))


def test_a_change_between_two_gg_makes_a_reading_mixed():
    c = charging()
    c.on_gg(16000, at(1000))
    c.on_gg(16200, at(2000))  # < 0.5 A: no change
    assert c.change_t == at(1000) and c.before == 0.0
    c.on_gg(10000, at(3000))
    assert c.change_t == at(3000) and c.before == 16.2
    # a reading that ended at 3100 with a 300 ms window may hold both values
    assert c.during(at(3100), 10.0, True, 300) == (10.0, 16.2)
    assert c.during(at(3300), 10.0, True, 300) == (10.0, 10.0)  # the change was before it
    assert c.during(at(3100), 10.0, False, 300) == (10.0, 10.0)  # link down: no $GG to trust
    assert c.during(at(3100), 8.0, True, 300) == (8.0, 8.0)  # the estimate is not the $GG


def test_fresh_for_after_and_known():
    c = charging()
    c.on_gg(16000, at(1000))
    assert c.fresh_for(at(1200), 300) and not c.fresh_for(at(1301), 300)
    assert c.after(at(999)) and not c.after(at(1000))
    assert not c.known(at(1400), at(1400), 300, None, None)  # one $GG only
    c.on_gg(16000, at(2000))
    assert c.known(at(2400), at(2400), 300, None, None)  # it did not move
    assert not c.known(at(2400), at(2400), 300, at(2000), None)  # the CTs moved at that $GG
    assert not c.known(at(2400), at(2400), 300, None, at(0))  # a command change not long ago
    settled = hr.SETTLE_MS + hr.GG_PERIOD_MS
    assert c.known(at(2400), at(2400), 300, None, at(2400 - settled))
    assert not c.known(at(2001 + hr.GG_STALE_MS), at(2001 + hr.GG_STALE_MS), 300, None, None)


def test_followed_and_following_a_command_change():
    c = charging()
    c.on_gg(6000, at(0))
    assert c.following(at(100), 16, at(0)) and not c.followed(at(100), 16, at(0))
    c.on_gg(15800, at(2000))
    c.on_gg(15900, at(3000))
    assert c.prior_t == at(2000) and c.followed(at(3000), 16, at(1000))
    assert not c.followed(at(3000), 16, at(2000))  # the earlier $GG was not after the change
    assert not c.followed(at(3000 + hr.GG_PERIOD_MS + 1), 16, at(1000))  # the last $GG is old
    assert not c.followed(at(3000), 20, at(1000))  # a car that draws less than offered
    assert not c.following(at(3000), 16, at(1000))  # at the command
    assert not c.following(at(hr.SETTLE_MS), 20, at(0))  # SETTLE_MS over
    c.asked(at(3000))
    assert c.asked_within(at(3249), 250) and not c.asked_within(at(3250), 250)


def test_not_above_the_command():
    c = CarCurrent()
    assert not c.not_above(at(0), 16)  # not charging
    c.enter_c(at(0))
    assert not c.not_above(at(100), 16)  # no $GG this session yet
    c.on_gg(10000, at(1000))
    assert c.not_above(at(1000), 16)  # rising towards 16
    assert c.not_above(at(1000 + hr.GG_PERIOD_MS), 10)  # at it (within FOLLOWED_A)
    assert c.not_above(at(1000), 9.6) and not c.not_above(at(1000), 9.5)
    assert not c.not_above(at(1001 + hr.GG_PERIOD_MS), 16)  # $GG too old to tell
    c.on_gg(20000, at(2000))
    assert not c.not_above(at(2000), 16)  # above: still following a cut
    c.leave_c(at(3000))
    assert not c.not_above(at(3000), 32)


def test_the_last_gg_before_a_change_and_a_gg_asked_since_a_reading():
    c = charging()
    c.on_gg(6000, at(1000))
    c.on_gg(6000, at(1250))
    assert c.before_t is None
    c.on_gg(12000, at(1500))  # moved: the last $GG that showed 6 A was the one at 1250
    assert (c.before, c.change_t, c.before_t) == (6.0, at(1500), at(1250))
    c.on_gg(12000, at(1750))
    assert c.before_t == at(1250)  # kept until the next change
    assert not c.asked_since(at(1800))
    c.asked(at(1800))
    assert c.asked_since(at(1800)) and c.asked_since(at(1700)) and not c.asked_since(at(1801))


def test_two_changes_within_a_gg_period_keep_the_range_of_both():
    # a car starting 0 -> 6 -> 8 A: a reading may hold a CT captured before the car drew at all
    c = charging()
    c.on_gg(0, at(800))
    c.on_gg(6000, at(1000))
    c.on_gg(8000, at(1100))
    assert (c.before, c.before_t, c.change_t) == (0.0, at(800), at(1100))
    assert c.during(at(1200), 8.0, True, 300) == (0.0, 8.0)
    # a change back within the period: the range spans the two last values
    c.on_gg(5000, at(1300))
    assert c.before == 8.0 and c.during(at(1400), 5.0, True, 300) == (5.0, 8.0)
    # a change long after the last one: only it counts
    c.on_gg(5000, at(2300))
    c.on_gg(12000, at(3500))
    assert c.before == 5.0 and c.before_t == at(2300)
