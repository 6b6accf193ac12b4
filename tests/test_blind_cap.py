"""The blind cut (dinamics/blind_cap.py, the balancer's net.blocking): before a blocking call
longer than the reaction budget tolerates (a WiFi join) a charging car is cut to hb_amps, and the
controller has answered that `$SC` before the call starts; short calls and no charging change
nothing; the cap ends on a bound and the balancer raises by its normal rules. Also the two
rapi_link queue rules it relies on: the hold's `$SY` never jumps a queued cut, and a heartbeat
pulse never supersedes a hold somebody waits for. Virtual clock throughout."""
from adafruit_ticks import ticks_diff

from actors import wifi as W
from actors.balancer_regulation import REQUEST_TAG
from dinamics import messages as m
from dinamics.blind_cap import BLIND_OK_MS, GRANT_MS, BlindCap
from hil.checks import Result
from hil.ev_model import EvModel
from hil.rigs import WorldRig
from hil.scenario_scripts import start_charging
from hil.sim_radio import SimRadio
from hil.tape import sc_amps

from test_rapi_link import Rig, parse_sent, reply

WRAP = 1 << 29


# --- the holder -------------------------------------------------------------------------------
def test_a_join_needs_the_cut_a_scan_or_dns_lookup_does_not():
    assert W.SCAN_MS <= BLIND_OK_MS and W.DNS_MS <= BLIND_OK_MS < W.CONNECT_MS
    assert GRANT_MS == W.HOLD_WAIT_MS  # the latest a call starts after its announcement


def test_cap_clips_until_grant_plus_call_plus_timer13_then_drops():
    b = BlindCap()
    assert b.cap(0) is None and b.clip(0, 22) == 22
    b.begin(1000, 6500, 6, 500)
    end = 1000 + GRANT_MS + 6500 + 500
    assert b.cap(1000) == 6 and b.clip(1000, 22) == 6 and b.clip(1000, 5) == 5
    assert b.clip(end - 1, 32) == 6
    assert b.clip(end, 32) == 32 and b.cap(end) is None and b.amps is None


def test_a_second_call_lengthens_the_cap_never_raises_it():
    b = BlindCap()
    b.begin(0, 6500, 6, 500)
    b.begin(100, 5000, 10, 500)  # ends sooner, asks more: changes nothing
    assert b.until == GRANT_MS + 7000 and b.amps == 6
    b.begin(2000, 6500, 8, 500)
    assert b.until == 2000 + GRANT_MS + 7000 and b.amps == 6


def test_ticks_that_wrap():
    b = BlindCap()
    b.begin(WRAP - 100, 6500, 6, 500)
    assert b.cap((WRAP - 100 + 5000) % WRAP) == 6
    assert b.cap((WRAP - 100 + GRANT_MS + 7000) % WRAP) is None


