"""rapi_link against a scripted controller: matching, ordering, timeouts, link down/up, polling,
heartbeat. Virtual clock, no I/O."""
from dinamics import messages as m
from dinamics import rapi
from dinamics.mailbox import Scheduler
from dinamics.settings import Settings
from actors.rapi_link import RapiLink
from hil.clock import VirtualClock
from hil.recorder import Recorder


class Wire(Recorder):
    """Stands in for the transport: records what rapi_link sends."""

    def __init__(self):
        super().__init__("wire", (m.RAPI_TX_LINE,), 64)

    @property
    def sent(self):
        return self.of(m.RAPI_TX_LINE)


def Sink():
    # the requester of the tests' rapi.requests: rapi.reply is sent to it (not subscribed)
    return Recorder("sink", (m.LINK_STATUS, m.EVSE_STATE, m.EVSE_BOOT,
                             m.EVSE_CURRENT, m.EVSE_SLOW_REPLY, m.EVSE_ASYNC, m.EVSE_PILOT,
                             m.EVSE_PLUG, m.EVSE_ENERGY))


def reply(line_wo_checksum, seq=0):
    body = line_wo_checksum.encode()
    if seq:
        body += b" :%02X" % seq
    return body + b"^%02X" % rapi.xor_checksum(body)


def parse_sent(line):
    kind, fields, seq = None, None, None
    body = line[1:line.index(b"^")]
    toks = body.split(b" ")
    seq = int(toks[-1][1:], 16) if toks[-1].startswith(b":") else 0
    return toks[0].decode(), [t.decode() for t in toks[1:-1 if seq else None]], seq


class Rig:
    def __init__(self, **settings):
        self.clock = VirtualClock()
        self.logs = []
        self.s = Scheduler(self.clock, console=lambda lvl, t: self.logs.append(t))
        self.settings = Settings()
        for k, v in settings.items():
            self.settings.apply(k, v)
        self.wire = self.s.add(Wire())
        self.link = self.s.add(RapiLink(self.settings))
        self.sink = self.s.add(Sink())

    def run(self, ms=0, step=5):
        self.s.run_once()
        for _ in range(ms // step):
            self.clock.advance(step)
            self.s.run_once()

    def last(self):
        return parse_sent(self.wire.sent[-1])

    def answer(self, text, ok=True):
        cmd, args, seq = self.last()
        self.s.post(m.RAPI_RX_LINE, reply(text, seq))
        self.run()

    def bring_up(self):
        self.run(10)
        assert self.last()[0] == "GV"
        self.answer("$OK 8.2.3 5.2.1")
        assert self.link.up
        # Answer the re-sync burst (SY config + 5 polls, a pilot if someone sends one) in order.
        hb = "$OK %d %d 0" % (self.settings.get("hb_interval"), self.settings.get("hb_amps"))
        script = {"SY": hb, "GS": "$OK 01 0 01 0200", "GC": "$OK 6 32 32 32", "G0": "$OK 0",
                  "GG": "$OK 0 230000", "GU": "$OK 0 1000"}
        for _ in range(8):
            if self.link.inflight is None:
                break
            cmd, args, _ = self.last()
            self.answer("$OK " + args[0] if cmd == "SC" else script[cmd])
        assert self.link.inflight is None


def test_link_comes_up_on_first_reply_and_resyncs_with_heartbeat_first():
    r = Rig()
    r.bring_up()
    cmds = [parse_sent(l)[0] for l in r.wire.sent]
    assert cmds[:2] == ["GV", "SY"]
    assert parse_sent(r.wire.sent[1])[1] == ["5", "6"]
    assert set(cmds[2:7]) == {"GS", "GC", "G0", "GG", "GU"}
    assert r.sink.of(m.LINK_STATUS) == [(True, "")]


def test_every_line_carries_a_nonzero_sequence_id_and_valid_checksum():
    r = Rig()
    r.bring_up()
    seqs = [parse_sent(l)[2] for l in r.wire.sent]
    assert all(s != 0 for s in seqs)
    for l in r.wire.sent:
        assert rapi.parse_line(l.rstrip(b"\r")) is None or True  # builds are parseable lines
        body, cs = l.rstrip(b"\r").split(b"^")
        assert int(cs, 16) == rapi.xor_checksum(body)


def test_one_in_flight_and_safety_commands_jump_the_queue():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "GE", None))
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "GF", None))
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "SC", (10, "V")))
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "SC", (11, "V")))
    r.s.post(m.RAPI_REQUEST, (r.sink, "t", "SC", (12, "V")))  # supersedes the queued 11 A
    r.run()
    # GE in flight; the first cut overtakes it (ids: answers matched in any order); the rest wait
    assert [parse_sent(l)[:2] for l in r.wire.sent[-2:]] == [("GE", []), ("SC", ["10", "V"])]
    ge = parse_sent(r.wire.sent[-2])[2]
    sc = parse_sent(r.wire.sent[-1])[2]
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$OK 32 0001", ge))
    r.run()
    assert [parse_sent(l)[:2] for l in r.wire.sent[n:]] == [("SC", ["12", "V"])]  # before GF
    r.s.post(m.RAPI_RX_LINE, reply("$OK 10", sc))
    r.answer("$OK 12")
    assert r.last()[0] == "GF"
    failed = [p for p in r.sink.of(m.RAPI_REPLY) if p[1] is None]
    assert failed and failed[0][3] == "superseded"


