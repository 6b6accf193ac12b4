"""Host port: the board's surface built from pyserial ports, a state directory and a clock."""
import sys
import time

import serial

from dinamics import messages as m
from dinamics.clock import BoardClock
from hil.host_fs import DirFs

_LEVELS = {m.DEBUG: "DEBUG", m.INFO: "INFO", m.WARNING: "WARN", m.ERROR_LEVEL: "ERROR"}


def open_serial(path):
    """Non-blocking pyserial port, the same code path as a USB serial adapter on the bench."""
    return serial.Serial(path, 115200, timeout=0, write_timeout=0.05)


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


class HostPort:
    def __init__(self, evse_uart, state_dir, clock=None, console=None, ct_stream=None):
        self.clock = clock or BoardClock()
        self.console = console or Console(self.clock)
        self.evse_uart = open_serial(evse_uart) if isinstance(evse_uart, str) else evse_uart
        self.fs = DirFs(state_dir)
        self.ct_stream = open_serial(ct_stream) if isinstance(ct_stream, str) else ct_stream
        self.fatal_actors = []

    def fatal(self, actor):
        # A board resets here; on the host we record it and keep going so tests can see it.
        self.fatal_actors.append(actor.name)

    def mem_free(self):
        return 0
