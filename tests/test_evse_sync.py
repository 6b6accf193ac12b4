"""dinamics.evse_sync.EvseSync: what the controller was last told and what makes it due again
(pure logic, no clock)."""
from dinamics import rapi
from dinamics.evse_sync import EvseSync


def test_only_differences_are_sent_and_a_failure_sends_again():
    s = EvseSync()
    assert s.pilot_due(16) and s.sc_inflight and not s.pilot_due(16)
    assert s.enable_due(2) and not s.enable_due(2)
    assert not s.on_reply(True, ("16",), "") and not s.sc_inflight
    assert not s.on_reply(None, (), "superseded")  # a newer SC of ours replaced it
    assert not s.pilot_due(16)
    s.on_reply(None, (), "timeout")
    assert s.pilot_due(16) and s.enable_due(2)
    s.forget()  # the link went down / came up
    assert s.pilot_due(16) and s.enable_due(2)


def test_a_refused_volatile_pilot_is_a_cap_not_a_resend_loop():
    s = EvseSync()
    s.pilot_due(32)
    assert s.on_reply(False, ("16",), "") and s.evse_cap == 16  # new cap: log it once
    s.pilot_due(20)
    assert not s.on_reply(False, ("16",), "")  # the same cap again
    s.advertised(rapi.STATE_C, 16)  # it advertises its cap: not behind our back
    assert not s.pilot_due(20)
    assert not s.on_reply(False, ("x",), "")  # not a number
    s.controller_reset()
    assert s.evse_cap is None and s.pilot_due(20)


def test_a_pilot_changed_behind_our_back_is_sent_again():
    s = EvseSync()
    s.pilot_due(16)
    s.advertised(rapi.STATE_C, 6)  # our SC still in flight: its answer decides
    assert not s.pilot_due(16)
    s.on_reply(True, ("16",), "")
    s.advertised(rapi.STATE_SLEEP, 6)  # not in use while sleeping
    s.advertised(rapi.STATE_C, None)
    assert not s.pilot_due(16)
    s.advertised(rapi.STATE_C, 6)  # the heartbeat fallback, a reboot, the menu
    assert s.pilot_due(16)