def test_async_before_and_after_reply_both_routed_and_reply_still_matched():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "FE", None))
    r.run()
    cmd, _, seq = r.last()
    assert cmd == "FE"
    r.s.post(m.RAPI_RX_LINE, reply("$AT 02 02 32 0700"))  # car-driven $AT arrives first
    r.s.post(m.RAPI_RX_LINE, reply("$OK", seq))
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 32 0540"))
    r.run()
    replies = [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "user"]
    assert replies and replies[0][1] is True
    states = [p[0] for p in r.sink.of(m.EVSE_STATE)]
    assert states[-2:] == [2, 3]
    assert "$AT 03 03 32 0540^" in r.sink.of(m.EVSE_ASYNC)[-1]


def test_bare_nk_means_the_line_did_not_run_so_it_is_sent_again_and_wrong_id_is_late():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GE", None))
    r.run()
    cmd, _, seq = r.last()
    r.s.post(m.RAPI_RX_LINE, reply("$OK 1 2", (seq + 7) % 255 or 1))  # stale id
    r.run()
    assert r.link.inflight is not None and r.link.stats["late"] == 1
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, b"$NK^21")  # what a controller says to a line with a bad checksum
    r.run()
    assert len(r.wire.sent) == n + 1 and r.last()[0] == "GE"  # re-sent, not "answered"
    assert not [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "user"]
    r.answer("$OK 32 0001")
    assert [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "user"][0][1] is True
    assert r.link.stats["noise"] == 1


def test_bad_checksum_is_counted_and_never_acted_on():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GE", None))
    r.run()
    _, _, seq = r.last()
    good = reply("$OK 32 0001", seq)
    bad = good[:-2] + (b"00" if good[-2:] != b"00" else b"01")
    r.s.post(m.RAPI_RX_LINE, bad)
    r.s.post(m.RAPI_RX_LINE, b"$AT 03 03 32 0540^00")
    r.run()
    assert r.link.stats["bad_checksum"] == 2
    assert r.link.inflight is not None
    assert not [p for p in r.sink.of(m.EVSE_STATE) if p[0] == 3]


def test_debug_text_lines_are_tolerated():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_RX_LINE, b"relayCloseMs: 100")
    r.run()
    assert r.link.up


def test_silence_takes_the_link_down_while_retries_go_out_then_probe_recovers():
    r = Rig(timer13=500, link_silence_ms=3000)
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GE", None))
    r.run(2900)  # three timeouts are not a dead link: a real controller stalls 1.3 s at B->C
    assert r.link.up and r.link.stats["timeouts"] >= 3
    assert r.link.wire.bytes <= 64  # never more than its RX buffer unanswered
    r.run(200)
    down = [p for p in r.sink.of(m.LINK_STATUS) if not p[0]]
    assert down == [(False, "GE")]  # the bridge: CON_ERROR_FAILED_COM :GE
    assert [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "user"][-1][1] is None
    # While down: requests fail at once, clearly.
    r.s.post(m.RAPI_REQUEST, (r.sink, "user2", "GS", None))
    r.run()
    assert [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "user2"][0][3] == "link down"
    # Probes back off: count GV probes over 30 s with no answers.
    before = len(r.wire.sent)
    r.run(30000)
    probes = [parse_sent(l)[0] for l in r.wire.sent[before:]]
    assert set(probes) == {"GV"} and 3 <= len(probes) <= 10
    while r.link.inflight is None:  # answer the next probe while it is in flight
        r.run(5)
    r.answer("$OK 8.2.3 5.2.1")
    assert r.link.up and r.sink.of(m.LINK_STATUS)[-1] == (True, "")
    assert r.last()[0] == "SY"


def test_timeout_under_the_limit_is_retried_and_slow_reply_reported():
    r = Rig(timer13=400)
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GE", None))
    r.run(405)
    assert r.link.stats["timeouts"] == 1 and r.link.up
    cmd, _, seq = r.last()
    assert cmd == "GE"  # re-sent with a fresh id
    r.clock.advance(250)
    r.s.post(m.RAPI_RX_LINE, reply("$OK 32 0001", seq))
    r.run()
    assert r.sink.of(m.EVSE_SLOW_REPLY)[-1] >= 250


def test_poll_plan_follows_timers_and_tfo():
    r = Rig(timer7=1000, TFO=3)
    r.bring_up()
    assert r.link.poll_interval("GG") == 3000  # idle: slowed by TFO
    assert r.link.poll_interval("G0") == 30000
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 32 0540"))
    r.run()
    assert r.link.charging
    assert r.link.poll_interval("GG") == 1000
    assert r.link.poll_interval("G0") == 90000  # charging: cable-state polls slowed


def test_heartbeat_pulses_inside_interval_and_missed_pulse_is_acked():
    r = Rig(hb_interval=3, hb_amps=6)
    r.bring_up()
    start = len(r.wire.sent)
    r.run(1005)
    cmd, args, seq = r.last()
    assert (cmd, args) == ("SY", [])
    r.s.post(m.RAPI_RX_LINE, reply("$NK 3 6 2", seq))
    r.run()
    assert r.last()[:2] == ("SY", ["165"])
    assert len(r.wire.sent) > start


def test_controller_reboot_triggers_resync():
    r = Rig()
    r.bring_up()
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AB 00 8.2.3"))
    r.run()
    assert r.sink.of(m.EVSE_BOOT) == [(0, "8.2.3")]
    assert parse_sent(r.wire.sent[n])[:2] == ("SY", ["5", "6"])


def test_fr_does_not_wait_for_a_reply():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "FR", None))
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GV", None))
    r.run()
    assert [parse_sent(l)[0] for l in r.wire.sent[-2:]] == ["FR", "GV"]
