"""rapi_link against what real controllers and other dialects do (issue 8): re-sync at once after
a reboot, survive stalls, link up without sequence ids, verify every safety command, gate the
pilot. Scripted controller, virtual clock, no I/O. Each test names the defect it guards."""
from dinamics import messages as m
from dinamics.mailbox import Actor
from test_rapi_link import Rig, parse_sent, reply


class Pilot(Actor):
    """Stands in for the balancer: (re-)sends its pilot on link-up and on a controller boot."""
    name = "pilot"
    subscribes = (m.LINK_STATUS, m.EVSE_BOOT)

    def __init__(self, amps=16):
        super().__init__()
        self.amps = amps

    def handle(self, kind, payload):
        if kind == m.EVSE_BOOT or (kind == m.LINK_STATUS and payload[0]):
            self.post(m.RAPI_REQUEST, (None, "bal", "SC", (self.amps, "V")))  # fire and forget


def answer_all(r, script, limit=40):
    """Answer whatever is in flight from `script` (cmd -> reply text) until nothing is."""
    for _ in range(limit):
        if r.link.inflight is None:
            return
        cmd = r.last()[0]
        r.answer(script[cmd])


STOCK = {"SY": "$OK 5 6 0", "GS": "$OK 02 0 02 0700", "GC": "$OK 6 32 16 24",
         "G0": "$OK 1", "GG": "$OK 0 230000", "GU": "$OK 0 1000", "SC": "$OK 16",
         "GV": "$OK 8.2.3 5.2.1", "FE": "$OK", "FS": "$OK", "GE": "$OK 24 0001"}


def test_reboot_while_link_down_resyncs_heartbeat_then_pilot_within_one_round_trip():
    # Defect: $AB re-synced only while the link was up; the re-sync waited for the next
    # back-off probe (9 s) while the controller ran at its saved 24 A with no heartbeat.
    r = Rig()
    r.s.add(Pilot(16))
    r.bring_up()
    answer_all(r, STOCK)
    r.run(5000)  # the controller goes silent (it is resetting): the link goes down
    assert not r.link.up
    r.run(8000)  # back-off grows to several seconds
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AB 00 8.2.3"))
    r.run()
    assert r.link.up
    sent = [parse_sent(l)[:2] for l in r.wire.sent[n:]]
    assert sent[0] == ("SY", ["5", "6"])  # heartbeat first, in the same pass as $AB
    r.clock.advance(25)
    r.answer("$OK 5 6 0")  # one round trip later
    assert r.last()[:2] == ("SC", ["16", "V"])


def test_any_valid_line_while_down_probes_at_once_and_resets_the_backoff():
    r = Rig()
    r.bring_up()
    r.run(5000)  # heartbeat pulses go unanswered: down 3 s after the first
    assert not r.link.up
    r.run(20000)  # probes are now seconds apart
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AT 02 02 16 0700"))  # it talks again (a car was plugged)
    r.run()
    assert parse_sent(r.wire.sent[n])[0] == "GV" and len(r.wire.sent) == n + 1
    assert r.link._probe_ms == 500


def test_pilot_goes_during_the_controllers_post_so_it_never_offers_its_saved_current():
    # A real 8.2.3 holds what it receives during POST and runs it right after `$AB`, 250 ms before
    # it offers its saved current (24 A) to a car: the pilot must be in that buffer.
    r = Rig()
    r.s.add(Pilot(16))
    r.bring_up()
    answer_all(r, STOCK)
    r.run(2200)  # reset: silent
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AT 00 00 0 0200"))  # POST starts
    r.run(1650)  # nothing is answered during POST
    during = [parse_sent(l)[:2] for l in r.wire.sent[n:]]
    assert during == [("SC", ["16", "V"])]  # only the pilot, once (no retries into its buffer)
    assert r.link.up
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AB 00 8.2.3"))
    r.run()
    assert parse_sent(r.wire.sent[n])[:2] == ("SY", ["5", "6"])  # heartbeat at once


def test_late_reply_while_down_brings_the_link_up():
    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GE", None))
    r.run()
    _, _, seq = r.last()
    r.run(3500)
    assert not r.link.up
    r.s.post(m.RAPI_RX_LINE, reply("$OK 24 0001", seq))  # its answer after all
    r.run()
    assert r.link.up and r.last()[0] == "SY"


def test_stall_of_1300_ms_at_plug_in_is_not_a_link_fault():
    # Defect: three 500 ms timeouts in a row declared CON_ERROR_FAILED_COM at a real B->C stall.
    r = Rig(timer13=500)
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "user", "GE", None))
    r.run(1300)
    assert r.link.up
    # the controller wakes up and answers what waited in its buffer, in order
    for line in list(r.wire.sent):
        cmd, _, seq = parse_sent(line)
        if cmd == "GE":
            r.s.post(m.RAPI_RX_LINE, reply("$OK 24 0001", seq))
    r.run()
    assert r.link.up and not [p for p in r.sink.of(m.LINK_STATUS) if not p[0]]
    assert [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "user"][0][1] is True
    assert r.link.stats["worst_silence"] >= 1300


