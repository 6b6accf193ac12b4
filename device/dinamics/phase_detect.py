"""Which phases carry the car: per-phase CT changes compared with the car's own current changes.

On each $GG while charging (`on_gg`): a reading taken while the car was steady (or not drawing:
`baseline`) is the reference; when $GG moves by >= DETECT_MIN_A and the next $GG confirms it, a
reading whose whole window lies after the change gives per-phase deltas, and
dinamics.headroom.classify_phases says which fitted phases followed the car. A result is kept
for the session (a later clean event can only add phases) unless a phase outside it goes over the
breaker while the car draws (`doubt`); `reset` at unplug or a CT change.

No clock and no I/O: ticks come in as arguments, the balancer owns the timing of readings (the
`window_after(tick)` callable: the latest good reading's window lies wholly after `tick`).
"""

from dinamics import headroom as hr

_MOVING_A = 0.6  # two $GG further apart than this: the car is still changing


class PhaseDetector:
    def __init__(self):
        self._snap = [0.0, 0.0, 0.0]  # per-phase CT amps of the reference reading
        self.reset()

    def reset(self):
        self.mask = 0  # detected phases (0: not yet)
        self.snap_ok = False
        self.snap_ev = 0.0  # the car's current during the reference reading
        self.pend_ev = None  # a $GG change waiting for confirmation and a reading after it ...
        self.pend_t = None  # ... and its tick
        self.prev = None  # the previous $GG in this session ...
        self.prev_t = None  # ... and its tick

    def code(self, fitted, present):
        """(active_phases, no_of_phases) to publish. present: a car is plugged in and has charged
        in this session. One CT: that phase; 99 = charging, not yet determined; 0 = no car."""
        if not present:
            return (0, 0)
        if hr.mask_count(fitted) == 1:
            return hr.phases_code(fitted)
        if self.mask:
            return hr.phases_code(self.mask)
        return (99, 0)

    def session_start(self):
        """The car (re)entered state C: $GG history restarts."""
        self.prev = None

    def session_end(self):
        self.pend_ev = None

    def baseline(self, amps, ev):
        """`amps` (a reading) shows the house with the car drawing `ev`: the new reference."""
        s = self._snap
        s[0] = amps[0]
        s[1] = amps[1]
        s[2] = amps[2]
        self.snap_ev = ev
        self.snap_ok = True

    def doubt(self, amps, fitted, breaker):
        """Call while the car draws. A fitted phase outside `mask` over the breaker means the
        event that set `mask` may have been a house change in disguise (a load switched off on a
        phase just as the car started reads as "did not follow"), and an overload the car could
        relieve would go unanswered. Safety first: the result is forgotten, so every fitted phase
        constrains the car until a clean event decides again. Returns that phase (1-3), or 0."""
        if not self.mask:
            return 0
        others = fitted & ~self.mask
        for p in range(3):
            if others & (1 << p) and amps[p] > breaker:
                self.mask = 0
                return p + 1
        return 0

    def on_gg(self, gg, now, fitted, amps, window_after):
        """A $GG (A) at tick `now`; `amps` the latest reading. True when `mask` grew."""
        prev, prev_t = self.prev, self.prev_t
        self.prev, self.prev_t = gg, now
        if hr.mask_count(fitted) <= 1:
            return False
        if self.pend_ev is not None:
            if abs(gg - self.pend_ev) >= _MOVING_A:  # still moving
                self.pend_ev, self.pend_t = gg, now
                return False
            if not window_after(self.pend_t):
                return False
            s = self._snap
            found = hr.classify_phases((amps[0] - s[0], amps[1] - s[1], amps[2] - s[2]),
                                       gg - self.snap_ev, fitted)
            self.pend_ev = None
            self.baseline(amps, gg)
            if found:
                new = found | self.mask if self.mask else found
                if new != self.mask:
                    self.mask = new
                    return True
            return False
        if self.snap_ok and abs(gg - self.snap_ev) >= hr.DETECT_MIN_A:
            self.pend_ev, self.pend_t = gg, now
        elif prev is not None and abs(gg - prev) < _MOVING_A and window_after(prev_t):
            self.baseline(amps, gg)
        return False