# --- rapi_link: the order at the head of its queue ---------------------------------------------
def test_the_hold_pulse_waits_behind_a_queued_cut():
    """Before: the hold's $SY went to the very head of the queue, ahead of a cut that waited there
    (here behind a read in flight and an overtaking cut): the controller answered the $SY first,
    the call blocked the unit, and the cut went out only after it."""
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "GE", None))
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "SC", (10, "V")))
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "SC", (6, "V")))
    r.s.post(m.LINK_HOLD, (r.sink, W.CONNECT_MS))
    r.run()
    assert [parse_sent(x)[0] for x in r.wire.sent[-2:]] == ["GE", "SC"]  # the 10 A overtakes
    ge, sc10 = parse_sent(r.wire.sent[-2])[2], parse_sent(r.wire.sent[-1])[2]
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$OK 32 0001", ge))
    r.s.post(m.RAPI_RX_LINE, reply("$OK 10", sc10))
    r.run()
    assert [parse_sent(x)[:2] for x in r.wire.sent[n:]] == [("SC", ["6", "V"])]
    r.answer("$OK 6")
    assert parse_sent(r.wire.sent[-1])[:2] == ("SY", ["13", "6"])
    assert not [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"]  # not yet granted
    r.answer("$OK 13 6 0")
    assert [p[:2] for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"] == [("hold", True)]


def test_a_heartbeat_pulse_never_supersedes_a_waiting_hold():
    """Before: with hold_fallback the hold is a bare `$SY` pulse; a periodic pulse queued while it
    waited replaced it, and the requester was answered "superseded": the join started at once,
    ahead of the cut and of any pulse."""
    r = Rig(hold_fallback=1)
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "GE", None))
    r.run()
    r.s.post(m.LINK_HOLD, (r.sink, W.CONNECT_MS))
    r.run()
    r.link._pulse()  # the T_HB timer
    r.run()
    assert not [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"]
    r.answer("$OK 32 0001")
    assert parse_sent(r.wire.sent[-1])[:2] == ("SY", [])
    r.answer("$OK 5 6 0")
    assert [p[:2] for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"] == [("hold", True)]
    assert r.link.inflight is None and not r.link.queue.has("SY")  # one pulse did for both


def test_without_a_heartbeat_the_hold_is_answered_after_a_queued_cut():
    r = Rig(hb_interval=0)
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "SC", (6, "V")))
    r.s.post(m.LINK_HOLD, (r.sink, W.CONNECT_MS))
    r.run()
    assert parse_sent(r.wire.sent[-1])[:2] == ("SC", ["6", "V"])
    assert not [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"]
    r.answer("$OK 6")
    assert parse_sent(r.wire.sent[-1])[0] == "GS"  # a read carries the hold, after the cut
    r.answer("$OK 03 100 01 0200")
    assert [p[:2] for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"] == [("hold", True)]
    r.s.post(m.LINK_HOLD, (r.sink, W.CONNECT_MS))  # nothing queued: answered at once
    r.run()
    assert [p[3] for p in r.sink.of(m.RAPI_REPLY) if p[0] == "hold"][-1] == "no heartbeat"


# --- the whole firmware against the emulator ---------------------------------------------------
def _charging(settings=None, car=True):
    rig = WorldRig(radio=SimRadio(scan_ms=W.SCAN_MS))
    cfg = {"cte": 1, "breaker": 25, "c_limit": 32}
    cfg.update(settings or {})
    ev = EvModel(max_amps=32, phases=1, phase=1)
    if car:
        start_charging(rig, Result("t", "host"), ev, cfg, (2.3, 0, 0))
    else:
        start_charging(rig, Result("t", "host"), ev, cfg, (2.3, 0, 0), settle_ms=0)
        rig.unplug()
        rig.run_for(5000)
    marks = {"blocks": []}
    wifi, bal = rig.fw.wifi, rig.fw.balancer
    post, handle = wifi.post, bal.handle

    def wifi_post(kind, payload=None):
        if kind == m.NET_BLOCKING:
            marks.setdefault("announced", []).append((rig.now_ms(), payload[1]))
        return post(kind, payload)

    def bal_handle(kind, payload):
        if kind == m.RAPI_REPLY and payload[0] == REQUEST_TAG and len(payload[2]) == 1:
            marks.setdefault("sc_acks", []).append(rig.now_ms())
        r = handle(kind, payload)
        if kind == m.NET_BLOCKING and bal.blind.until is not None:  # the cap's end, rig ms
            marks["until"] = rig.now_ms() + ticks_diff(bal.blind.until, bal.now())
        return r

    def block(what):
        marks["blocks"].append((rig.now_ms(), what, rig.emu.current_capacity))

    bal_post = bal.post

    def bal_posts(kind, payload=None):
        if kind == m.BALANCER_TARGET:
            marks.setdefault("targets", []).append(payload)
        return bal_post(kind, payload)

    wifi.post, bal.handle, bal.post = wifi_post, bal_handle, bal_posts
    rig.radio.on_block = block
    return rig, marks


def test_a_join_while_charging_is_cut_to_hb_amps_answered_before_the_join_then_raised_normally():
    rig, marks = _charging()
    try:
        assert rig.emu.current_capacity == 22
        rig.wifi("add", "home", password="homepass1", join_ms=W.CONNECT_MS)
        rig.configure(wifi_ssid="home", wifi_pass="homepass1")
        assert rig.run_until(lambda: any(b[1] == "connect" for b in marks["blocks"]), 20000)
        rig.run_for(20000)
        t_scan, _, pilot_scan = [b for b in marks["blocks"] if b[1] == "scan"][0]
        t_join, _, pilot_join = [b for b in marks["blocks"] if b[1] == "connect"][0]
        assert pilot_scan == 22 and pilot_join == 6  # a scan: no cut; a join: cut before it
        announced = [t for t, ms in marks["announced"] if ms == W.CONNECT_MS][0]
        wire = rig.tape.commands(announced, t_join + 1, ("SC", "SY"))
        assert [(c[1], c[2]) for c in wire] == [("SC", ("6", "V")), ("SY", ("13", "6"))]
        assert [a for a in marks["sc_acks"] if announced <= a < t_join]  # answered before the join
        assert rig.fw.balancer.stats["blind_cuts"] == 1
        assert rig.emu._hs_trigger == 0 and rig.fw.wifi.sta_up
        # no blind restore: the raise back comes by the normal rules, after the cap's bound
        until = marks["until"]
        assert until == announced + GRANT_MS + W.CONNECT_MS + rig.fw.settings.get("timer13")
        ups = [c for c in rig.tape.commands(announced, rig.now_ms() + 1, ("SC",))
               if (sc_amps(c[2]) or 0) > 6]
        assert ups and ups[0][0] >= until and sc_amps(ups[0][2]) == 22
        assert rig.emu.current_capacity == 22 and rig.fw.balancer.blind.amps is None
        targets = marks["targets"]
        assert targets[0] == (6, "blind") and targets[-1][0] == 22  # balancer.target says why
        assert "blind" not in [r for _, r in targets[targets.index((6, "blind")) + 1:]]
    finally:
        rig.close()


def test_a_scan_while_charging_and_a_join_with_no_car_are_pulse_only():
    rig, marks = _charging()
    try:
        n = len(rig.tape.commands(0, rig.now_ms() + 1, ("SC",)))
        rig.fw.wifi.scan_for(rig.fw.balancer)  # a scan for the setup page (answer ignored)
        assert rig.run_until(lambda: marks["blocks"], 5000)
        rig.run_for(3000)
        assert [ms for _, ms in marks["announced"]] == [W.SCAN_MS]
        assert len(rig.tape.commands(0, rig.now_ms() + 1, ("SC",))) == n  # no $SC at all
        assert rig.fw.balancer.stats["blind_cuts"] == 0 and rig.emu.current_capacity == 22
    finally:
        rig.close()
    rig, marks = _charging(car=False)
    try:
        rig.wifi("add", "home", password="homepass1", join_ms=W.CONNECT_MS)
        rig.configure(wifi_ssid="home", wifi_pass="homepass1")
        assert rig.run_until(lambda: rig.fw.wifi.sta_up, 20000)
        announced = [t for t, ms in marks["announced"] if ms == W.CONNECT_MS][0]
        assert not rig.tape.commands(announced, rig.now_ms() + 1, ("SC",))
        assert rig.fw.balancer.stats["blind_cuts"] == 0 and rig.fw.balancer.blind.until is None
    finally:
        rig.close()
