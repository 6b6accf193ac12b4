"""The balancer's view of the CT readings: the latest good one, its period, steadiness, staleness.

A reading (ct.reading) counts once (never back in time); the reading period is a running
estimate (readings 50..2000 ms apart). A reading in which a fitted CT is not valid is not
fresh (stale_ms decides). `steady`: no fitted phase moved by STEADY_A since the previous good
reading; `jump_t` is the tick of the last one that moved. `went_stale` turns the data stale once
per outage; `fresh_again` says when it came back.

Ticks in, no clock, no I/O.
"""

from adafruit_ticks import ticks_add, ticks_diff

from dinamics import headroom as hr

PERIOD_DEFAULT_MS = 300


class CtReadings:
    def __init__(self):
        self.reset()

    def reset(self):
        self.amps = (0.0, 0.0, 0.0)
        self.valid = 0
        self.flags = (0, 0, 0)
        self.last_t = None  # tick of the last reading seen (dedupe)
        self.good_t = None  # tick of the last good reading
        self.period = PERIOD_DEFAULT_MS
        self.stale = False
        self.readings = 0
        self.bad_readings = 0
        self.steady = False
        self.jump_t = None  # tick of the last reading in which a phase moved (not steady)
        self.fitted = 0  # the fitted CTs (mask) of the last good reading

    def accept(self, t, amps, valid, flags, fitted):
        """A ct.reading that ended at tick t. True when it is a new good reading."""
        if self.last_t is not None:
            d = ticks_diff(t, self.last_t)
            if d <= 0:
                return False  # each reading once; never go back in time
            if 50 <= d <= 2000:
                self.period = (self.period * 3 + d) // 4
        self.last_t = t
        self.readings += 1
        if not fitted or (valid & fitted) != fitted:
            self.bad_readings += 1
            return False  # implausible: not fresh; stale_ms decides
        prev = self.amps
        steady = True
        for p in range(3):
            if fitted & (1 << p):
                d = amps[p] - prev[p]
                if d > hr.STEADY_A or d < -hr.STEADY_A:
                    steady = False
        self.steady = steady
        if not steady:
            self.jump_t = t
        self.amps = amps
        self.valid = valid
        self.flags = flags
        self.good_t = t
        self.fitted = fitted
        return True

    def window_ms(self, fitted):
        """A reading's values span a whole round of the fitted CTs (ct_meter posts after every
        CT): period x fitted CTs. (One period alone is shorter than the $GG period, and whether
        any reading matched a $GG then hung on sub-ms ordering.)"""
        return self.period * (hr.mask_count(fitted) or 1)

    def window_after(self, tick):
        """The latest reading is good and its whole window (every fitted CT's: a round,
        window_ms) lies after `tick`. (Until 2026-12 only the last CT's: a CT captured before
        the car's change counted as after it, and a 3-phase car starting was taken for a car
        on L1 and L3, L2's value still the old one.)"""
        if self.good_t is None or self.good_t != self.last_t:
            return False
        return ticks_diff(ticks_add(self.good_t, -self.window_ms(self.fitted)), tick) >= 0

    def went_stale(self, now, since, stale_ms):
        """No good reading for stale_ms (since the last one, else since `since`, e.g. boot): the
        data turns stale, once per outage. Returns its age (ms) then, else None."""
        ref = self.good_t if self.good_t is not None else since
        if ref is None or self.stale:
            return None
        age = ticks_diff(now, ref)
        if age <= stale_ms:
            return None
        self.stale = True
        return age

    def fresh_again(self):
        """After a good reading: True once when the data was stale."""
        if self.stale:
            self.stale = False
            return True
        return False

    def forget_stale(self):
        self.stale = False
