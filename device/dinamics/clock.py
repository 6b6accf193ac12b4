"""Clocks. A clock has `now()` (wrapping ms ticks, compare only with adafruit_ticks.ticks_diff),
`idle(ms)` (the only place the firmware sleeps) and `epoch()` (wall-clock seconds, 0 if unknown).
The host rig provides a VirtualClock with the same surface (hil/clock.py)."""

import time

from adafruit_ticks import ticks_ms

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_NAPS = const(11)  # idle(0..10 ms) sleeps for a float made once: no float per loop on a board


class BoardClock:
    """Real time: supervisor ticks on a board (29-bit, wraps), monotonic_ns on CPython."""

    def __init__(self):
        self.epoch_offset = 0  # set by time sync (NTP/broker) when the board has no RTC
        self._secs = tuple(i / 1000 for i in range(_NAPS))

    def now(self):
        return ticks_ms()

    def idle(self, ms):
        if ms > 0:
            time.sleep(self._secs[ms] if isinstance(ms, int) and ms < _NAPS else ms / 1000)

    def set_epoch(self, secs):
        """Time sync (NTP, actors/wifi.py): on a board without RTC time the offset makes epoch()
        wall-clock seconds; a clock that already knows the date (a PC) keeps its own."""
        self.epoch_offset = int(secs) - int(time.time())

    def epoch(self):
        t = int(time.time())
        # A board without RTC starts at 2000-01-01; treat anything before 2020 as "unknown".
        if t < 1577836800:
            return t + self.epoch_offset if self.epoch_offset else 0
        return t
