"""Host port: the board's surface built from pyserial ports, a state directory and a clock."""
import os
import sys
import time

import serial

from dinamics import messages as m
from dinamics.clock import BoardClock
from hil.host_fs import DirFs

_LEVELS = {m.DEBUG: "DEBUG", m.INFO: "INFO", m.WARNING: "WARN", m.ERROR_LEVEL: "ERROR"}


def open_serial(path):
    """Non-blocking pyserial port, the same code path as a USB serial adapter on the bench."""
    # A pty write only waits when its buffer is full; a short write_timeout makes pyserial raise
    # on a busy machine even after the bytes went through, so allow a whole second.
    return serial.Serial(path, 115200, timeout=0, write_timeout=1.0)


class Console:
    """Readable timestamped log lines; keeps the last lines for debug_log and tests."""

    def __init__(self, clock, out=sys.stdout, keep=200, min_level=m.INFO, prefix="unit"):
        self.clock = clock
        self.out = out
        self.keep = keep
        self.lines = []
        self.min_level = min_level
        self.prefix = prefix
        self._t0 = time.monotonic()

    def stamp(self):
        ms = getattr(self.clock, "ms", None)
        if ms is None:
            ms = int((time.monotonic() - self._t0) * 1000)
        return "%7.3f" % (ms / 1000)

    def __call__(self, level, text):
        line = "%s %-5s %s %s" % (self.stamp(), _LEVELS.get(level, level), self.prefix, text)
        self.lines.append(line)
        if len(self.lines) > self.keep:
            del self.lines[0]
        if self.out is not None and level >= self.min_level:
            print(line, file=self.out, flush=True)


# A locally administered fake MAC for a host unit without --serial (SN 0100004ED102).
FAKE_MAC = b"\x02\xd1\x4e\x00\x00\x01"


def mac_for_serial(serial):
    """The MAC whose reversed bytes are `serial` (12 hex digits), so the seed's SN rule gives the
    serial back; FAKE_MAC for anything else (the `serial` setting then names the unit)."""
    try:
        b = bytes.fromhex(serial or "")
    except ValueError:
        return FAKE_MAC
    return bytes(reversed(b)) if len(b) == 6 else FAKE_MAC


class HostPort:
    """The board's surface on a PC. With `mqtt=True` it also offers the network the MQTT bridge
    needs, as the board port does from wifi/socketpool/ssl (dinamics/board_port.py):
      socket_pool  the stdlib `socket` module     (board: socketpool.SocketPool(wifi.radio))
      ssl_context  ssl.create_default_context()   (board: ssl.create_default_context())
      mac          6 bytes, from `serial`          (board: wifi.radio.mac_address)
      mem_free()   MemAvailable of this host       (board: gc.mem_free())
      ip()         this host's outgoing address    (board: wifi.radio.ipv4_address)
    With `radio` (a hil.sim_radio.SimRadio) it runs the wifi actor on that simulated radio, as the
    board does over dinamics.wifi_radio.WifiRadio; ip() is then the radio's; wifi_env stands for
    settings.toml's (CIRCUITPY_WIFI_SSID, CIRCUITPY_WIFI_PASSWORD, DINAMICS_AP_PASSWORD).
    With `web_port` (0 = a free port) the web UI listens on that port (127.0.0.1 only), with
    the page from device/www and `web_password` (None: settings.toml's or the web_pass setting).
    `lora`: the LoRa radio (hil.radio_sim, the medium's end of the unit) or None."""

    def __init__(self, evse_uart, state_dir, clock=None, console=None, ct_stream=None, mqtt=False,
                 serial=None, i2c=None, radio=None, wifi_env=None, lora=None, web_port=None,
                 web_password=None):
        self.clock = clock or BoardClock()
        self.console = console or Console(self.clock)
        self.evse_uart = open_serial(evse_uart) if isinstance(evse_uart, str) else evse_uart
        self.fs = DirFs(state_dir)
        self.ct_stream = open_serial(ct_stream) if isinstance(ct_stream, str) else ct_stream
        self.fatal_actors = []
        self._lora = lora  # a LoRa radio (hil.radio_sim: the medium's end) or None
        self.mac = mac_for_serial(serial)
        # The unit LCD's bus (board: busio.I2C on the LCD_SDA/LCD_SCL pins): a hil.hd44780.FakeI2C;
        # None = no lcd actor (as on a board without those pins).
        self.i2c = i2c
        self.i2c_bus = (lambda: i2c) if i2c is not None else None
        self.socket_pool = None
        self._ssl = None
        self._ip = None
        self.radio = radio
        self.wifi_env = wifi_env
        if radio is not None:
            radio.mac = self.mac
        self.web = web_port is not None
        self.web_port = web_port
        self.web_host = "127.0.0.1"
        self.web_password = web_password
        self.www_root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     "device", "www")
        self.restarts = 0
        if mqtt or self.web:
            import socket

            self.socket_pool = socket

    @property
    def ssl_context(self):
        if self.socket_pool is None:
            return None
        if self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()
        return self._ssl

    def lora_radio(self, settings):
        """The LoRa radio (the board builds an RFM9x here: dinamics/board_port.py)."""
        return self._lora

    def fatal(self, actor):
        """An actor was stopped for good (the scheduler has posted `actor.stopped`). A board
        resets here (dinamics/board_port.py); the host records it and keeps going, so tests can
        see it: `fatal_actors` (names, in order) is the flag a CLI turns into a non-zero exit,
        and `on_fatal`, if a CLI sets it to a callable(actor), is called, e.g. to stop the loop:
            port.on_fatal = lambda actor: app.sched.stop()"""
        self.fatal_actors.append(actor.name)
        self.console(m.ERROR_LEVEL, "fatal: %s stopped for good (a board would reset now)" % actor.name)
        callback = getattr(self, "on_fatal", None)
        if callback is not None:
            callback(actor)

    def restart(self):
        """The web UI's restart: a board resets (microcontroller.reset); the host counts it."""
        self.restarts += 1
        self.console(m.WARNING, "restart asked (a board would reset now)")

    def mem_free(self):
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def ip(self):
        """The address this host would use to reach the outside (no packet is sent); with a
        simulated radio, the radio's (station, else setup AP), "" when it has none. Never raises
        (the port contract, dinamics/app.py)."""
        if self.radio is not None:
            return self.radio.ip() or self.radio.ap_ip() or ""
        if self._ip is None:
            import socket

            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing decision only
                    self._ip = s.getsockname()[0]
                finally:
                    s.close()
            except OSError:
                self._ip = "127.0.0.1"
        return self._ip
