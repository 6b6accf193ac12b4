"""LoRa-linked installs (docs/lora.md): HMAC, frames, replay window, persisted counters, time on
air and the budget, the actor in both roles over the simulated medium, the live cable/radio swap,
the bridge against the emulator with loss, and the adafruit_rfm9x glue on a fake SX127x."""
import hmac
import hashlib
import random

import pytest

from dinamics import lora_frame as lf
from dinamics import messages as m
from dinamics.lora_air import Ledger, airtime_us
from dinamics.mailbox import Scheduler
from dinamics.settings import Settings
from dinamics.store import SlotStore
from actors.lora_link import LoraLink
from hil.clock import VirtualClock
from hil.host_fs import CuttingFs
from hil.radio_sim import Medium
from hil.recorder import Recorder

KEY_HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
KEY = bytes.fromhex(KEY_HEX)


# --- HMAC, frames, replay window, counters ------------------------------------------------------
@pytest.mark.parametrize("klen", [0, 1, 16, 32, 63, 64, 65, 100])
def test_hmac_matches_cpython(klen):
    rng = random.Random(klen)
    key = bytes(rng.randrange(256) for _ in range(klen))
    for n in (0, 1, 55, 56, 64, 200):
        msg = bytes(rng.randrange(256) for _ in range(n))
        assert lf.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_frames_round_trip_and_reject_tampering_and_reflection():
    auth = lf.Auth(KEY)
    f = lf.encode(auth, lf.DATA, False, 7, 5, b"$SY :41^30\r", True)
    assert lf.decode(auth, f, False) == (lf.DATA, 7, 5, b"$SY :41^30\r", True)
    assert lf.decode(auth, lf.encode(auth, lf.ACK, False, 8, 0x1234), False)[2] == 0x34  # low 8 bits
    assert lf.decode(auth, f, True) is None  # the unit's own frame played back to the unit
    for i in range(len(f)):
        bad = bytearray(f)
        bad[i] ^= 0x01
        assert lf.decode(auth, bytes(bad), False) is None
    assert lf.decode(lf.Auth(bytes(32)), f, False) is None  # another key
    assert lf.decode(auth, f[:-1], False) is None
    g = lf.encode(auth, lf.ACK, True, 9)
    assert lf.decode(auth, g, True) == (lf.ACK, 9, None, b"", False)


def test_replay_window():
    w = lf.Replay()
    for c in (1, 2, 5, 4):
        assert w.fresh(c) == 0
        w.mark(c)
    assert w.fresh(4) == 1 and w.fresh(5) == 1  # repeats
    assert w.fresh(3) == 0  # late but new
    w.mark(40)
    assert w.fresh(3) == 1  # fell out of the window
    assert w.fresh(9) == 0  # inside it, never seen
    w.mark(9)
    assert w.fresh(9) == 1
    w2 = lf.Replay(floor=300)
    assert w2.fresh(300) == 2 and w2.fresh(12) == 2 and w2.fresh(301) == 0


def test_counters_survive_reboots_without_reuse_and_write_rarely():
    fs = CuttingFs()
    used = set()
    writes = 0
    for boot in range(5):
        c = lf.Counters(SlotStore(fs, "lora"))
        for _ in range(300 + boot * 37):
            n = c.next()
            assert n not in used
            used.add(n)
        writes += c.writes
    assert writes <= 5 * 3  # one at boot + one per 256 counters
    # the peer's mark: a frame heard before a reboot is at or below the floor after it
    c = lf.Counters(SlotStore(fs, "lora"))
    for x in range(1, 700):
        c.heard(x)
    c2 = lf.Counters(SlotStore(fs, "lora"))
    assert c2.rx_floor >= 699


def test_key_setting_is_checked():
    from dinamics import settings as st

    assert st.check_together({}, "lora_key", "abc")
    assert st.check_together({}, "lora_key", "zz" * 16)
    assert st.check_together({}, "lora_key", KEY_HEX) is None
    assert st.check_together({}, "lora_key", "") is None


# --- time on air and the budget ------------------------------------------------------------------
def test_airtime_matches_the_semtech_figures():
    # SX1276 datasheet formula / Semtech LoRa calculator, CR 4/5, preamble 8, explicit header, CRC
    assert airtime_us(5) == 30976  # 1 app byte + RadioHead header: 31.0 ms
    assert airtime_us(20) == 56576  # 56.6 ms
    assert airtime_us(64) == 118016  # 60 app bytes + header: 118.0 ms
    assert airtime_us(34, sf=9) == 246784  # 246.8 ms
    assert airtime_us(51, sf=12) == 2465792  # LoRaWAN SF12 51 B: 2465.8 ms (low data rate opt.)
    assert airtime_us(13, sf=10, bw_khz=125) == 288768  # 288.8 ms
    assert airtime_us(20, bw_khz=250) == 56576 // 2


