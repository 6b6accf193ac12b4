"""What one CT reading leaves for the car: the balancer's projection of the steady state.

The car's current during the reading is a range (ev_lo, ev_hi): they differ when it changed
between two $GG inside the reading's window (`mixed`). Cuts are judged on the optimistic
headroom h_hi (no double cut while the car follows an earlier change), relaxing (raise, the end
of a shortage, max_current) on the pessimistic h_lo. The EV-less house load per phase of the
last unambiguous reading (`base`) stands in for the CTs that may have seen the old value.

An actual overload (a car phase over the breaker now) is tracked from reading to reading: it is
new until a command change follows its start, and one that outlives the last change by
ESCALATE_MS means the model is wrong (car ignores the pilot, undetected phase, bad $GG).

Ticks in, no clock, no I/O (arithmetic: dinamics.headroom). One instance is reused per reading.
"""

from adafruit_ticks import ticks_diff

from dinamics import headroom as hr


class Projection:
    def __init__(self):
        self.base = [0.0, 0.0, 0.0]  # EV-less load per phase of the last unambiguous reading
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

    def project(self, breaker, amps, mask, ev_lo, ev_hi, cap, unambiguous, relax_max):
        """ev_lo/ev_hi: the car during the reading; cap: at most this for a new actual overload
        (None: no cap); unambiguous: the reading shows the house with the car known (a base);
        relax_max: the car's command while charging (None: not charging), the most h_lo may
        assume it draws."""
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
        if ev_lo == ev_hi:
            h_hi = hr.headroom(breaker, amps, ev_hi, mask)
            if unambiguous:
                b = self.base
                b[0] = amps[0] - ev_hi
                b[1] = amps[1] - ev_hi
                b[2] = amps[2] - ev_hi
        else:
            h_hi = hr.headroom_mixed(breaker, amps, ev_lo, ev_hi, mask, self.base)
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
