"""An HD44780 character LCD behind an I2C backpack, on a fake I2C bus, for the host.

The real Adafruit libraries (adafruit_character_lcd with adafruit_mcp230xx or adafruit_pcf8574)
run unchanged against `FakeI2C`: it has the busio.I2C surface they use (try_lock / unlock / scan /
writeto / readfrom_into / writeto_then_readfrom). A backpack decodes what arrives into pin levels
and the HD44780 model latches a nibble on every falling edge of E:

  Pcf8574Backpack  the cheap "1602 I2C" board (0x27, PCF8574A 0x3F): one port byte per write,
                   P0 RS, P1 RW, P2 E, P3 backlight, P4-P7 D4-D7
  Mcp23008Backpack Adafruit's I2C/SPI backpack (0x20): registers IODIR..OLAT, GPIO bit 1 RS,
                   bit 2 E, bits 3-6 D4-D7, bit 7 backlight

The model keeps DDRAM (two 40-byte lines, as the controller does in 2-line mode), the entry mode,
the address counter, clear/home, cursor shifts, display on/off and the backlight; `lines()` is the
character grid of a 16x2 or 20x4 glass (rows at DDRAM 0x00, 0x40, 0x14, 0x54).

Timing: `Cost` adds up what the transfers would take on a board (I2C bits at the bus frequency
plus a per-transaction overhead for the Python call on the microcontroller) and, with
`charge_library_sleeps(cost)`, the libraries' own time.sleep() calls (1 ms per byte, 3 ms per
clear/home) instead of sleeping: a test runs at full speed and a benchmark reads the blocking time
a board would see.
"""
import errno

ROW_OFFSETS = (0x00, 0x40, 0x14, 0x54)
# A Python-level I2C call on an ESP32-S3 (I2CDevice context, try_lock, the busio call) before and
# after the bits themselves [estimate, not measured on a board].
CALL_OVERHEAD_US = 50


class Cost:
    """Microseconds a board would spend: I2C transfers plus the library's sleeps."""

    def __init__(self, frequency=100000, overhead_us=CALL_OVERHEAD_US):
        self.frequency = frequency
        self.overhead_us = overhead_us
        self.us = 0.0
        self.transactions = 0
        self.sleeps_us = 0.0

    def transfer(self, nbytes, restart=False):
        """One I2C transaction: start, address + nbytes (9 clocks each), stop; a repeated
        start with a second address byte for write-then-read."""
        bits = 9 * (1 + nbytes) + 2 + (10 if restart else 0)
        self.us += self.overhead_us + bits * 1e6 / self.frequency
        self.transactions += 1

    def sleep(self, seconds):
        self.us += seconds * 1e6
        self.sleeps_us += seconds * 1e6


class _Time:
    """Stands for the `time` module inside a library: sleep() is charged, not slept."""

    def __init__(self, real, cost):
        self._real = real
        self._cost = cost

    def sleep(self, seconds):
        self._cost.sleep(seconds)

    def __getattr__(self, name):
        return getattr(self._real, name)


_LIBRARY_MODULES = ("adafruit_character_lcd.character_lcd", "adafruit_character_lcd.character_lcd_i2c",
                    "dinamics.lcd_driver")


def charge_library_sleeps(cost):
    """Make the character LCD library charge its time.sleep() calls to `cost` instead of
    sleeping. Returns a function that restores the real `time`."""
    import importlib
    import time

    saved = []
    for name in _LIBRARY_MODULES:
        mod = importlib.import_module(name)
        saved.append((mod, mod.time))
        mod.time = _Time(time, cost)

    def restore():
        for mod, t in saved:
            mod.time = t

    return restore


