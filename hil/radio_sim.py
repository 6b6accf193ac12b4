"""A simulated LoRa medium for the host (virtual or real clock), behind the radio interface
lora_link uses (send / busy / receive / rssi; see device/actors/lora_link.py).

- time on air: a frame occupies the air for dinamics.lora_air.airtime_us(len) at the medium's
  SF/BW and reaches the other radios when it ends; the sender is busy meanwhile;
- loss: each frame is lost for each receiver with probability `loss` (seeded);
- collisions: two frames that overlap in time are both lost; a radio that sends while a frame
  arrives misses it (half duplex);
- attackers: `recorded` keeps every frame sent (what a replaying attacker hears); `inject(frame)`
  hands any bytes to the radios at once (a replaying or forging attacker next to them).
"""
import random

from dinamics.lora_air import airtime_us


class Medium:
    def __init__(self, now_ms, sf=7, bw_khz=125, loss=0.0, seed=1, record=2000):
        self.now_ms = now_ms
        self.sf = sf
        self.bw = bw_khz
        self.loss = loss
        self.rng = random.Random(seed)
        self.radios = []
        self.air = []  # [start, end, sender, frame]
        self.recorded = []
        self.record = record
        self.stats = {"frames": 0, "lost": 0, "collisions": 0, "deaf": 0, "injected": 0}
        self.down = False  # True: nothing gets through (a dead radio link)

    def radio(self, name):
        r = SimRadio(self, name)
        self.radios.append(r)
        return r

    def toa_ms(self, n):
        return airtime_us(n, self.sf, self.bw) / 1000.0

    def _send(self, radio, frame):
        now = self.now_ms()
        end = now + self.toa_ms(len(frame))
        self.stats["frames"] += 1
        rec = [now, end, radio, bytes(frame), False]
        for other in self.air:
            if other[0] < end and now < other[1] and other[2] is not radio:
                other[4] = rec[4] = True  # overlap: both garbled
        self.air.append(rec)
        if len(self.recorded) < self.record:
            self.recorded.append(bytes(frame))
        return end

    def _settle(self):
        """Deliver the frames whose time on air is over."""
        now = self.now_ms()
        keep = []
        for rec in self.air:
            start, end, sender, frame, garbled = rec
            if end > now:
                keep.append(rec)
                continue
            if garbled:
                self.stats["collisions"] += 1
            for r in self.radios:
                if r is sender:
                    continue
                if garbled or self.down:
                    self.stats["lost"] += 1
                elif r.tx_start is not None and r.tx_start < end and start < r.tx_end:
                    self.stats["deaf"] += 1
                elif self.loss and self.rng.random() < self.loss:
                    self.stats["lost"] += 1
                else:
                    r.inbox.append(frame)
        self.air = keep

    def inject(self, frame, to=None):
        """An attacker's frame, heard at once by `to` (a SimRadio) or every radio."""
        self.stats["injected"] += 1
        for r in self.radios if to is None else (to,):
            r.inbox.append(bytes(frame))


class SimRadio:
    def __init__(self, medium, name):
        self.medium = medium
        self.name = name
        self.inbox = []
        self.tx_start = None
        self.tx_end = 0.0
        self.rssi = -60
        self.sent = 0

    def send(self, frame):
        if self.busy():
            return False
        self.tx_start = self.medium.now_ms()
        self.tx_end = self.medium._send(self, frame)
        self.sent += 1
        return True

    def busy(self):
        return self.tx_start is not None and self.medium.now_ms() < self.tx_end

    def carrier(self):
        """Another radio's frame is on air now (the SX127x's ModemStat "signal detected")."""
        now = self.medium.now_ms()
        for rec in self.medium.air:
            if rec[2] is not self and rec[0] <= now < rec[1]:
                return True
        return False

    def receive(self):
        m = self.medium
        if m.air:
            m._settle()
        if self.inbox:
            return self.inbox.pop(0)
        return None


class SharedPort:
    """One serial port (the controller's line) read once and heard by several readers: the
    unit's uart_link and the bridge's lora_link in a world that can swap between cable and
    radio live. Each reader keeps at most `keep` bytes (an idle reader forgets the oldest)."""

    def __init__(self, ser, keep=512):
        self.ser = ser
        self.keep = keep
        self.readers = []

    def reader(self):
        r = _Reader(self)
        self.readers.append(r)
        return r

    def pump(self):
        n = self.ser.in_waiting
        if not n:
            return 0
        data = self.ser.read(n)
        for r in self.readers:
            r.buf += data
            if len(r.buf) > self.keep:
                del r.buf[:len(r.buf) - self.keep]
        return len(data)


class _Reader:
    def __init__(self, shared):
        self.shared = shared
        self.buf = bytearray()

    @property
    def in_waiting(self):
        return len(self.buf)

    def readinto(self, out):
        n = min(len(out), len(self.buf))
        out[:n] = self.buf[:n]
        del self.buf[:n]
        return n

    def read(self, size=1):
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def write(self, data):
        return self.shared.ser.write(data)

    def close(self):
        pass


class BridgePort:
    """The host port of the bridge at the charger (dinamics.bridge_app): its own state
    directory, the shared controller line and one radio of the medium."""

    def __init__(self, uart, radio, fs, clock, console):
        self.evse_uart = uart
        self.radio = radio
        self.fs = fs
        self.clock = clock
        self.console = console
        self.fatal_actors = []

    def fatal(self, actor):
        self.fatal_actors.append(actor.name)

    def lora_radio(self, settings):
        return self.radio