def test_no_more_than_the_controllers_64_byte_buffer_goes_unanswered():
    r = Rig(timer13=100, link_silence_ms=10000)
    r.bring_up()
    answer_all(r, STOCK)
    for i in range(10):
        r.s.post(m.RAPI_REQUEST, (r.sink, "u%d" % i, "GE", None))
    r.run(5000)  # a long stall: retries pile up in the controller's RX buffer
    assert r.link.wire.bytes <= 64
    assert sum(len(l) for l in r.wire.sent[-20:]) > 64  # there was more to send


def test_controller_without_ids_is_detected_and_matched_by_order():
    r = Rig()
    r.run(10)
    assert r.last()[0] == "GV" and r.last()[2] != 0  # asked with an id
    r.s.post(m.RAPI_RX_LINE, reply("$OK 8.2.1 5.0.1"))  # answered without one
    r.run()
    assert r.link.up and r.link.dialect.ids is False
    assert r.last()[2] == 0  # from now on no ids
    variant = {"SY": "$OK 5 6 0", "GS": "$OK 01 0 01 0200", "GC": "$OK 6 32 32 32",
               "G0": "$NK", "GG": "$OK 12000 230000 3 0", "GU": "$OK 100 360000",
               "SC": "$OK 16"}
    answer_all(r, variant)
    assert r.sink.of(m.EVSE_CURRENT)[-1] == (12000, 230000)  # 4-field $GG
    assert r.sink.of(m.EVSE_ENERGY)[-1] == (360000, 100)  # Wh Ws -> (Ws, Wh)
    assert any("dialect" in t and "no sequence ids" in t for t in r.logs)


def test_unsupported_command_is_not_a_link_fault_and_stops_being_polled():
    r = Rig(timer6=1000, TFO=1)
    r.bring_up()
    answer_all(r, STOCK)
    for _ in range(3):
        r.s.post(m.RAPI_REQUEST, (r.sink, "poll", "G0", None))
        r.run()
        r.answer("$NK")  # with our id: the command is not compiled in
    assert not r.link.dialect.supports("G0")
    assert r.link.up
    n = len(r.wire.sent)
    r.run(5000)
    assert "G0" not in [parse_sent(l)[0] for l in r.wire.sent[n:]]


def test_reported_pilot_is_what_the_controller_accepted():
    # Defect: max_charging_current showed the request ($SC 32 V -> $NK 24 reported 32).
    r = Rig(c_limit=32, breaker=40)
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (32, "V")))
    r.run()
    r.answer("$NK 24")
    assert r.sink.of(m.EVSE_PILOT)[-1] == 24
    assert r.link.watch.pilot_cap == 24


def test_session_start_polls_the_car_current_at_once():
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 16 0540"))
    r.run()
    assert r.last()[0] == "GG"


def test_bare_nk_to_a_pilot_cut_is_sent_again_until_it_runs():
    # Defect: a refused (bare $NK^21) cutting $SC 12 counted as answered; house over its breaker.
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (12, "V")))
    r.run()
    r.s.post(m.RAPI_RX_LINE, b"$NK^21")
    r.run()
    assert r.last()[:2] == ("SC", ["12", "V"])
    r.answer("$OK 12")
    assert [p for p in r.sink.of(m.RAPI_REPLY) if p[0] == "bal"][-1][1] is True


def test_bare_nk_to_sleep_is_sent_again():
    # Defect: a refused $FS left a house 16 A over a 25 A breaker for 20 s.
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "FS", None))
    r.run()
    r.s.post(m.RAPI_RX_LINE, b"$NK^21")
    r.run()
    assert [parse_sent(l)[0] for l in r.wire.sent].count("FS") == 2


def test_sleep_that_does_not_show_in_the_state_is_sent_again():
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "FS", None))
    r.run()
    r.answer("$OK")
    assert r.last()[0] == "GS"  # its effect is read back
    r.answer("$OK 03 10 03 0540")  # still charging
    assert r.last()[0] == "FS"


def test_sleep_on_the_controllers_own_limit_is_not_undone():
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "FE", None))
    r.run()
    r.answer("$OK")
    r.answer("$OK 03 10 03 0540")
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AT fe 03 16 0744"))  # LIMIT_SLEEP (charge limit reached)
    r.run()
    assert "FE" not in [parse_sent(l)[0] for l in r.wire.sent[n:]]


def test_pilot_above_the_request_in_a_reply_is_sent_again():
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (10, "V")))
    r.run()
    r.answer("$OK 19")
    assert [parse_sent(l)[:2] for l in r.wire.sent].count(("SC", ["10", "V"])) == 2


