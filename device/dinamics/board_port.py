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

import board
import busio
import microcontroller

from dinamics import messages as m
from dinamics.clock import BoardClock
from dinamics.store import FlashFs

_LEVEL = {m.DEBUG: "D", m.INFO: "I", m.WARNING: "W", m.ERROR_LEVEL: "E"}
WATCHDOG_TIMEOUT_S = 8  # a hung loop, or fatal() starving the watchdog, resets within this
_RESET_GRACE_MS = 2000  # fatal(): microcontroller.reset() this long after the watchdog should have


def _gpio():
    """microcontroller.pin: GPIO<n> on every ESP32-S3 board (not in circuitpython-stubs)."""
    return getattr(microcontroller, "pin")


def _env_int(getenv, name, default):
    v = getenv(name)
    return default if v is None else int(v)


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
    def __init__(self):
        self.clock = BoardClock()
        self.console = Console(self.clock)
        self._feeder = None  # the WatchdogFeeder, once start_watchdog() ran
        self.fs = FlashFs("/")
        from dinamics import board_profiles as bp  # boot-time only: code.py drops it after

        self.roles = bp.ROLES
        # Raises bp.BoardError (one line, code.py prints it) for an unknown board or a bad pin.
        self.board_name, self.pins = bp.resolve(bp.getenv, getattr(board, "board_id", ""), board,
                                                _gpio())
        print(bp.describe(self.board_name, self.pins))
        self.evse_uart = busio.UART(self.pin("EVSE_TX"), self.pin("EVSE_RX"),
                                    baudrate=115200, timeout=0, receiver_buffer_size=512)
        self.ct_stream = None
        self.ct_adc = None
        if bp.getenv("DINAMICS_HIL") == 1:
            import usb_cdc

            self.ct_stream = usb_cdc.data
            if self.ct_stream is not None:
                self.ct_stream.timeout = 0  # default None blocks
        else:
            pins = [self.pin("CT1"), self.pin("CT2"), self.pin("CT3")]
            self.ct_adc = AdcCapture(pins, _env_int(bp.getenv, "DINAMICS_CT_RATE", 10013))
        self._i2c = None
        self._i2c_said = False
        have_lcd = self.pin("LCD_SDA") is not None and self.pin("LCD_SCL") is not None
        self.i2c_bus = self._i2c_bus if have_lcd else None  # the lcd actor is wired only with pins
        self.socket_pool = None
        self.ssl_context = None
        self.mac = b"\x00" * 6
        self.radio = None
        self.wifi_env = (bp.getenv("CIRCUITPY_WIFI_SSID"), bp.getenv("CIRCUITPY_WIFI_PASSWORD"),
                         bp.getenv("DINAMICS_AP_PASSWORD"))
        try:
            import socketpool
            import ssl
            import wifi

            # The stubs type mac_address as ReadableBuffer, a union that includes RGBMatrix.
            self.mac = bytes(wifi.radio.mac_address)  # pyright: ignore[reportArgumentType]
            self.socket_pool = socketpool.SocketPool(wifi.radio)
            self.ssl_context = ssl.create_default_context()
            self._wifi = wifi
        except ImportError:
            self._wifi = None
        if self._wifi is not None:
            try:
                import mdns
            except ImportError:
                mdns = None
            from dinamics.wifi_radio import WifiRadio

            self.radio = WifiRadio(self._wifi, self.socket_pool, mdns)

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

    def ip(self):
        if self._wifi is not None and self._wifi.radio.ipv4_address is not None:
            return str(self._wifi.radio.ipv4_address)
        if self._wifi is not None and getattr(self._wifi.radio, "ipv4_address_ap", None) is not None:
            return str(self._wifi.radio.ipv4_address_ap)
        return ""

    def mem_free(self):
        return gc.mem_free()  # pyright: ignore[reportAttributeAccessIssue] (CircuitPython gc)

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
