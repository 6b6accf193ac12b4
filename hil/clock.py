"""Virtual clock for tests and simulations: time only moves when told to."""

_PERIOD = 1 << 29


class VirtualClock:
    """Same surface as dinamics.clock.BoardClock. `ms` is the non-wrapping simulated time;
    `now()` is the wrapping tick the firmware sees. Start near the wrap (as CircuitPython does on
    purpose) so every test exercises tick wrap-around."""

    def __init__(self, start_tick=_PERIOD - 65000, epoch0=1764000000):
        self.ms = 0
        self._start = start_tick
        self._epoch0 = epoch0

    def now(self):
        return (self._start + self.ms) % _PERIOD

    def advance(self, ms):
        self.ms += int(ms)

    def idle(self, ms):
        self.advance(max(1, int(ms)))

    def epoch(self):
        return self._epoch0 + self.ms // 1000

    def set_epoch(self, secs):
        """Time sync (NTP): the wall clock is `secs` now."""
        self._epoch0 = int(secs) - self.ms // 1000

    def __call__(self):
        """Monotonic ms for host-side models (emulator, EV, house load)."""
        return self.ms
