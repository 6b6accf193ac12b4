"""The minimum-off time of a balancer pause, with an anti-cycling back-off.

A paused charge may restart no sooner than `min_off_ms` (a setting) after the pause began. A load
cycling around the limit (an oven thermostat, an A/C compressor) would otherwise toggle the car
and the EVSE relay every minute or two: no-headroom pauses that each begin within
CYCLE_WINDOW_MS of the last resume count as cycling, and beyond CYCLE_FREE_PAUSES of them in a
row every further one doubles the time, up to 2**OFF_BACKOFF_MAX x. A charge that runs
CYCLE_WINDOW_MS without such a pause (or an unplug) starts over. Other pauses (stale CT data) are
faults, not cycling: plain min_off_ms. A pause can waive the time (solar: the first start).

Ticks in, no clock: `tick(now)` must run now and then (the balancer's 250 ms housekeeping), which
also keeps every ticks_diff well inside its valid range.
"""

from adafruit_ticks import ticks_diff

from dinamics import headroom as hr


class MinOff:
    def __init__(self):
        self.reset()

    def reset(self):
        self.paused_at = None  # tick the pause in progress began (None: not paused)
        self.waived = False
        self.level = 0  # min_off_ms << level for the pause in progress
        self.forget()

    def forget(self):
        """A new plug session: no cycling history."""
        self.in_row = 0  # cycling pauses in a row
        self.resumed_at = None  # tick of the last resume, forgotten after CYCLE_WINDOW_MS

    def pause(self, now, cycling_kind, waive=False):
        """A pause begins. cycling_kind: a no-headroom pause (the kind a cycling load causes)."""
        self.paused_at = now
        self.waived = waive
        self.level = 0
        if not cycling_kind:
            return
        if self.resumed_at is None:
            self.in_row = 0
        elif self.in_row < hr.CYCLE_FREE_PAUSES + hr.OFF_BACKOFF_MAX:
            self.in_row += 1
        if self.in_row > hr.CYCLE_FREE_PAUSES:
            self.level = self.in_row - hr.CYCLE_FREE_PAUSES

    def ms(self, min_off_ms):
        """The minimum-off time of the pause in progress."""
        return min_off_ms << self.level

    def over(self, now, min_off_ms):
        """The pause in progress has lasted its minimum-off time (or waives it)."""
        return (self.waived or self.paused_at is None
                or ticks_diff(now, self.paused_at) >= self.ms(min_off_ms))

    def resumed(self, now):
        self.paused_at = None
        self.resumed_at = now

    def tick(self, now):
        if self.resumed_at is not None and ticks_diff(now, self.resumed_at) >= hr.CYCLE_WINDOW_MS:
            self.resumed_at = None  # calm for a while: the next pause is not cycling
