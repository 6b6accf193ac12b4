"""The scheduler's timers: one-shot and periodic, delivered as `timer` messages to their owner.

Deadlines are wrapping ms ticks compared with adafruit_ticks.ticks_diff only; a periodic timer that
fell behind fires once, not in a burst; a timer can be re-armed in place (`rearm`, no allocation).
A mixin of mailbox.Scheduler (it uses the scheduler's clock, send, log and timer list).
"""

from adafruit_ticks import ticks_add, ticks_diff

from dinamics import messages as m

# The longest timer delay: adafruit_ticks.ticks_add raises OverflowError for |delta| >= 2**28 ms
# (half its 2**29 ms wrap), so every()/after() clamp to this (about 74.5 h) instead of crashing.
MAX_TIMER_MS = (1 << 28) - 1


class Timer:
    __slots__ = ("owner", "due", "period", "tag", "active")

    def __init__(self, owner, due, period, tag):
        self.owner = owner
        self.due = due
        self.period = period
        self.tag = tag
        self.active = True



class TimerTable:
    def every(self, actor, ms, tag):
        ms = self._delay(actor, ms, tag)
        if ms < 1:
            ms = 1  # period 0 would read as a one-shot timer
        t = Timer(actor, ticks_add(self.clock.now(), ms), ms, tag)
        self._timers.append(t)
        return t

    def after(self, actor, ms, tag):
        t = Timer(actor, ticks_add(self.clock.now(), self._delay(actor, ms, tag)), 0, tag)
        self._timers.append(t)
        return t

    def rearm(self, timer, ms):
        """Arm `timer` again, ms from now (a periodic one keeps its period from then on). Works on
        a fired, cancelled or running timer; nothing is allocated (the timer list only grows when
        more timers are armed at once than ever before). Returns the timer."""
        owner = timer.owner
        if owner.stopped:
            return timer
        d = self._delay(owner, ms, timer.tag)
        if timer.period and d < 1:
            d = 1
        timer.due = ticks_add(self.clock.now(), d)
        if not timer.active:
            timer.active = True
            self._timers.append(timer)
        return timer

    def _delay(self, actor, ms, tag):
        """A delay ticks_add accepts: whole ms in 0..MAX_TIMER_MS. No setting (a timer x TFO
        product, say) can crash an actor through a timer; the first clamp of each (actor, tag)
        is logged."""
        try:
            d = int(ms)
        except (TypeError, ValueError, OverflowError):  # None, NaN, inf
            d = MAX_TIMER_MS + 1
        if 0 <= d <= MAX_TIMER_MS:
            return d
        key = (actor.name, tag)
        if key not in self._clamped:
            self._clamped.append(key)
            self.log(m.WARNING, "%s: timer %r delay %r ms clamped to %d" % (
                actor.name, tag, ms, MAX_TIMER_MS if d > 0 else 0))
        return MAX_TIMER_MS if d > 0 else 0

    def cancel(self, timer):
        timer.active = False
        if timer in self._timers:
            self._timers.remove(timer)

    def next_due_ms(self, now):
        """Milliseconds until the earliest timer (None when no timer is armed)."""
        best = None
        for t in self._timers:
            d = ticks_diff(t.due, now)
            if best is None or d < best:
                best = d
        if best is not None and best < 0:
            best = 0
        return best

    def _fire_timers(self, now):
        timers = self._timers
        i = 0
        while i < len(timers):
            t = timers[i]
            if ticks_diff(now, t.due) >= 0:
                self.send(t.owner, m.TIMER, t.tag)
                if t.period:
                    t.due = ticks_add(t.due, t.period)
                    if ticks_diff(now, t.due) >= 0:  # fell behind: do not fire a burst
                        t.due = ticks_add(now, t.period)
                else:
                    t.active = False
                    timers.pop(i)
                    continue
            i += 1
