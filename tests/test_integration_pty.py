"""Firmware and OpenEVSE emulator over a real pseudo-terminal pair through pyserial, virtual clock:
plug-in, charging, controller reboot, a 10 s cable cut, unplug — about 90 simulated seconds."""
import pytest

from dinamics import messages as m
from hil.ev_model import EvModel
from hil.world import World


@pytest.fixture
def world():
    w = World()
    yield w
    w.close()


def link_events(w):
    return [e for e in w.monitor.events if e[1].startswith("link ")]


def test_full_session_over_pty(world, capsys):
    w = world
    start = w.ms()
    assert w.run_until(lambda: w.app.rapi.up, 6000), "link never came up"  # boot: 3.85 s
    w.set("timer9", 2000)  # energy polls every 2 s so the test sees it count
    w.set("c_limit", 16)

    # Plug in: plug&charge (default) enables the EVSE; the pilot is 16 A, volatile.
    w.emu.plug(EvModel(max_amps=32, phases=1))
    assert w.run_until(lambda: w.emu.state == 3, 5000), "did not start charging"
    assert w.emu.current_capacity == 16
    assert w.emu.heartbeat[:2] == (5, 6)  # $SY 5 6 configured at link-up
    assert w.run_until(lambda: abs(w.emu.ev.draw_amps(w.ms()) - 16) < 0.01, 7000)
    assert w.run_until(lambda: w.monitor.last.get(m.EVSE_ENERGY, (0, 0))[0] > 0, 5000)
    # 30 s of steady charging: energy keeps counting at ~16 A x 230 V, the pilot is not touched.
    ws0, sc0 = w.monitor.last[m.EVSE_ENERGY][0], w.app.rapi.stats["sent"]
    w.run_for(30000)
    ws1 = w.monitor.last[m.EVSE_ENERGY][0]
    assert 0.8 * 16 * 230 * 28 < ws1 - ws0 < 1.1 * 16 * 230 * 32
    assert w.emu.current_capacity == 16

    # Controller reboot: the firmware sees $AB and re-syncs heartbeat, pilot and enable.
    boots = w.app.rapi.stats["boots"]
    w.emu.reboot()
    assert w.run_until(lambda: w.app.rapi.stats["boots"] > boots, 6000), "reboot not seen"
    assert w.run_until(lambda: w.emu.state == 3 and w.emu.current_capacity == 16, 8000)
    assert w.emu.heartbeat[:2] == (5, 6)

    # Cable cut for 10 s: detected as CON_ERROR, the controller falls back to 6 A on its own.
    downs = len([e for e in link_events(w) if "DOWN" in e[1]])
    w.modem.cut = True
    cut_at = w.ms()
    # Down after link_silence_ms (3 s) of silence from the first request left unanswered; a
    # heartbeat pulse goes out at least every 1.7 s, so within 4.7 s of the cut.
    assert w.run_until(lambda: not w.app.rapi.up, 4800), "cable cut not detected"
    detect_ms = w.ms() - cut_at
    assert detect_ms >= 3000
    text = [e for e in link_events(w) if "DOWN" in e[1]][-1][1]
    assert "CON_ERROR_FAILED_COM :" in text
    assert len([e for e in link_events(w) if "DOWN" in e[1]]) == downs + 1
    w.run_for(10000 - (w.ms() - cut_at))
    assert w.emu.current_capacity == 6, "controller heartbeat fallback did not engage"
    w.modem.cut = False
    reconnect_at = w.ms()
    assert w.run_until(lambda: w.app.rapi.up, 12000), "link did not recover"
    recover_ms = w.ms() - reconnect_at
    assert link_events(w)[-1][1] == "link up: OK"
    # Re-sync: heartbeat acked, pilot restored.
    assert w.run_until(lambda: w.emu.current_capacity == 16 and w.emu.heartbeat[2] != 2, 3000)
    assert w.emu.state == 3

    # Unplug: session energy goes to the lifetime total.
    total_before = w.emu.total_wh
    w.emu.unplug()
    assert w.run_until(lambda: w.monitor.last.get(m.EVSE_STATE, (0,))[0] == 1, 3000)
    w.run_for(10000)
    assert w.emu.total_wh > total_before
    assert w.emu.state == 1 and not w.emu.relay_closed
    assert w.ms() - start >= 60000

    st = w.app.rapi.stats
    assert st["bad_checksum"] == 0 and w.sched.stats()["crashes"] == 0
    assert w.sched.stats()["lost"] == 0
    with capsys.disabled():
        print("\n[integration] simulated %.1f s, %d passes, worst scheduler pass %.2f ms, "
              "cut detected in %d ms, recovered %d ms after reconnect, %d RAPI round trips"
              % ((w.ms() - start) / 1000, w.sched.passes, w.sched.worst_pass_us / 1000,
                 detect_ms, recover_ms, st["rtt_count"]))