def test_ledger_keeps_the_reserve_for_safety_and_never_exceeds_the_budget():
    led = Ledger(868)
    t = 0
    frame = 61000
    sent = {False: 0, True: 0}
    for i in range(1000):
        safety = i % 2 == 1
        if led.allow(t, frame, safety):
            led.spend(t, frame)
            sent[safety] += 1
        t += 100
    assert led.used_ms(t) <= 36000
    assert led.used_ms(t) > 36000 - 61  # filled up to the budget by safety traffic
    assert sent[True] > sent[False]  # the last 10 %: safety only
    assert not led.allow(t, frame, True)
    t += 3600000 + 60000
    assert led.used_ms(t) == 0 and led.allow(t, frame, False)


def test_us915_dwell():
    led = Ledger(915)
    assert not led.allow(0, 401000, True)
    assert led.allow(0, 300000, True)
    led.spend(0, 300000)
    assert not led.allow(100, 150000, True)  # 400 ms per 20 s
    assert led.allow(21000, 150000, True)


# --- the actor, both roles, on the simulated medium ----------------------------------------------
class Uart:
    """The bridge's controller UART: records writes, hands out queued bytes."""

    def __init__(self):
        self.written = b""
        self.inq = b""

    @property
    def in_waiting(self):
        return len(self.inq)

    def readinto(self, buf):
        n = min(len(buf), len(self.inq))
        buf[:n] = self.inq[:n]
        self.inq = self.inq[n:]
        return n

    def write(self, data):
        self.written += bytes(data)
        return len(data)