class Hd44780:
    """The controller: 4-bit interface after the init sequence, DDRAM, address counter."""

    def __init__(self, cols=16, rows=2):
        self.cols = cols
        self.rows = rows
        self.ddram = bytearray(b" " * 128)
        self.cgram = bytearray(64)
        self.addr = 0
        self.cg = False  # data writes go to CGRAM after a CGRAM address command
        self.increment = True
        self.shift = False
        self.display_on = False
        self.two_lines = False
        self.eight_bit = True  # after power-on, until a function set with DL=0
        self._high = None  # the high nibble while waiting for the low one
        self.backlight = False
        self.commands = 0  # bytes received as commands
        self.data = 0  # bytes received as data
        self.clears = 0
        self.log = []  # (rs, byte) of every byte received (tests look at what was sent)
        self.keep_log = False

    # --- pins ------------------------------------------------------------------------------
    def nibble(self, rs, value4):
        """One falling edge of E with RS and D4-D7 = value4."""
        if self.eight_bit:
            # 8-bit mode: the nibble on D4-D7 is the high half of a whole byte (D0-D3 float low)
            self._byte(rs, value4 << 4)
            return
        if self._high is None:
            self._high = value4
            return
        b = (self._high << 4) | value4
        self._high = None
        self._byte(rs, b)

    def _byte(self, rs, b):
        if self.keep_log:
            self.log.append((rs, b))
        if rs:
            self.data += 1
            self._write_data(b)
        else:
            self.commands += 1
            self._command(b)

    def _step(self):
        d = 1 if self.increment else -1
        if self.cg:
            self.addr = (self.addr + d) & 0x3F
            return
        a = self.addr
        if self.two_lines:  # line 0 = 0x00..0x27, line 1 = 0x40..0x67, each wrapping into the other
            if d > 0:
                a = {0x27: 0x40, 0x67: 0x00}.get(a, a + 1)
            else:
                a = {0x00: 0x67, 0x40: 0x27}.get(a, a - 1)
        else:
            a = (a + d) % 80
        self.addr = a & 0x7F

    def _write_data(self, b):
        if self.cg:
            self.cgram[self.addr & 0x3F] = b
        else:
            self.ddram[self.addr & 0x7F] = b
        self._step()

    def _command(self, b):
        if b & 0x80:
            self.cg = False
            self.addr = b & 0x7F
        elif b & 0x40:
            self.cg = True
            self.addr = b & 0x3F
        elif b & 0x20:
            if self.eight_bit and not b & 0x10:
                self.eight_bit = False
                self._high = None
            elif not self.eight_bit and b & 0x10:
                self.eight_bit = True
            self.two_lines = bool(b & 0x08)
        elif b & 0x10:
            if not b & 0x08:  # cursor move (display shift is not modelled: never used here)
                inc = self.increment
                self.increment = bool(b & 0x04)
                self._step()
                self.increment = inc
        elif b & 0x08:
            self.display_on = bool(b & 0x04)
        elif b & 0x04:
            self.increment = bool(b & 0x02)
            self.shift = bool(b & 0x01)
        elif b & 0x02:
            self.addr = 0
            self.cg = False
        elif b & 0x01:
            self.ddram[:] = b" " * 128
            self.addr = 0
            self.cg = False
            self.increment = True
            self.clears += 1

    # --- what the glass shows ------------------------------------------------------------------
    def lines(self):
        out = []
        for r in range(self.rows):
            a = ROW_OFFSETS[r]
            out.append(bytes(self.ddram[a:a + self.cols]).decode("latin-1"))
        return out

    def text(self):
        return "\n".join(self.lines())

    def render(self):
        """A framed picture of the glass for a terminal."""
        bar = "+" + "-" * self.cols + "+"
        light = "" if self.backlight else "  (backlight off)"
        return "\n".join([bar] + ["|%s|" % ln for ln in self.lines()] + [bar + light])


class Pcf8574Backpack:
    """PCF8574 port -> HD44780 pins: P0 RS, P1 RW, P2 E, P3 backlight, P4-P7 D4-D7."""

    def __init__(self, lcd):
        self.lcd = lcd
        self.port = 0xFF  # quasi-bidirectional: high after power-on

    def write(self, data):
        for b in data:
            if self.port & 0x04 and not b & 0x04 and not self.port & 0x02:  # E falls, RW low
                self.lcd.nibble(self.port & 0x01, self.port >> 4)
            self.port = b
            self.lcd.backlight = bool(b & 0x08)

    def read(self, n):
        return bytes([self.port]) * n


class Mcp23008Backpack:
    """MCP23008 registers; GPIO/OLAT writes drive the pins: bit 1 RS, bit 2 E, bits 3-6 D4-D7,
    bit 7 backlight (only pins set as outputs in IODIR drive anything)."""
    IODIR, GPIO, OLAT = 0x00, 0x09, 0x0A

    def __init__(self, lcd):
        self.lcd = lcd
        self.regs = bytearray(11)
        self.regs[self.IODIR] = 0xFF
        self.ptr = 0
        self._pins = 0

    def _outputs(self):
        out = ~self.regs[self.IODIR] & 0xFF
        return self.regs[self.OLAT] & out

    def write(self, data):
        if not data:
            return
        self.ptr = data[0] % 11
        for b in data[1:]:
            r = self.ptr
            if r == self.GPIO:
                r = self.OLAT
            self.regs[r] = b
            self._update()
            self.ptr = (self.ptr + 1) % 11  # sequential operation (IOCON.SEQOP = 0)

    def _update(self):
        pins = self._outputs()
        if self._pins & 0x04 and not pins & 0x04:  # E falls
            self.lcd.nibble((self._pins >> 1) & 1, (self._pins >> 3) & 0x0F)
        self._pins = pins
        self.lcd.backlight = bool(pins & 0x80)

    def read(self, n):
        out = bytearray()
        for _ in range(n):
            if self.ptr == self.GPIO:
                out.append(self._outputs())  # inputs read low: nothing drives them here
            else:
                out.append(self.regs[self.ptr])
            self.ptr = (self.ptr + 1) % 11
        return bytes(out)