def test_bare_ok_to_a_pilot_change_is_read_back_and_corrected():
    # Defect: a bare $OK with no value left a pilot raised behind the unit's back uncorrected.
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (10, "V")))
    r.run()
    r.answer("$OK")
    assert r.last()[0] == "GC"
    r.answer("$OK 6 32 19 24")
    assert r.last()[:2] == ("SC", ["10", "V"])


def test_async_pilot_that_differs_from_the_target_is_corrected_at_once():
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (10, "V")))
    r.run()
    r.answer("$OK 10")
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 19 0540"))  # raised behind our back
    r.run()
    assert [parse_sent(l)[:2] for l in r.wire.sent].count(("SC", ["10", "V"])) == 2


def test_controller_ceiling_is_not_fought():
    # L1 start: $SC 16 V -> $NK 12; its $AT at 12 is what it can do, not a discrepancy.
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (16, "V")))
    r.run()
    r.answer("$NK 12")
    n = len(r.wire.sent)
    r.s.post(m.RAPI_RX_LINE, reply("$AT 02 03 12 0701"))
    r.run()
    assert "SC" not in [parse_sent(l)[0] for l in r.wire.sent[n:]]
    # at the first charge it detects L2 and offers 24: back to what we asked
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 24 0540"))
    r.run()
    assert ("SC", ["16", "V"]) in [parse_sent(l)[:2] for l in r.wire.sent[n:]]


def test_every_sc_passes_the_gate_whatever_the_settings():
    # Defect: c_min_limit 20 > c_limit 10 in a hand-made file sent $SC 20; static c_limit 32
    # with breaker 10 sent $SC 32.
    r = Rig(c_limit=10, c_min_limit=20, breaker=25)
    r.bring_up()
    r.s.post(m.RAPI_REQUEST, (r.sink, "bal", "SC", (20, "V")))
    r.run()
    assert r.last()[:2] == ("SC", ["10", "V"])
    r2 = Rig(c_limit=32, breaker=10)
    r2.bring_up()
    r2.s.post(m.RAPI_REQUEST, (r2.sink, "bal", "SC", (32,)))  # and never to EEPROM
    r2.run()
    assert r2.last()[:2] == ("SC", ["10", "V"])


def test_poll_delays_from_extreme_settings_do_not_crash_the_link():
    # Defect: set_timer5 500000 + set_TFO 1000 crashed rapi_link 7 times and stopped it.
    r = Rig(timer5=500000, TFO=1000)
    r.bring_up()
    answer_all(r, STOCK)
    r.run(1000)
    assert r.link.crashes == 0 and r.link.up


def test_a_cut_overtakes_a_read_in_flight_and_both_answers_are_matched():
    # A real controller answers a $GG up to ~300 ms late; a cut must not wait behind it.
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_REQUEST, (None, "poll", "GG", None))
    r.run()
    _, _, gg_seq = r.last()
    bal = r.s.add(Pilot(16))
    r.s.post(m.RAPI_REQUEST, (bal, "bal", "SC", (8, "V")))
    r.run()
    cmd, args, sc_seq = r.last()
    assert (cmd, args) == ("SC", ["8", "V"]) and r.link.stats["overtakes"] == 1
    r.s.post(m.RAPI_RX_LINE, reply("$OK 12000 230000", gg_seq))  # in the order it received them
    r.s.post(m.RAPI_RX_LINE, reply("$OK 8", sc_seq))
    r.run()
    assert r.sink.of(m.EVSE_CURRENT)[-1] == (12000, 230000)
    assert r.sink.of(m.EVSE_PILOT)[-1] == 8
    assert r.link.inflight is None and r.link.urgent is None


def test_plug_state_follows_the_debounced_state_not_the_raw_pilot():
    # At plug-in $G0 (raw pilot) says 1 up to 250 ms before the state leaves A: the plug topic
    # flickered 1-0-1. The state reports decide; $G0 only fills in while none has come.
    r = Rig()
    r.bring_up()
    answer_all(r, STOCK)
    r.s.post(m.RAPI_RX_LINE, reply("$AT 01 01 16 0200"))
    r.run()
    n = len(r.sink.of(m.EVSE_PLUG))
    r.s.post(m.RAPI_REQUEST, (None, "poll", "G0", None))
    r.run()
    r.answer("$OK 1")  # the raw pilot already sees the car
    r.s.post(m.RAPI_REQUEST, (None, "poll", "GS", None))
    r.run()
    r.answer("$OK 01 0 01 0200")  # the debounced state is still A
    r.s.post(m.RAPI_RX_LINE, reply("$AT 02 02 16 0700"))
    r.run()
    assert r.sink.of(m.EVSE_PLUG)[n:] == [1]
