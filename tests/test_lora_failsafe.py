"""The bridge's failsafe (docs/lora.md "Safety"): when no authenticated frame has come from the unit
for lora_failsafe_s (never less than the unit's own heartbeat interval), the bridge writes one
volatile, pilot-gated `$SC hb_amps V` to its controller, keeps the controller's answer to itself
and lets the unit restore the pilot when the radio is back."""
import pytest

from dinamics import messages as m
from dinamics import rapi
from test_lora import Pair


def _bridge_settings(p, **kw):
    for k, v in kw.items():
        p.bridge.settings.apply(k, v)


def test_a_silent_unit_trips_one_gated_cut_and_the_answer_stays_at_the_bridge():
    p = Pair()
    _bridge_settings(p, lora_failsafe_s=10)
    p.tx(b"$SY 0 20 :41^00\r")  # the unit's heartbeat configuration: off, 20 A
    p.tx(b"$SC 30 V :42^00\r")
    p.run(2000)
    assert p.bridge.unit_hb == 0 and p.bridge.unit_hb_amps == 20
    p.uart.written = b""
    p.run(7000)  # 9 s since the unit's last frame: nothing yet
    assert p.uart.written == b"" and p.bridge.stats["failsafe"] == 0
    p.run(1500)
    # 20 A through the pilot gate: the bridge's c_limit / breaker (16 A by default) cap it
    assert p.uart.written == rapi.build("SC", (16, "V"))
    assert p.bridge.stats["failsafe"] == 1
    # 16 A is not below the unit's last 16 A: a 6 A heartbeat current is
    p2 = Pair()
    _bridge_settings(p2, lora_failsafe_s=10)
    p2.tx(b"$SC 16 V :42^00\r")
    p2.run(2000)
    p2.uart.written = b""
    p2.run(9000)
    assert p2.uart.written == rapi.build("SC", (6, "V"))
    # the controller answers (no id: ours), then reports; an unprompted `$AT` goes to the unit
    p2.uart.inq = b"$OK 6^36\r$AT 03 03 6 0540^06\r"
    p2.run(30000)  # once: no second cut while the silence goes on
    assert p2.uart.written == rapi.build("SC", (6, "V"))
    # (the unit's ack re-arms the bridge, which hands it the newest `$AT` once more)
    assert set(p2.rec.of(m.RAPI_RX_LINE)) == {b"$AT 03 03 6 0540^06"}  # never the `$OK 6`
    assert p2.bridge.stats["failsafe"] == 1


def test_no_cut_when_the_pilot_is_already_at_or_below_the_safe_current():
    p = Pair()
    _bridge_settings(p, lora_failsafe_s=10)
    p.tx(b"$SC 6 V :42^00\r")
    p.run(2000)
    p.uart.written = b""
    p.run(20000)
    assert p.uart.written == b"" and p.bridge.stats["failsafe"] == 0  # never raised


def test_the_failsafe_never_comes_before_the_units_heartbeat_and_rearms_on_a_frame():
    p = Pair()
    _bridge_settings(p, lora_failsafe_s=10)
    p.tx(b"$SY 30 6 :41^00\r$SC 16 V :42^00\r")  # the unit pulses every 15 s
    p.run(2000)
    p.uart.written = b""
    p.run(25000)
    assert p.uart.written == b""  # 10 s would trip a unit that is only quiet between pulses
    p.run(5000)
    assert p.uart.written == rapi.build("SC", (6, "V"))
    p.uart.written = b""
    p.tx(b"$SC 16 V :43^00\r")  # the unit is back and raises the pilot again
    p.run(2000)
    assert p.uart.written == b"$SC 16 V :43^00\r" and not p.bridge.tripped
    p.run(29000)
    assert b"$SC 6 V" in p.uart.written and p.bridge.stats["failsafe"] == 2


def test_a_replayed_frame_does_not_keep_the_failsafe_quiet():
    p = Pair()
    _bridge_settings(p, lora_failsafe_s=10)
    p.tx(b"$SC 16 V :42^00\r")
    p.run(2000)
    old = list(p.medium.recorded)
    p.uart.written = b""
    for _ in range(4):
        p.run(2500)
        for f in old:
            p.medium.inject(f, to=p.bridge_radio)  # an attacker replays the unit's frames
    p.run(1000)
    assert p.uart.written == rapi.build("SC", (6, "V"))


