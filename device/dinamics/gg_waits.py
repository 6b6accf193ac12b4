"""Balancer decisions that wait for the $GG that settles them, each at most GG_DEFER_MAX_MS.

- A cut (or a shortage) while the car charges is decided at once only for a NEW actual overload.
  Otherwise the car may have changed after the last $GG (following an earlier command within its
  ~5 s lag), which shows on the CTs but not yet in $GG and looks like a house load step: `cut`
  waits for a $GG taken after the reading (its reply re-runs the decision: one round trip, not
  a reading period).
- A pause for a large shortage while the car may still be following an earlier cut (no $GG
  during or since the reading, or the car changed during it) waits for such a $GG or for a
  reading that is not mixed (`pause`).
A call that begins a wait sets `ask`: the caller asks for a $GG now. No clock, no I/O.
"""

from adafruit_ticks import ticks_diff

from dinamics import headroom as hr


class GgWaits:
    def __init__(self):
        self.reset()

    def reset(self):
        """No decision waits (any more)."""
        self.cut_t = None  # a cut waits since ...
        self.cut_ref = None  # ... for a $GG after the reading that ended then
        self.pause_t = None  # a hard-over pause waits since
        self.ask = False  # the last call began a wait: ask for a $GG now

    def waiting(self):
        return self.cut_t is not None or self.pause_t is not None

    def _wait(self, now, since):
        """Returns the wait's start (now when it begins), or None once it is over."""
        self.ask = since is None
        if since is None:
            since = now
        return since if ticks_diff(now, since) < hr.GG_DEFER_MAX_MS else None

    def cut(self, now, t, decide_now, car):
        """A cut (or shortage) on the reading that ended at t; decide_now: a new actual overload,
        or the car is not charging. `car`: dinamics.car_current.CarCurrent. True = wait."""
        self.ask = False
        if decide_now or car.after(t if self.cut_t is None else self.cut_ref):
            self.cut_t = None
            return False
        if self.cut_t is None:
            self.cut_ref = t
        self.cut_t = self._wait(now, self.cut_t)
        return self.cut_t is not None

    def pause(self, now, decide_now, known):
        """A hard-over pause; decide_now: not charging or no link; known: the car's current
        during the reading is known (a $GG during or after it, and the reading not mixed).
        True = wait."""
        self.ask = False
        if decide_now or known:
            self.pause_t = None
            return False
        self.pause_t = self._wait(now, self.pause_t)
        return self.pause_t is not None

    def no_cut(self):
        self.cut_t = None

    def no_pause(self):
        self.pause_t = None
