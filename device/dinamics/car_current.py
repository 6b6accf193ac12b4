"""What the car draws: the controller's $GG readings and the estimates the balancer builds on them.

$GG measures the car's current (one leg; a 3-phase car is assumed balanced). A session starts
when the EVSE enters state C; values before its first $GG are not trusted. The estimates:
- `estimate`: the car's current now (0 outside state C; the last $GG while fresh; min($GG,
  command) when it is old; 0 for the first GG_STALE_MS of a session without a $GG, then the
  command; at most the heartbeat's fallback current once the link has been down long enough);
- `during`: a (low, high) range for a CT reading's window when the car changed between two $GG;
- `fresh_for` / `after` / `known` / `followed` / `not_above` / `following`: how far a $GG describes a reading or
  shows that the car has followed the last command change.

Ticks in, no clock, no I/O: the balancer passes the command, its last change and the CT windows.
"""

from adafruit_ticks import ticks_add, ticks_diff

from dinamics import headroom as hr

_CHANGE_A = 0.5  # two $GG this far apart: the car changed between them
_MAY_DRAW_MS = 4000  # after state C the relay may still be closed (FS waits up to 3 s for the car)


class CarCurrent:
    def __init__(self):
        self.reset()

    def reset(self):
        self.charging = False  # the EVSE is in state C
        self.gg = 0.0  # the last $GG (A)
        self.gg_t = None  # ... and its tick
        self.session = False  # a $GG arrived since the EVSE entered state C
        self.before = 0.0  # the $GG value before the last change ...
        self.change_t = None  # ... and the tick of the $GG that first showed the change
        self.before_t = None  # ... and of the one before it, the last that showed `before`
        self.prior_t = None  # tick of the $GG before the last one (this session)
        self.asked_t = None  # tick the balancer last asked for a $GG
        self.c_since = None  # tick the EVSE entered state C
        self.left_c_t = None  # tick it left state C

    # --- events ------------------------------------------------------------------------------
    def enter_c(self, now):
        self.charging = True
        self.c_since = now
        self.session = False

    def leave_c(self, now):
        self.charging = False
        self.left_c_t = now
        self.session = False

    def on_gg(self, ma, now):
        """A $GG reply (mA). True when it counts for the session (state C)."""
        old = self.gg if self.session else 0.0
        self.prior_t = self.gg_t if self.session else None
        self.gg = (ma if ma > 0 else 0) / 1000
        self.gg_t = now
        if not self.charging:
            return False
        self.session = True
        d = self.gg - old
        if d >= _CHANGE_A or d <= -_CHANGE_A:
            # the car changed somewhere since the previous $GG. A change right after the last
            # one (the $GG before this one showed that change: the car still moving, e.g. a
            # start 0 -> 6 -> 8 A) keeps that one's `before` when it lies further out on the same
            # side: a reading may hold a CT captured before either
            b = self.before
            if not (self.change_t is not None and self.prior_t == self.change_t
                    and ticks_diff(now, self.change_t) <= hr.GG_PERIOD_MS
                    and (b - self.gg) * (old - self.gg) > 0.0
                    and abs(b - self.gg) > abs(old - self.gg)):
                self.before = old
                self.before_t = self.prior_t
            self.change_t = now
        return True

    def asked(self, now):
        self.asked_t = now

    def asked_within(self, now, ms):
        """A $GG was asked for less than `ms` ago."""
        return self.asked_t is not None and ticks_diff(now, self.asked_t) < ms

    def asked_since(self, t):
        """A $GG was asked for at or after tick t."""
        return self.asked_t is not None and ticks_diff(self.asked_t, t) >= 0

    # --- estimates ---------------------------------------------------------------------------
    def estimate(self, now, cmd, cap=None):
        """The car's current per phase now (A). `cap`: the link is down and the controller's
        heartbeat fallback has had time to act, so the car draws at most that."""
        if not self.charging:
            return 0.0
        if cap is not None:
            est = self.gg if self.session else float(cmd)
            return est if est < cap else cap
        if self.session:
            if ticks_diff(now, self.gg_t) <= hr.GG_STALE_MS:
                return self.gg
            return self.gg if self.gg < cmd else float(cmd)
        if self.c_since is not None and ticks_diff(now, self.c_since) < hr.GG_STALE_MS:
            return 0.0
        return float(cmd)

    def during(self, t, ev, link_up, window_ms):
        """(low, high) of the car's current during the reading that ended at t, `ev` the estimate
        now. They differ when the car changed between two $GG and that change may fall inside
        the reading's `window_ms` (the span of all its CTs' captures, a whole round: CtReadings.
        window_ms): some CTs may have seen the old value, some the new one."""
        if (self.charging and self.session and self.change_t is not None and ev == self.gg
                and link_up and ticks_diff(self.change_t, ticks_add(t, -window_ms)) > 0):
            other = self.before
            if other < ev:
                return other, ev
            return ev, other
        return ev, ev

    def draw(self):
        """The car's current now (A), or None when unknown."""
        if not self.charging:
            return 0.0
        if not self.session:
            return None
        return self.gg

    def fresh_for(self, t, window_ms):
        """A $GG arrived after the reading's window (`window_ms` before t) started: the two
        describe the same moment."""
        if not self.session or self.gg_t is None:
            return False
        return ticks_diff(self.gg_t, ticks_add(t, -window_ms)) >= 0

    def after(self, t):
        """A $GG arrived after the reading ended at t (requested because of it)."""
        if not self.session or self.gg_t is None:
            return False
        return ticks_diff(self.gg_t, t) > 0

    def known(self, now, t, window_ms, jump_t, last_change):
        """The car's current during the reading is known: a $GG that matches the reading, or a
        car that has long followed the last command (`last_change`), a $GG that did not move,
        taken after the CTs last moved (`jump_t`; a controller reboot or a car stopping on its
        own shows on the CTs first)."""
        if self.fresh_for(t, window_ms):
            return True
        return (self.session and self.prior_t is not None
                and (self.change_t is None or ticks_diff(self.change_t, self.prior_t) <= 0)
                and (jump_t is None or ticks_diff(self.gg_t, jump_t) > 0)
                and ticks_diff(now, self.gg_t) <= hr.GG_STALE_MS
                and (last_change is None
                     or ticks_diff(now, last_change) >= hr.SETTLE_MS + hr.GG_PERIOD_MS))

    def followed(self, now, cmd, last_change):
        """$GG shows the car at the command, twice in a row (no change between them), both taken
        after the last command change: it has followed (ends SETTLE_MS early; a car that draws
        less than offered waits SETTLE_MS)."""
        if (not self.charging or not self.session or self.prior_t is None
                or last_change is None
                or ticks_diff(self.prior_t, last_change) <= 0
                or ticks_diff(now, self.gg_t) > hr.GG_PERIOD_MS):
            return False
        if self.change_t is not None and ticks_diff(self.change_t, self.prior_t) > 0:
            return False  # the last $GG moved
        d = self.gg - cmd
        return -hr.FOLLOWED_A < d < hr.FOLLOWED_A

    def not_above(self, now, cmd):
        """A $GG of this session, at most GG_PERIOD_MS old, shows the car at or below the command
        (within FOLLOWED_A). After a raise the car is then rising towards the command or there:
        whatever it drew during a reading lies at or above that $GG, so a headroom that takes it
        at the $GG (the pessimistic h_lo, whose car is at most the command) only overstates the
        house: a further raise judged on it is safe without waiting for the car to arrive."""
        if not self.charging or not self.session or self.gg_t is None:
            return False
        if ticks_diff(now, self.gg_t) > hr.GG_PERIOD_MS:
            return False
        return self.gg - cmd < hr.FOLLOWED_A

    def following(self, now, cmd, last_change):
        """The car may still be following a command change: within SETTLE_MS of it and $GG still
        away from the command (the balancer polls $GG faster then)."""
        return (last_change is not None and ticks_diff(now, last_change) < hr.SETTLE_MS
                and (self.gg - cmd > 0.5 or cmd - self.gg > 0.5))

    def may_draw(self, now):
        """Not in state C, but the relay may still be closed."""
        return self.left_c_t is not None and ticks_diff(now, self.left_c_t) <= _MAY_DRAW_MS
