"""Board port: the hardware surface the app needs, on an ESP32-S3 running CircuitPython 10.

Pins come from the board profile (dinamics.board_profiles: DINAMICS_BOARD in /settings.toml, else
board.board_id) and the DINAMICS_* pin keys that override it; tables in docs/board.md.
  DINAMICS_EVSE_TX, DINAMICS_EVSE_RX   UART to the OpenEVSE controller (115200 8N1)
  DINAMICS_CT_PINS = "1,2,3"           CT1..CT3 on ADC1 pins (GPIO1-10 only: ADC2 fights WiFi)
  DINAMICS_CT_RATE = 10013             CT sample rate in Hz: deliberately not a whole
                                       multiple of 50/60 Hz, so dimmer (phase-cut) edges
                                       are not always sampled at the same instant
  DINAMICS_HIL = 1                     read the CT feed from usb_cdc.data (see boot.py)
WiFi: the wifi actor (actors/wifi.py) over dinamics.wifi_radio.WifiRadio(wifi, pool, mdns): the
wifi_ssid / wifi_pass settings, then CIRCUITPY_WIFI_SSID / CIRCUITPY_WIFI_PASSWORD (CircuitPython
may have joined that one before code.py: adopted), then the service network; else the setup AP
(DINAMICS_AP_PASSWORD, else a random per-unit password; docs/web.md).
"""
import gc

import busio
import microcontroller

from dinamics import messages as m

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

TYPE_CHECKING = const(0)  # type checkers take it as true; MicroPython compiles `if 0:` to nothing
if TYPE_CHECKING:  # the types of what board_init.build sets (BoardPort's annotations)
    import types

    from dinamics.clock import BoardClock
    from dinamics.store import FlashFs
    from dinamics.watchdog import WatchdogFeeder
    from dinamics.wifi_radio import WifiRadio

_LEVEL = {m.DEBUG: "D", m.INFO: "I", m.WARNING: "W", m.ERROR_LEVEL: "E"}
WATCHDOG_TIMEOUT_S = 8  # a hung loop, or fatal() starving the watchdog, resets within this
_RESET_GRACE_MS = 2000  # fatal(): microcontroller.reset() this long after the watchdog should have


def _gpio():
    """microcontroller.pin: GPIO<n> on every ESP32-S3 board (not in circuitpython-stubs)."""
    return getattr(microcontroller, "pin")


class Console:
    """Serial console lines. Nothing is kept: the MQTT bridge has its own debug_log ring (a copy
    here was ~2 KB of heap no one read, docs/heap.md)."""

    def __init__(self, clock):
        self.clock = clock

    def __call__(self, level, text):
        print("%d %s %s" % (self.clock.now(), _LEVEL.get(level, "?"), text))


class AdcCapture:
    """CT capture with analogbufio.BufferedIn, one pin object per CT (created on demand so only
    one ADC channel is configured at a time)."""

    def __init__(self, pins, sample_rate):
        self.pins = pins
        self.sample_rate = sample_rate
        self.channels = list(range(len(pins)))

    def capture(self, ch, buf):
        import analogbufio

        adc = analogbufio.BufferedIn(self.pins[ch], sample_rate=self.sample_rate)
        try:
            return adc.readinto(buf)
        finally:
            adc.deinit()