class Pair:
    def __init__(self, loss=0.0, unit_fs=None, bridge_fs=None, key=KEY_HEX):
        self.clock = VirtualClock()
        self.medium = Medium(self.clock, loss=loss, seed=3)
        self.unit_fs = unit_fs or CuttingFs()
        self.bridge_fs = bridge_fs or CuttingFs()
        self.key = key
        self.unit_sched = Scheduler(self.clock)
        self.settings = Settings({"lora_key": key})
        self.unit = self.unit_sched.add(LoraLink(self.settings, self.medium.radio("unit"),
                                                 SlotStore(self.unit_fs, "lora")))
        self.rec = self.unit_sched.add(Recorder("rx", (m.RAPI_RX_LINE, m.LORA_AIR)))
        self.uart = Uart()
        self.bridge_radio = self.medium.radio("bridge")
        self.boot_bridge()

    def boot_bridge(self):
        self.bridge_sched = Scheduler(self.clock)
        self.bridge = self.bridge_sched.add(LoraLink(Settings({"lora_key": self.key}),
                                                     self.bridge_radio,
                                                     SlotStore(self.bridge_fs, "lora"), uart=self.uart))

    def run(self, ms, step=5):
        for _ in range(ms // step):
            self.clock.advance(step)
            self.bridge_sched.run_once()
            self.unit_sched.run_once()

    def tx(self, line):
        self.unit_sched.post(m.RAPI_TX_LINE, line)


def test_lines_cross_both_ways_with_acks():
    p = Pair()
    p.tx(b"$GS :41^5E\r")
    p.run(300)
    assert p.uart.written == b"$GS :41^5E\r"
    p.uart.inq = b"$OK 03 0 03 0540 :41^7C\r$AT 03 03 16 0540^1F\r"
    p.run(600)
    assert p.rec.of(m.RAPI_RX_LINE) == [b"$OK 03 0 03 0540 :41^7C", b"$AT 03 03 16 0540^1F"]
    assert not p.unit.out and not p.bridge.out  # everything acknowledged
    assert p.unit.stats["resent"] == 0 and p.medium.stats["collisions"] == 0


def test_lost_frames_are_sent_again_with_back_off():
    p = Pair()
    p.medium.down = True
    p.tx(b"$SY :42^31\r")
    p.run(400)
    assert p.uart.written == b""
    p.medium.down = False
    p.run(3000)
    assert p.uart.written == b"$SY :42^31\r"  # once: a repeat is acknowledged, not delivered
    assert p.unit.stats["resent"] >= 1


def test_replayed_and_forged_frames_are_never_accepted():
    p = Pair()
    for i in range(20):
        p.tx(b"$GG :%02X^00\r" % (0x41 + i))
        p.run(400)
        p.uart.inq = b"$OK 0 230000 :%02X^00\r" % (0x41 + i)
        p.run(300)
    p.run(3000)
    heard = list(p.medium.recorded)
    assert len(heard) >= 40
    written, got = p.uart.written, list(p.rec.of(m.RAPI_RX_LINE))
    acc = (p.unit.stats["accepted"], p.bridge.stats["accepted"])
    rng = random.Random(5)
    for i in range(10000):
        f = bytearray(rng.choice(heard))
        how = i % 4
        if how == 1:  # a new counter on an old frame
            f[1:5] = (0x7FFFFF00 + i).to_bytes(4, "big")
        elif how == 2:  # a flipped bit anywhere
            f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
        elif how == 3:  # random bytes
            f = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        p.medium.inject(bytes(f))
        if i % 50 == 0:
            p.run(10)
    p.run(200)
    # nothing the attacker sent was accepted; what each side accepted meanwhile is at most the
    # peer's signed RESYNC (one a minute) that old authentic frames provoke
    assert p.unit.stats["accepted"] - acc[0] <= 1 and p.bridge.stats["accepted"] - acc[1] <= 1
    assert p.uart.written == written and p.rec.of(m.RAPI_RX_LINE) == got


def test_a_rebooted_receiver_resyncs_the_sender_and_refuses_old_frames():
    p = Pair()
    for i in range(3):
        p.tx(b"$GS :%02X^00\r" % (0x41 + i))
        p.run(400)
    old = list(p.medium.recorded)
    p.boot_bridge()  # the bridge reboots: its window is gone, its floor is the persisted mark
    p.uart.written = b""
    for f in old:
        p.medium.inject(f)
    p.run(50)
    assert p.uart.written == b""  # nothing heard before the reboot is accepted after it
    p.tx(b"$GV :50^00\r")
    p.run(3000)
    assert p.uart.written == b"$GV :50^00\r"  # resynced: the unit continued above the floor
    assert p.unit.counters.tx > p.bridge.replay.floor


def test_near_the_budget_only_safety_lines_go():
    p = Pair()
    led = p.unit.ledger
    led.spend(p.unit.now(), 36000 * 1000 - 3000 * 1000)  # 3 s left: inside the 10 % reserve
    for line in (b"$GG :41^00\r", b"$SC 10 V :42^00\r", b"$SC 16 V :43^00\r", b"$SY :44^00\r",
                 b"$FS :45^00\r", b"$GS :46^00\r"):
        p.tx(line)
        p.run(500)
    assert p.uart.written == b"$SC 10 V :42^00\r$SY :44^00\r$FS :45^00\r"
    assert p.unit.stats["refused"] == 3
    assert led.used_ms(p.unit.now()) <= 36000


def test_no_key_sends_nothing():
    p = Pair(key="")
    p.tx(b"$GS :41^5E\r")
    p.run(300)
    assert p.medium.stats["frames"] == 0


def test_airtime_is_posted():
    p = Pair()
    p.tx(b"$GS :41^5E\r")
    p.run(61000, step=50)
    air = p.rec.of(m.LORA_AIR)
    assert air and air[-1][1] == 36000 and air[-1][2] == 3600000 and air[-1][0] > 0


# --- the whole install: the unit, the bridge and the emulator ------------------------------------
def _charging(w):
    from hil.ev_model import EvModel

    assert w.run_until(lambda: w.app.rapi.up, 20000)
    w.run_for(8000)
    w.emu.plug(EvModel(max_amps=32, response_s=1.0))
    return w.run_until(lambda: w.emu.state == 3, 30000)


def test_bridge_end_to_end_with_loss_against_the_emulator():
    from hil.world import World

    w = World(link="lora", lora_loss=0.3, lora_seed=7)
    try:
        assert _charging(w)
        w.set("c_limit", 10)
        assert w.run_until(lambda: w.emu.current_capacity == 10, 10000)
        downs = w.app.rapi.stats["downs"]
        w.run_for(120000, step=20)
        assert w.emu.state == 3 and w.emu.current_capacity == 10  # no heartbeat fallback
        assert w.app.lora.stats["resent"] > 0 and w.medium.stats["lost"] > 0
        assert w.app.rapi.stats["downs"] - downs <= 1
        # the radio dies: the controller drops to the safe current by itself (heartbeat)
        w.medium.down = True
        assert w.run_until(lambda: w.emu.current_capacity == 6, 65000 + 5000, step=50)
    finally:
        w.close()


def test_set_lora_swaps_live_and_retries_in_flight_requests():
    from hil.world import World

    w = World(link="lora")
    try:
        assert w.run_until(lambda: w.app.rapi.up, 20000)
        w.run_for(8000)
        asker = w.sched.add(Recorder("asker", ()))
        rapi = w.app.rapi
        w.sched.post(m.RAPI_REQUEST, (asker, "v", "GV", None))
        assert w.run_until(lambda: rapi.inflight is not None and rapi.inflight.tag == "v", 2000, step=5)
        w.set("lora", 0)  # mid-flight: dropped on the radio, sent again on the cable
        w.run_for(5, step=5)
        assert not rapi.radio and w.app.uart.active and not w.app.lora.active
        assert w.run_until(lambda: asker.of(m.RAPI_REPLY), 3000, step=5)
        assert asker.of(m.RAPI_REPLY)[0][1] is True
        assert w.app.uart.bytes_out > 0
        n = w.app.lora.stats["sent"]
        w.run_for(5000)
        assert w.app.lora.stats["sent"] == n  # the radio is quiet now
        w.sched.post(m.RAPI_REQUEST, (asker, "v2", "GV", None))
        assert w.run_until(lambda: rapi.inflight is not None and rapi.inflight.tag == "v2", 2000, step=5)
        w.set("lora", 1)
        w.run_for(5, step=5)
        assert w.run_until(lambda: len(asker.of(m.RAPI_REPLY)) == 2, 5000, step=5)
        assert asker.of(m.RAPI_REPLY)[1][:2] == ("v2", True)
        assert w.app.lora.stats["sent"] > n and rapi.up
    finally:
        w.close()


# --- the board glue: adafruit_rfm9x on a fake SX127x ---------------------------------------------
def test_rfm9x_glue_on_a_fake_sx127x_never_blocks():
    from dinamics.lora_radio import Rfm9xRadio
    from hil.fake_sx127x import FakeAir, FakePin, FakeSpi, FakeSX127x

    t = [0.0]
    air = FakeAir()
    chips, radios = [], []
    for sf in (9, 9):
        c = FakeSX127x(lambda: t[0])
        air.join(c)
        spi = FakeSpi(c)
        radios.append(Rfm9xRadio(spi, spi.cs_pin(), FakePin(), 868, sf, 125))
        chips.append(c)
    a, b = radios
    assert chips[0].sf_bw() == (9, 125) and chips[0].regs[0x01] & 0x80  # LoRa mode, SF9
    assert chips[0].regs[0x01] & 7 == 5  # listening
    frame = bytes(range(30))
    assert a.send(frame)
    assert a.busy() and not a.send(frame)  # on air: not waited for, refused
    assert b.receive() is None and t[0] == 0.0
    t[0] += airtime_us(30, sf=9) / 1000.0
    assert not a.busy()
    assert b.receive() == frame and b.rssi == -70
    assert b.receive() is None
    assert chips[0].regs[0x12] == 0  # TxDone cleared
    assert chips[0].regs[0x01] & 7 == 5  # back to listening
    assert not b.carrier()


def test_radio_settings_reach_the_rfm9x_live():
    from dinamics.lora_radio import Rfm9xRadio
    from hil.fake_sx127x import FakePin, FakeSpi, FakeSX127x

    chip = FakeSX127x()
    spi = FakeSpi(chip)
    radio = Rfm9xRadio(spi, spi.cs_pin(), FakePin(), 868, 7, 125)
    s = Settings({"lora_key": KEY_HEX})
    sched = Scheduler(VirtualClock())
    link = sched.add(LoraLink(s, radio, SlotStore(CuttingFs(), "lora")))
    for name, v in (("lora_sf", 10), ("lora_bw", 250), ("lora_band", 915)):
        s.apply(name, v)
    sched.post(m.SETTING_CHANGED, ("lora_sf", "lora_bw", "lora_band"))
    sched.run_once()
    assert chip.sf_bw() == (10, 250)
    frf = (chip.regs[6] << 16) | (chip.regs[7] << 8) | chip.regs[8]
    assert abs(frf * 32e6 / 524288 / 1e6 - 915.0) < 0.01
    assert link.ledger.budget == 400 and chip.regs[0x01] & 7 == 5


def test_airtime_goes_out_on_its_own_topic():
    import json

    from test_mqtt_bridge import BridgeRig

    r = BridgeRig()
    r.connect()
    r.sched.post(m.LORA_AIR, (1234, 36000, 3600000, 17, 2, -71))
    r.run()
    assert json.loads(r.published("lora")[-1]) == {"airtime_ms": 1234, "budget_ms": 36000,
                                                   "window_s": 3600, "frames": 17, "refused": 2,
                                                   "rssi": -71}


def test_a_sender_that_lost_its_counters_is_resynced():
    p = Pair()
    for i in range(40):
        p.tx(b"$GS :%02X^00\r" % (0x41 + i % 60))
        p.run(300)
    p.unit_fs.files.clear()  # the unit's drive was wiped: its counters start again at 1
    p.unit_sched = Scheduler(p.clock)
    p.unit = p.unit_sched.add(LoraLink(p.settings, p.medium.radios[0], SlotStore(p.unit_fs, "lora")))
    p.uart.written = b""
    p.tx(b"$GV :50^00\r")
    p.run(3000)
    # its first frame looks like an old one: refused, answered with a RESYNC; the frame goes
    # again above the bridge's window and arrives once
    assert p.bridge.stats["old"] >= 1 and p.unit.counters.tx > p.bridge.replay.top - 1
    assert p.uart.written == b"$GV :50^00\r"
