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
    """Every `period_ms` (what a board needs to measure 3 CTs over 5 mains cycles: 300 ms) send the
    RMS of house + car over that window, per phase, as one `R` line of the CT feed."""

    def __init__(self, writer, house, car_currents, period_ms=300, sample_ms=10, fitted=(1, 1, 1)):
        self.writer = writer
        self.house = house
        self.car_currents = car_currents  # callable(now_ms) -> (l1, l2, l3)
        self.period_ms = period_ms
        self.sample_ms = sample_ms
        self.fitted = fitted
        self.enabled = True  # False = clamp pulled / feed silent (stale data)
        self._next = None
        self._last_sample = None
        self._sq = [0.0, 0.0, 0.0]
        self._sum = [0.0, 0.0, 0.0]
        self._n = 0
        self.sent = 0
        self.last = None

    def truth(self, now_ms):
        h = self.house.amps(now_ms)
        c = self.car_currents(now_ms)
        return tuple(h[i] + c[i] for i in range(3))

    def poll(self, now_ms):
        if self._next is None:
            self._next = now_ms + self.period_ms
            self._last_sample = now_ms - self.sample_ms
        while self._last_sample + self.sample_ms <= now_ms:
            self._last_sample += self.sample_ms
            a = self.truth(self._last_sample)
            for i in range(3):
                self._sq[i] += a[i] * a[i]
                self._sum[i] += a[i]
            self._n += 1
        if now_ms < self._next:
            return
        self._next += self.period_ms
        if self._n and self.enabled:
            out = []
            for i in range(3):
                if not self.fitted[i]:
                    out.append(None)
                    continue
                rms = math.sqrt(self._sq[i] / self._n)
                out.append(-rms if self._sum[i] < 0 else rms)  # sign = direction (export)
            self.last = tuple(out)
            self.writer.send_rms(self.last)
            self.sent += 1
        self._sq = [0.0, 0.0, 0.0]
        self._sum = [0.0, 0.0, 0.0]
        self._n = 0
