"""A balancer pause: whether the charge is paused by the balancer, why, and when it may restart.

The only writer of the pause and its reason. A pause (the controller told FS) resumes by itself
(the balancer's resume rules); its minimum-off time and anti-cycling back-off are
dinamics.min_off, which this holder drives; so is the solar import that leads to a pause. Reasons are the balancer.target reasons it shows:
NO_HEADROOM (a shortage), STALE (CT data stale, stale_action 0), SOLAR_WAIT (solar mode waiting
for export). Intent changes (set_enable, an auto-stop) are not pauses: they `cancel` one.

Ticks in, no clock, no I/O.
"""

from adafruit_ticks import ticks_diff

from dinamics.min_off import MinOff

NO_HEADROOM = "paused: no headroom"
SOLAR_WAIT = "paused: solar"
STALE = "stale CT"


class Pause:
    def __init__(self):
        self.min_off = MinOff()
        self.reset()

    def reset(self):
        self.reason = None  # None: not paused
        self.import_since = None  # solar mode: importing since (reset by a pause or a resume)
        self.min_off.reset()

    def begin(self, now, reason, waive_min_off=False):
        """Pause (or go on pausing, now for `reason`). True when a new pause began."""
        new = self.reason is None
        if new:
            # a shortage pause may be a load cycling around the limit: min_off backs off
            self.min_off.pause(now, reason == NO_HEADROOM, waive_min_off)
        self.reason = reason
        self.import_since = None
        return new

    def data_stale(self):
        """CT data went stale while paused: stays paused for that reason, a fault (no waiver)."""
        self.reason = STALE
        self.min_off.waived = False

    def data_back(self):
        """CT data is fresh again but there is no room yet: it now waits for room. (With room, a
        stale pause stays one while its minimum-off time runs.)"""
        if self.reason == STALE:
            self.reason = NO_HEADROOM

    def end_solar_wait(self):
        """Solar mode's wait ends (set_enable off/sleep, solar off, unplug). True when it ended."""
        if self.reason == SOLAR_WAIT:
            self.reason = None
            return True
        return False

    def cancel(self):
        """No longer paused, not a resume (a mode change, an auto-stop)."""
        self.reason = None

    def resumed(self, now):
        self.reason = None
        self.import_since = None
        self.min_off.resumed(now)

    def import_lasted(self, now, importing, stop_ms):
        """Solar mode: the charge has imported (on a car phase) for stop_ms without a break."""
        if not importing:
            self.import_since = None
            return False
        if self.import_since is None:
            self.import_since = now
        return ticks_diff(now, self.import_since) >= stop_ms

    def may_resume(self, now, min_off_ms):
        """The pause has lasted its minimum-off time (or waives it)."""
        return self.min_off.over(now, min_off_ms)

    def off_ms(self, min_off_ms):
        return self.min_off.ms(min_off_ms)

    def unplugged(self):
        """A new plug session: no cycling history."""
        self.min_off.forget()

    def tick(self, now):
        self.min_off.tick(now)
