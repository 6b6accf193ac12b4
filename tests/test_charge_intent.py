"""dinamics.charge_intent.ChargeIntent: the enable intent, plug&charge and the auto-stops of
timers 1-3 (pure logic on ticks; the clock here starts just before the ticks wrap)."""
from adafruit_ticks import ticks_add

from dinamics import charge_intent as ci
from dinamics import headroom as hr
from dinamics.charge_intent import ChargeIntent

T0 = (1 << 29) - 2000  # ticks wrap at 2**29 ms: every timer below runs across the wrap
TIMERS = (10000, 5000, 20000)


def at(ms):
    return ticks_add(T0, ms)


def run(c, t0, t1, **kw):
    """auto_stop every 250 ms from t0 to t1 (ms); returns (ms, tag) of the first stop or None."""
    args = {"running": True, "pc": False, "connected": True, "told_on": True,
            "charging": True, "draw": 16.0, "cmd": 16}
    args.update(kw)
    for ms in range(t0, t1 + 1, 250):
        tag = c.auto_stop(at(ms), args["running"], args["pc"], args["connected"],
                          args["told_on"], args["charging"], args["draw"], args["cmd"], TIMERS)
        if tag is not None:
            return ms, tag
    return None


def test_set_enable_holds_for_the_session_and_plug_and_charge_enables_on_plug_in():
    c = ChargeIntent(plug_and_charge=True)
    assert c.wanted() and c.auto_on
    assert not c.command(ci.SLEEP) and not c.wanted()
    assert not c.auto_enable(True)  # set_enable said otherwise this session
    assert not c.plugged_in(False)
    c.unplugged(True)
    assert c.plugged_in(True) and c.auto_on  # the next plug-in with P&C
    assert not c.command(ci.ON)  # already wanted: nothing to start
    c.command(ci.OFF)
    assert c.command(ci.ON) and not c.auto_on


def test_no_wan_plug_and_charge_ends_with_the_session():
    c = ChargeIntent(plug_and_charge=False)
    assert not c.wanted() and not c.plugged_in(False)
    assert not c.auto_enable(False)  # no car
    assert c.auto_enable(True) and c.wanted()  # the broker went down: P&C in effect
    c.unplugged(True)
    assert c.wanted()  # the broker is still down
    c.unplugged(False)
    assert not c.wanted() and not c.auto_on  # it came back: the automatic enable ends


def test_timer1_low_draw_and_timer2_no_car_only_without_plug_and_charge():
    c = ChargeIntent()
    c.command(ci.ON)
    assert run(c, 0, 20000, draw=0.2, pc=True) is None
    assert run(c, 0, 20000, draw=0.2, told_on=False) is None  # FE not sent yet
    assert run(c, 0, 20000, draw=0.2) == (10000, ci.STOP_LOW_DRAW)
    assert c.stop_reason == "car draws < 0.5 A" and c.intent == ci.SLEEP
    assert c.t1_since is None and run(c, 0, 20000, draw=0.2) is None  # stopped: no more
    c.command(ci.ON)
    assert c.stop_reason is None
    assert run(c, 30000, 40000, connected=False, charging=False, draw=0.0) == (35000, ci.STOP_NO_CAR)
    assert c.stop_reason == "no car connected"


def test_a_paused_charge_is_not_stopped_and_a_break_restarts_the_count():
    c = ChargeIntent()
    c.command(ci.ON)
    assert run(c, 0, 20000, draw=0.2, running=False) is None
    assert run(c, 0, 9000, draw=0.2) is None
    assert run(c, 9250, 9250, draw=5.0) is None  # drawing: timer1 starts over
    assert run(c, 9500, 19250, draw=0.2) is None
    assert run(c, 19500, 19500, draw=0.2) == (19500, ci.STOP_LOW_DRAW)


def test_timer3_allows_the_old_value_while_the_car_follows_a_cut():
    c = ChargeIntent(cmd=16)
    c.command(ci.ON)
    c.cut(at(0), 16)  # 16 -> 10
    assert c.allowed(at(hr.SETTLE_MS - 1), 10) == 16 and c.allowed(at(hr.SETTLE_MS), 10) == 10
    c.cut(at(1000), 10)  # 10 -> 8 while the first cut still counts: the higher value stays
    assert c.allowed(at(1000), 8) == 16 and c.allowed(at(1000 + hr.SETTLE_MS), 8) == 8
    got = run(c, 1000, 40000, draw=16.0, cmd=8)
    assert got == (1000 + hr.SETTLE_MS + TIMERS[2], ci.STOP_OVER_DRAW)
    assert c.stop_reason == "car draws more than allowed (16.0 A > 8 A)"
    assert run(c, 0, 40000, draw=16.0, cmd=8) is None  # asleep now


def test_the_reason_shown_while_charging_is_not_wanted():
    c = ChargeIntent()
    assert c.off_reason() == ci.R_SLEEP
    c.command(ci.OFF)
    assert c.off_reason() == ci.R_OFF
    c.command(ci.ON)
    c.stop("car draws < 0.5 A")
    assert c.off_reason() == ci.R_STOPPED