class FakeI2C:
    """busio.I2C on the host: devices by address; a missing address raises OSError(ENODEV) as a
    board's busio does. `devices` may change at any time (plug a display in after boot)."""

    def __init__(self, cost=None, devices=None):
        self.cost = cost or Cost()
        self.devices = dict(devices or {})
        self._locked = False
        self.scans = 0
        self.fail = False  # True: every transfer raises (a cable pulled mid-write)

    def try_lock(self):
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self):
        self._locked = False

    def scan(self):
        self.scans += 1
        return sorted(self.devices)

    def _dev(self, address):
        dev = self.devices.get(address)
        if dev is None or self.fail:
            raise OSError(errno.ENODEV, "No I2C device at address: 0x%x" % address)
        return dev

    def writeto(self, address, buffer, *, start=0, end=None):
        data = bytes(buffer[start:end if end is not None else len(buffer)])
        self.cost.transfer(len(data))
        self._dev(address).write(data)

    def readfrom_into(self, address, buffer, *, start=0, end=None):
        end = len(buffer) if end is None else end
        self.cost.transfer(end - start)
        data = self._dev(address).read(end - start)
        buffer[start:end] = data

    def writeto_then_readfrom(self, address, out_buffer, in_buffer, *, out_start=0, out_end=None,
                              in_start=0, in_end=None):
        out = bytes(out_buffer[out_start:out_end if out_end is not None else len(out_buffer)])
        in_end = len(in_buffer) if in_end is None else in_end
        self.cost.transfer(len(out) + (in_end - in_start), restart=True)
        dev = self._dev(address)
        dev.write(out)
        in_buffer[in_start:in_end] = dev.read(in_end - in_start)

    def deinit(self):
        pass


def attach(bus, kind, address=None, cols=16, rows=2):
    """Put a display on `bus`: kind "pcf8574" (default 0x27) or "mcp23008" (default 0x20).
    Returns the Hd44780 model."""
    lcd = Hd44780(cols, rows)
    if kind == "pcf8574":
        bus.devices[0x27 if address is None else address] = Pcf8574Backpack(lcd)
    elif kind == "mcp23008":
        bus.devices[0x20 if address is None else address] = Mcp23008Backpack(lcd)
    else:
        raise ValueError("unknown backpack %r (pcf8574, mcp23008)" % kind)
    return lcd


def open_pcf8574_library(i2c, address, cols, rows):
    """The PCF8574 backpack through the Adafruit libraries: adafruit_pcf8574 pins driving
    Character_LCD_Mono (P0 RS, P2 E, P4-P7 D4-D7, P3 backlight; P1 RW stays low: the PCF8574
    object starts with every pin written low). It works; the firmware uses its own
    dinamics.lcd_driver.Pcf8574Lcd instead (10x less bus time, ~10 KB less heap: docs/lcd.md).
    Kept for the comparison in tests and `python -m hil lcd-bench`."""
    from adafruit_character_lcd.character_lcd import Character_LCD_Mono
    from adafruit_pcf8574 import PCF8574

    pin = PCF8574(i2c, address).get_pin
    lcd = Character_LCD_Mono(pin(0), pin(2), pin(4), pin(5), pin(6), pin(7), cols, rows,
                             backlight_pin=pin(3))
    lcd.backlight = True
    return lcd


# --- the demo's and `python -m hil unit`'s terminal LCD ----------------------------------------

LCD_HELP = ("show the unit's LCD in the terminal: a display on a fake I2C bus, BACKPACK[:SIZE] with "
            "BACKPACK pcf8574 (0x27) or mcp23008 (0x20) and SIZE 16x2 (default) or 20x4")


def parse_lcd(spec):
    """"pcf8574", "mcp23008:20x4" -> (kind, cols, rows); ValueError when malformed."""
    kind, _, size = spec.partition(":")
    if kind not in ("pcf8574", "mcp23008"):
        raise ValueError("--lcd: backpack pcf8574 or mcp23008, got %r" % kind)
    size = size or "16x2"
    if size not in ("16x2", "20x4"):
        raise ValueError("--lcd: size 16x2 or 20x4, got %r" % size)
    cols, rows = (int(x) for x in size.split("x"))
    return kind, cols, rows


def terminal_lcd(spec):
    """-> (FakeI2C with a display on it, its Hd44780, restore()). The library's sleeps are
    charged, not slept (a PC has no reason to wait 1 ms per byte)."""
    kind, cols, rows = parse_lcd(spec)
    cost = Cost()
    restore = charge_library_sleeps(cost)
    bus = FakeI2C(cost)
    return bus, attach(bus, kind, cols=cols, rows=rows), restore


def lcd_settings(app, spec):
    """Tell the firmware the size of the display (as an installer would: set_lcd_size)."""
    _kind, cols, _rows = parse_lcd(spec)
    app.settings_actor.set("lcd_size", "2004" if cols == 20 else "1602", "cli")


def lcd_view(model, say, period_ms=1000):
    """A rig actor (host side) that prints the glass through `say` whenever it changed."""
    from dinamics import messages as m
    from dinamics.mailbox import Actor

    class LcdView(Actor):
        name = "lcd_view"

        def __init__(self):
            super().__init__()
            self.last = None

        def start(self):
            self.every(period_ms, "view")

        def handle(self, kind, payload):
            if kind != m.TIMER:
                return
            text = model.render()
            if text != self.last:
                self.last = text
                for line in ["unit LCD:"] + text.split("\n"):
                    say(line)

    return LcdView()
