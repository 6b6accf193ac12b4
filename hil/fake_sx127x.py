"""A register-level fake SX127x (RFM9x) on a fake SPI bus, enough for adafruit_rfm9x's init, tx,
rx and IRQ flags, so the board's radio glue (device/dinamics/lora_radio.py) runs unchanged on the
host against it.

Modelled: version 0x12; RegOpMode (LoRa bit settable in sleep only, modes); the FIFO with its
address pointer, TX/RX base and RX current address, RxNbBytes; RegIrqFlags (write 1 to clear):
TxDone when the frame's time on air (from the SF/BW registers) has passed on the fake's clock,
RxDone when a frame arrives in RX mode; packet RSSI/SNR. Every other register is plain storage.
Chips on one `FakeAir` hear each other's frames (when in RX mode as the frame ends).
"""
from dinamics.lora_air import airtime_us

_BW_KHZ = {7: 125, 8: 250, 9: 500}


class FakePin:
    """digitalio.DigitalInOut stand-in (CS, RESET)."""

    def __init__(self, on_change=None):
        self.value = True
        self.on_change = on_change
        self.history = []

    def switch_to_output(self, value=False, drive_mode=None):
        self.value = value

    def __setattr__(self, name, v):
        object.__setattr__(self, name, v)
        if name == "value" and getattr(self, "on_change", None) is not None:
            self.history.append(v)
            self.on_change(v)


class FakeAir:
    def __init__(self):
        self.chips = []

    def join(self, chip):
        self.chips.append(chip)
        chip.air = self

    def carry(self, sender, frame):
        for c in self.chips:
            if c is not sender:
                c.arrive(frame)


class FakeSX127x:
    def __init__(self, clock=None):
        self.regs = bytearray(0x80)
        self.regs[0x42] = 0x12
        self.regs[0x01] = 0x09  # FSK, standby, LF mode on (reset value)
        self.regs[0x1D] = 0x72  # BW125 CR4/5 explicit header
        self.regs[0x1E] = 0x70  # SF7
        self.fifo = bytearray(256)
        self.now = clock or (lambda: 0)
        self.air = None
        self.tx_end = None
        self.sent = []
        self.spi_ops = 0
        self.resets = 0
        self._addr = None
        self._write = False

    # --- SPI side ------------------------------------------------------------------------------
    def select(self, active):
        if active:
            self._addr = None
        self.tick()

    def write_byte(self, b):
        if self._addr is None:
            self._addr = b & 0x7F
            self._write = bool(b & 0x80)
            return
        if self._write:
            self._store(self._addr, b)
            if self._addr != 0:
                self._addr += 1

    def read_byte(self):
        if self._addr == 0:
            ptr = self.regs[0x0D]
            self.regs[0x0D] = (ptr + 1) & 0xFF
            return self.fifo[ptr]
        v = self.regs[self._addr]
        self._addr += 1
        return v

    def _store(self, addr, v):
        r = self.regs
        if addr == 0x00:
            ptr = r[0x0D]
            self.fifo[ptr] = v
            r[0x0D] = (ptr + 1) & 0xFF
        elif addr == 0x01:
            mode_now = r[0x01] & 7
            if mode_now != 0:  # LongRangeMode changes only in sleep
                v = (v & 0x7F) | (r[0x01] & 0x80)
            r[0x01] = v
            if v & 7 == 3 and mode_now != 3:
                self._start_tx()
        elif addr == 0x12:
            r[0x12] &= ~v & 0xFF
        elif addr == 0x42:
            pass
        else:
            r[addr] = v

    # --- radio side ----------------------------------------------------------------------------
    def mode(self):
        return self.regs[0x01] & 7

    def sf_bw(self):
        return self.regs[0x1E] >> 4, _BW_KHZ.get(self.regs[0x1D] >> 4, 125)

    def _start_tx(self):
        n = self.regs[0x22]
        base = self.regs[0x0E]
        frame = bytes(self.fifo[(base + i) & 0xFF] for i in range(n))
        sf, bw = self.sf_bw()
        self.tx_end = self.now() + airtime_us(n, sf, bw) / 1000.0
        self._tx_frame = frame

    def tick(self):
        if self.tx_end is not None and self.now() >= self.tx_end:
            self.tx_end = None
            self.regs[0x12] |= 0x08  # TxDone
            self.regs[0x01] = (self.regs[0x01] & 0xF8) | 1  # back to standby
            self.sent.append(self._tx_frame)
            if self.air is not None:
                self.air.carry(self, self._tx_frame)

    def arrive(self, frame, rssi=-70):
        """A frame ends on air: kept only in RX continuous mode."""
        if self.mode() != 5:
            return False
        base = self.regs[0x0F]
        for i, b in enumerate(frame):
            self.fifo[(base + i) & 0xFF] = b
        self.regs[0x10] = base
        self.regs[0x13] = len(frame)
        self.regs[0x1A] = rssi + 157
        self.regs[0x19] = 40
        self.regs[0x12] |= 0x40  # RxDone
        return True


class FakeSpi:
    """busio.SPI stand-in that drives one FakeSX127x (CS through FakePin)."""

    def __init__(self, chip):
        self.chip = chip
        self.locked = False
        self.configured = None

    def cs_pin(self):
        return FakePin(lambda v: self.chip.select(not v))

    def try_lock(self):
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self):
        self.locked = False

    def configure(self, baudrate=100000, polarity=0, phase=0, bits=8):
        self.configured = (baudrate, polarity, phase)

    def write(self, buf, start=0, end=None):
        end = len(buf) if end is None else end
        self.chip.spi_ops += 1
        for i in range(start, end):
            self.chip.write_byte(buf[i])

    def readinto(self, buf, start=0, end=None, write_value=0):
        end = len(buf) if end is None else end
        self.chip.spi_ops += 1
        for i in range(start, end):
            buf[i] = self.chip.read_byte()