class BoardPort:
    # Set by dinamics.board_init.build (boot-time code); annotations only, no code on a board.
    clock: "BoardClock"
    console: Console
    fs: "FlashFs"
    roles: tuple
    board_name: str
    pins: bytearray
    evse_uart: "busio.UART"
    ct_stream: object
    ct_adc: "AdcCapture | None"
    i2c_bus: object
    socket_pool: object
    ssl_context: object
    mac: bytes
    radio: "WifiRadio | None"
    wifi_env: tuple
    _wifi: "types.ModuleType | None"  # the wifi module, or None without one
    _feeder: "WatchdogFeeder | None"
    _i2c: "busio.I2C | None"
    _i2c_said: bool

    def __init__(self):
        """Resolve the pins and build the UART, the CT source, the WiFi radio: boot-time code, in
        dinamics.board_init, imported for this and dropped after (heap, docs/heap.md). Raises
        board_profiles.BoardError (one line, code.py prints it) for an unknown board or a bad pin."""
        import sys

        import dinamics
        from dinamics import board_init

        try:
            board_init.build(self)
        finally:
            sys.modules.pop("dinamics.board_init", None)
            if hasattr(dinamics, "board_init"):
                delattr(dinamics, "board_init")

    def _i2c_bus(self):
        """The unit LCD's I2C bus (100 kHz: the PCF8574 is a standard-mode part), built on first
        use; None while it cannot be: busio.I2C refuses a bus without pull-ups, which is a bus with
        no backpack on it yet, so the lcd actor asks again at its next probe."""
        scl, sda = self.pin("LCD_SCL"), self.pin("LCD_SDA")
        if self._i2c is None and scl is not None and sda is not None:
            try:
                self._i2c = busio.I2C(scl, sda, frequency=100000)
            except (RuntimeError, ValueError) as e:
                if not self._i2c_said:
                    print("lcd: no I2C bus yet:", e)
                    self._i2c_said = True
                return None
        return self._i2c

    def pin(self, role):
        """The pin object for a role of board_profiles.ROLES ("LCD_SDA", "LORA_CS", …), None when
        the role is unused (255)."""
        n = self.pins[self.roles.index(role)]
        return None if n == 255 else getattr(_gpio(), "GPIO%d" % n)

    def lora_radio(self, settings):
        """The RFM9x on the LORA_* pins (lazily: only a LoRa-linked unit or a bridge pays for
        adafruit_rfm9x), None when the profile has no LoRa CS pin."""
        sck, mosi, miso = self.pin("LORA_SCK"), self.pin("LORA_MOSI"), self.pin("LORA_MISO")
        cs, rst = self.pin("LORA_CS"), self.pin("LORA_RST")
        if sck is None or mosi is None or miso is None or cs is None or rst is None:
            return None
        import digitalio

        from dinamics.lora_radio import Rfm9xRadio

        spi = busio.SPI(sck, MOSI=mosi, MISO=miso)
        return Rfm9xRadio(spi, digitalio.DigitalInOut(cs), digitalio.DigitalInOut(rst),
                          settings.get("lora_band"), settings.get("lora_sf"), settings.get("lora_bw"))

    def ip(self):
        """The station's address, else the setup AP's; "" when there is none. Never raises."""
        w = self._wifi
        if w is None:
            return ""
        try:
            r = w.radio
            a = r.ipv4_address
            if a is None:
                a = r.ipv4_address_ap
            return str(a) if a is not None else ""
        except Exception:  # noqa: BLE001 - radio off, an older build without the AP address
            return ""

    def mem_free(self):
        return gc.mem_free()  # pyright: ignore[reportAttributeAccessIssue] (CircuitPython gc)

    def restart(self):
        """The web UI's restart (after its answer went out)."""
        print("restart asked from the web UI")
        microcontroller.reset()

    def fatal(self, actor):
        """An actor kept crashing and was stopped (the scheduler has posted `actor.stopped`).
        Recover by a clean reset, without blocking the loop: the watchdog is no longer fed, so it
        resets the board (reset reason WATCHDOG) within its timeout; meanwhile the other actors
        run on and the bridge can publish. microcontroller.reset() is only the backstop (no
        watchdog, or still up after timeout + 2 s)."""
        print("fatal: %s keeps crashing, resetting" % actor.name)
        feeder = self._feeder
        if feeder is None:  # start_watchdog() never ran: no timer to wait with
            microcontroller.reset()
            return
        feeder.starve(actor.name)

    def start_watchdog(self, sched, timeout_s=WATCHDOG_TIMEOUT_S):
        """Hardware watchdog: a hung loop resets the board; the controller's $SY heartbeat
        meanwhile holds the car at the safe current. The feeder is registered even without a
        watchdog, as fatal()'s reset backstop."""
        from dinamics.watchdog import WatchdogFeeder

        wd = None
        grace_ms = _RESET_GRACE_MS
        try:
            from watchdog import WatchDogMode

            wd = microcontroller.watchdog
            if wd is not None:
                wd.timeout = timeout_s
                wd.mode = WatchDogMode.RESET
                grace_ms = timeout_s * 1000 + _RESET_GRACE_MS
        except (ImportError, NotImplementedError, RuntimeError, ValueError) as e:
            wd = None
            print("watchdog unavailable:", repr(e))
        self._feeder = sched.add(WatchdogFeeder(wd, reset=microcontroller.reset, grace_ms=grace_ms))
