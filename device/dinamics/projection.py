"""What one CT reading leaves for the car: the balancer's projection of the steady state.

The car's current during the reading is a range (ev_lo, ev_hi): they differ when it changed
between two $GG inside the reading's window (`mixed`). Cuts are judged on the optimistic
headroom h_hi (no double cut while the car follows an earlier change), relaxing (raise, the end
of a shortage, max_current) on the pessimistic h_lo. In a mixed reading the EV-less house load
per phase is taken at its last known value (`base`: the last unambiguous reading's, or what a
mixed reading took after a house step), within what the CT value allows
(dinamics.headroom.mixed_load); a phase seen rising with the car known (`stepped`: a step perhaps
seen only in part) is taken pessimistically in the mixed reading that follows, when a $GG taken
after that reading still showed the car unchanged (else the rise may have been the car's own).

An actual overload (a car phase over the breaker now) is tracked from reading to reading: it is
new until a command change follows its start, and one that outlives the last change by
ESCALATE_MS means the model is wrong (car ignores the pilot, undetected phase, bad $GG).

Ticks in, no clock, no I/O (arithmetic: dinamics.headroom). One instance is reused per reading.
"""

from adafruit_ticks import ticks_diff

from dinamics import headroom as hr


class Projection:
    def __init__(self):
        self.base = [0.0, 0.0, 0.0]  # EV-less load per phase taken as the house (see above)
        self._was = [0.0, 0.0, 0.0]  # ... before the reading that last set it ...
        self.base_t = None  # ... which ended at this tick
        self.stepped = 0  # phases seen rising since the last unambiguous reading (mask) ...
        self.step_t = [None, None, None]  # ... first in the reading that ended then (per phase)
        self.new_step = False  # the last reading marked a phase: ask for a $GG to confirm it
        self.reset()

    def reset(self):
        self.over_since = None  # an actual overload since (tick)
        self.ev_lo = self.ev_hi = 0.0
        self.h_hi = self.h_lo = 0.0
        self.mixed = False

    def overload(self, now, over, last_change):
        """`over`: amps the worst car phase is over the breaker in this reading (<= 0: not).
        True when the overload is new: no command change since it began."""
        if not over > 0.0:
            self.over_since = None
            return False
        new = (self.over_since is None or last_change is None
               or ticks_diff(last_change, self.over_since) < 0)
        if self.over_since is None:
            self.over_since = now
        return new

    def escalation_due(self, now, last_change):
        """The overload has outlived the last command change by ESCALATE_MS."""
        return (ticks_diff(now, self.over_since) >= hr.ESCALATE_MS
                and (last_change is None or ticks_diff(now, last_change) >= hr.ESCALATE_MS))

    def escalated(self, now):
        self.over_since = now  # the next escalation comes ESCALATE_MS after this one

    def calm(self):
        """Forget the overload (not regulating, paused, resumed)."""
        self.over_since = None

    def project(self, breaker, amps, mask, ev_lo, ev_hi, cap, known, steady, relax_max,
                t=None, before_t=None):
        """ev_lo/ev_hi: the car during the reading; cap: at most this for a new actual overload
        (None: no cap); known: the car's current during the reading is known; steady: no phase
        moved since the previous reading (known and steady: the reading shows the house, a base);
        relax_max: the car's command while charging (None: not charging), the most h_lo may
        assume it draws; t: the reading's tick; before_t: the tick of the last $GG that showed
        the car's current before its last change (None: unknown)."""
        self.mixed = ev_lo != ev_hi  # the car changed during the reading's window
        if cap is not None:
            # A new actual overload while the car may be following an earlier cut: take its
            # present value ($GG during the reading), or, when $GG is older, assume it has
            # followed. Once cut for this overload the optimistic estimate rules again, so the
            # car's lag never causes a second cut.
            if ev_hi > cap:
                ev_hi = cap
            if ev_lo > ev_hi:
                ev_lo = ev_hi
        b = self.base
        self.new_step = False
        if ev_lo == ev_hi:
            h_hi = hr.headroom(breaker, amps, ev_hi, mask)
            if known and steady:
                if t is None or t != self.base_t:
                    w = self._was
                    w[0] = b[0]
                    w[1] = b[1]
                    w[2] = b[2]
                    self.base_t = t
                b[0] = amps[0] - ev_hi
                b[1] = amps[1] - ev_hi
                b[2] = amps[2] - ev_hi
                self.stepped = 0
            elif known:
                # a house step, perhaps only part of it (it fell inside a CT's window): the next
                # readings show it whole, unless the car changes meanwhile and hides it
                for p in range(3):
                    bit = 1 << p
                    if amps[p] - ev_hi > b[p] + hr.STEP_A and not self.stepped & bit:
                        self.stepped |= bit
                        self.step_t[p] = t
                        self.new_step = True
        else:
            if t is not None and t == self.base_t:
                # this reading looked unambiguous before the $GG that answered it showed the
                # car changing: it is no base (a CT may have caught the car's change)
                w = self._was
                b[0] = w[0]
                b[1] = w[1]
                b[2] = w[2]
                self.base_t = None
            # a rise seen before the car changed was the house's: a $GG taken after that
            # reading still showed the car's old current (else it may have been the car's own)
            stepped = 0
            for p in range(3):
                bit = 1 << p
                if (self.stepped & bit and before_t is not None and self.step_t[p] is not None
                        and ticks_diff(before_t, self.step_t[p]) > 0):
                    stepped |= bit
            h_hi = hr.headroom_mixed(breaker, amps, ev_lo, ev_hi, mask, b, stepped)
            for p in range(3):
                bit = 1 << p
                if mask & bit and (stepped & bit or amps[p] - ev_hi > b[p] + hr.STEP_A):
                    # judged on the house step: that is the house now (no second cut for it)
                    b[p] = amps[p] - ev_lo
            self.stepped = 0
        # Never more than the command for the car when relaxing: coming down to it, it may be
        # there before $GG shows it, and the CTs would show a house load that is not there.
        if relax_max is not None and ev_lo > relax_max:
            ev_lo = float(relax_max)
        self.ev_lo = ev_lo
        self.ev_hi = ev_hi
        self.h_hi = h_hi
        self.h_lo = h_hi if ev_lo == ev_hi else hr.headroom(breaker, amps, ev_lo, mask)

    def limit_to_export(self, amps, mask):
        """Solar mode: the room at zero net import (+ MARGIN_A) caps both headrooms (after
        `project`). True when it is the lower one for either."""
        limited = False
        hs = hr.solar_room(amps, self.ev_hi, mask) + hr.MARGIN_A
        if hs < self.h_hi:
            self.h_hi = hs
            limited = True
        hs = hr.solar_room(amps, self.ev_lo, mask) + hr.MARGIN_A
        if hs < self.h_lo:
            self.h_lo = hs
            limited = True
        return limited
