"""The charging current after a charge ends or pauses: when the controller leaves state C,
rapi_link reads `$GG` soon (and again while it still shows a current: a `$FS` leaves the relay
closed up to 3 s), so `evse.current` (MQTT `charging_current`, web, LCD) shows what the controller
measures within about a second instead of the last charging value until the 30 s poll (timer7).
The whole unit against the emulator, virtual clock; one case through a real broker."""
import pytest

from dinamics import messages as m
from dinamics.mailbox import Actor
from hil.ev_model import EvModel
from hil.world import World
from mqtt_fixtures import Unit, mosquitto  # noqa: F401  (fixture)


class TxTape(Actor):
    """What the unit put on the wire, with the simulated time."""
    name = "tx_tape"
    subscribes = (m.RAPI_TX_LINE,)
    inbox_size = 64

    def __init__(self, world):
        super().__init__()
        self.world = world
        self.lines = []

    def handle(self, kind, payload):
        self.lines.append((self.world.ms(), payload.decode("latin-1")))


def charging(w, amps=16):
    """Link up, a car charging at `amps`, and `evse.current` showing it."""
    assert w.run_until(lambda: w.app.rapi.up, 6000), "link never came up"
    w.set("c_limit", amps)
    w.emu.plug(EvModel(max_amps=32, phases=1))
    assert w.run_until(lambda: w.emu.state == 3, 5000), "did not start charging"
    # the car follows the pilot ~5 s later; the 30 s poll (or an earlier one) shows it
    assert w.run_until(lambda: w.monitor.last.get(m.EVSE_CURRENT, (0,))[0] > (amps - 1) * 1000,
                       40000)


def leave_c(w, how):
    if how == "unplug":
        w.emu.unplug()
    elif how == "car stops":
        w.emu.ev.wants_charge = False  # S2 opens: C -> B
    elif how == "disable":
        w.sched.post(m.CHARGE_COMMAND, 1)  # the balancer sends $FD
    elif how == "sleep":
        w.sched.post(m.CHARGE_COMMAND, 3)  # the balancer sends $FS
    assert w.run_until(lambda: w.emu.state != 3, 8000), "did not leave state C"
    return w.ms()


def current_ma(w):
    return w.monitor.last[m.EVSE_CURRENT][0]


@pytest.mark.parametrize("how", ["unplug", "car stops", "disable"])
def test_current_reads_zero_within_a_second_of_leaving_c(how):
    w = World()
    try:
        charging(w)
        left = leave_c(w, how)
        assert not w.emu.relay_closed  # these open the relay at once
        assert w.run_until(lambda: current_ma(w) == 0, 1200), \
            "evse.current still %d mA 1.2 s after leaving C (%s)" % (current_ma(w), how)
        assert w.ms() - left <= 1200
        # one extra read, then the regular pace (no $GG loop while idle)
        tape = w.sched.add(TxTape(w))
        w.run_for(10000)
        assert [t for t, line in tape.lines if line.startswith("$GG")] == []
    finally:
        w.close()


def test_sleep_reads_the_current_until_the_relay_opened():
    """$FS: the controller keeps the relay closed while the car still draws (up to 3 s): the
    current it measures meanwhile is shown, and 0 A within about a second of the relay opening."""
    w = World()
    try:
        charging(w)
        left = leave_c(w, "sleep")
        assert w.emu.state == 0xFE and w.emu.relay_closed
        assert w.run_until(lambda: not w.emu.relay_closed, 4000)
        opened = w.ms()
        assert opened - left >= 2500  # the car still drew: the 3 s timeout opened it
        assert w.run_until(lambda: current_ma(w) == 0, 1200), \
            "evse.current still %d mA 1.2 s after the relay opened" % current_ma(w)
        tape = w.sched.add(TxTape(w))
        w.run_for(10000)
        assert [t for t, line in tape.lines if line.startswith("$GG")] == []
    finally:
        w.close()


def test_the_read_after_c_never_goes_ahead_of_the_cut():
    """The balancer's $FS (its reaction to a state change or to a command) is on the wire before
    the $GG that follows the state change: a poll never delays a safety command."""
    w = World()
    try:
        charging(w)
        tape = w.sched.add(TxTape(w))
        w.sched.post(m.CHARGE_COMMAND, 3)
        assert w.run_until(lambda: w.emu.state == 0xFE, 3000)
        w.run_for(1500)
        cmds = [line.split(" ")[0].split("^")[0] for t, line in tape.lines]
        assert "$FS" in cmds and "$GG" in cmds
        assert cmds.index("$FS") < cmds.index("$GG")
    finally:
        w.close()


def test_charging_current_topic_goes_to_zero_after_unplug(mosquitto):  # noqa: F811
    """Through the real bridge and a real broker: `charging_current` shows 0 within the
    telemetry period (`timer`, 2 s) plus about a second of the unplug."""
    u = Unit(mosquitto, "GGEND1")
    try:
        u.wait_online()
        w = u.w
        w.set("timer7", 5000)  # the charging value shows sooner (the test's pace only)
        charging(w)
        assert u.wait(lambda: float(u.last("charging_current") or 0) > 15, 20)
        left = leave_c(w, "unplug")
        assert u.wait(lambda: u.last("charging_current") == "0.00", 20)
        assert w.ms() - left <= 1200 + w.app.settings.get("timer")
    finally:
        u.close()


def test_reads_after_c_are_bounded_and_stop_at_zero():
    """Scripted controller: after state C the $GG reads repeat while a current shows, at most
    five in all; a reading of 0 A ends them at once; a new session clears what is left."""
    from test_rapi_link import Rig, parse_sent, reply

    def serve(r, ms, gg_text):
        """Run `ms`, answering every line at once ($GG with gg_text). -> times $GG went out."""
        out = []
        for _ in range(ms // 10):
            if r.link.inflight is not None:
                cmd, args, seq = r.last()
                if cmd == "GG":
                    out.append(r.clock())
                text = {"GG": gg_text, "SY": "$OK 5 6 0", "GS": "$OK 02 0 02 0100", "G0": "$OK 2",
                        "GC": "$OK 6 32 16 32", "GU": "$OK 0 1000"}[cmd]
                r.s.post(m.RAPI_RX_LINE, reply(text, seq))
            r.run(10)
        return out

    r = Rig()
    r.bring_up()
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 16 0140"))  # a session starts: $GG at once
    assert len(serve(r, 100, "$OK 16000 230000")) == 1
    r.s.post(m.RAPI_RX_LINE, reply("$AT 02 02 16 0100"))  # the car stops: C -> B
    t0 = r.clock()
    # a meter that keeps showing a current: five reads, ~1 s apart, then the regular pace
    got = serve(r, 30000, "$OK 15000 230000")
    assert len(got) == 5, got
    assert 380 <= got[0] - t0 <= 450  # after the controller's stall at a state change
    assert all(900 <= b - a <= 1200 for a, b in zip(got, got[1:]))
    assert r.sink.of(m.EVSE_CURRENT)[-1] == (15000, 230000)

    # again, and this time the relay opened: one read shows 0 A, nothing more follows
    r.s.post(m.RAPI_RX_LINE, reply("$AT 03 03 16 0140"))
    assert len(serve(r, 100, "$OK 16000 230000")) == 1
    r.s.post(m.RAPI_RX_LINE, reply("$AT 01 01 16 0200"))  # unplugged
    assert len(serve(r, 30000, "$OK 0 230000")) == 1
    assert r.sink.of(m.EVSE_CURRENT)[-1] == (0, 230000)
