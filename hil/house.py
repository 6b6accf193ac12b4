"""House load model for the rig: per-phase currents (A) as a function of simulated time, and the
CT injector that turns house + car into the readings a unit would measure."""
import math


class HouseLoad:
    """Piecewise-constant per-phase load. `steps` is a list of (at_ms, (l1, l2, l3)); negative
    values are export. Extra loads can be added at run time with `set(now_ms, amps3)`."""

    def __init__(self, base=(2.0, 2.0, 2.0), steps=()):
        self.steps = sorted([(0, tuple(base))] + [(t, tuple(a)) for t, a in steps])

    def set(self, at_ms, amps3):
        self.steps.append((at_ms, tuple(amps3)))
        self.steps.sort(key=lambda s: s[0])

    def amps(self, now_ms):
        cur = self.steps[0][1]
        for t, a in self.steps:
            if t > now_ms:
                break
            cur = a
        return cur


class CtInjector:
    """Plays house + car into the CT feed the way a board measures: the fitted CTs one after
    another, each over its own window of `period_ms / 3` (5 mains cycles at 50 Hz = 100 ms), and a
    reading is sent when each CT's window ends — the freshly measured phase updated, the others
    keeping their last values (as ct_meter posts after every CT). Each value is the RMS of that
    phase over its own window, so a step that lands inside a window shows in part."""

    def __init__(self, writer, house, car_currents, period_ms=300, sample_ms=10, fitted=(1, 1, 1)):
        self.writer = writer
        self.house = house
        self.car_currents = car_currents  # callable(now_ms) -> (l1, l2, l3)
        self.period_ms = period_ms
        self.sample_ms = sample_ms
        self.fitted = fitted
        self.enabled = True  # False = clamp pulled / feed silent (stale data)
        self.order = [i for i in range(3) if fitted[i]] or [0]
        self.window_ms = max(sample_ms, period_ms // len(self.order))
        self._per_ct_ms = max(sample_ms, period_ms // 3)  # one CT's window (5 cycles at 50 Hz)
        self._idx = 0
        self._next = None
        self._last_sample = None
        self._sq = 0.0
        self._sum = 0.0
        self._n = 0
        self._values = [None, None, None]
        self.sent = 0
        self.last = None

    def capture(self, cts):
        """Capture only the CTs the unit has fitted (set_cte: ct_meter takes those one after
        another, one CT window each, and posts after each), e.g. (0,) for cte 1: then every
        reading holds a fresh CT1 value, as on a board, not one refreshed every third reading.
        The others send no data ('-'). `fitted` (a clamp pulled) still applies on top."""
        order = sorted(set(c for c in cts if 0 <= c < 3)) or [0]
        if order == self.order:
            return
        self.order = order
        self.window_ms = self._per_ct_ms
        self._idx = 0
        self._values = [v if i in order else None for i, v in enumerate(self._values)]
        self._sq = self._sum = 0.0
        self._n = 0

    def truth(self, now_ms):
        h = self.house.amps(now_ms)
        c = self.car_currents(now_ms)
        return tuple(h[i] + c[i] for i in range(3))

    def poll(self, now_ms):
        if self._next is None:
            self._next = now_ms + self.window_ms
            self._last_sample = now_ms - self.sample_ms
        ch = self.order[self._idx]
        while self._last_sample + self.sample_ms <= now_ms:
            self._last_sample += self.sample_ms
            a = self.truth(self._last_sample)[ch]
            self._sq += a * a
            self._sum += a
            self._n += 1
        if now_ms < self._next:
            return
        self._next += self.window_ms
        if self._n:
            rms = math.sqrt(self._sq / self._n)
            self._values[ch] = -rms if self._sum < 0 else rms  # sign = direction (export)
        self._sq = self._sum = 0.0
        self._n = 0
        self._idx = (self._idx + 1) % len(self.order)
        if self.enabled and all(self._values[i] is not None for i in self.order):
            self.last = tuple(self._values[i] if self.fitted[i] else None for i in range(3))
            self.writer.send_rms(self.last)
            self.sent += 1