def test_failsafe_zero_is_off():
    p = Pair()
    _bridge_settings(p, lora_failsafe_s=0)
    p.tx(b"$SC 16 V :42^00\r")
    p.run(2000)
    p.uart.written = b""
    p.run(120000, step=50)
    assert p.uart.written == b""


# --- the whole install: unit, bridge and the emulator on the virtual clock ------------------------
def _charging_world(bridge_failsafe_s, dialect="openevse", **unit):
    from hil.ev_model import EvModel
    from hil.world import World

    w = World(link="lora", bridge_settings={"lora_failsafe_s": bridge_failsafe_s}, dialect=dialect)
    for k, v in unit.items():
        w.set(k, v)
    assert w.run_until(lambda: w.app.rapi.up, 20000)
    w.run_for(8000)
    w.emu.plug(EvModel(max_amps=32, response_s=1.0))
    assert w.run_until(lambda: w.emu.state == 3, 30000)
    assert w.run_until(lambda: w.emu.current_capacity == 16, 10000)
    w.run_for(20000)
    return w


@pytest.mark.parametrize("dialect", ["openevse", "old"])
def test_dead_radio_drops_the_pilot_and_the_balancer_takes_over_again(dialect):
    # heartbeat off at the unit (as with a controller without $SY): only the bridge can cut
    w = _charging_world(10, dialect, hb_interval=0)
    try:
        b = w.bridge.link
        sent_to_unit = []
        queue = b._queue
        b._queue = lambda line, safety: (sent_to_unit.append(line), queue(line, safety))
        assert w.emu.current_capacity == 16 > w.app.settings.get("hb_amps")
        w.medium.down = True
        assert w.run_until(lambda: w.emu.current_capacity == 6, 10000 + 1000, step=20)
        assert b.stats["failsafe"] == 1
        # the controller's answer to the bridge's own $SC never travels to the unit
        assert not [x for x in sent_to_unit if x[:3] in (b"$OK", b"$NK") and b" :" not in x]
        w.run_for(5000)
        w.medium.down = False
        t1 = w.ms()
        assert w.run_until(lambda: w.emu.current_capacity == 16, 15000, step=20), w.ms() - t1
        assert w.app.balancer.target == 16  # the balancer's target, and the pilot follows it
        caps = set()
        w.run_for(120000, step=50, each=lambda w: caps.add(w.emu.current_capacity))
        assert caps == {16} and b.stats["failsafe"] == 1  # no fight, no second trip
        assert w.app.rapi.stats["corrections"] <= 2
        assert not [x for x in w.console.lines if "does not follow" in x]
    finally:
        w.close()


def test_with_the_heartbeat_on_the_bridge_waits_for_the_units_interval():
    # lora_hb_s 20: pulses every 10 s; a bridge set to 10 s waits 20 s (the unit's interval)
    w = _charging_world(10, lora_hb_s=20)
    try:
        assert w.bridge.link.unit_hb == 20
        w.medium.down = True
        assert w.run_until(lambda: w.emu.current_capacity == 6, 20000 + 1000, step=20)
        w.medium.down = False
        assert w.run_until(lambda: w.emu.current_capacity == 16, 15000, step=20)
    finally:
        w.close()


@pytest.mark.parametrize("unit", [{}, {"lora_hb_s": 20}])
def test_a_quiet_but_alive_unit_never_trips_the_failsafe(unit):
    w = _charging_world(20 if unit else 60, **unit)
    try:
        caps = set()
        w.run_for(600000, step=50, each=lambda w: caps.add(w.emu.current_capacity))
        assert w.bridge.link.stats["failsafe"] == 0 and caps == {16} and w.emu.state == 3
    finally:
        w.close()


def test_repeated_outages_never_exhaust_the_units_bounded_corrections():
    w = _charging_world(10, hb_interval=0)
    try:
        for i in range(4):
            w.medium.down = True
            assert w.run_until(lambda: w.emu.current_capacity == 6, 11000, step=20), i
            w.run_for(3000 * i)  # back at different points of the unit's recovery
            w.medium.down = False
            assert w.run_until(lambda: w.emu.current_capacity == 16, 15000, step=20), i
            w.run_for(30000, step=50)
        assert w.bridge.link.stats["failsafe"] == 4 and w.emu.current_capacity == 16
        assert not [x for x in w.console.lines if "does not follow" in x]
    finally:
        w.close()
