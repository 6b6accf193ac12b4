"""Mailbox scheduler: actors with bounded inboxes, run to completion, timers as messages.

One pass (`run_once`): poll I/O actors -> deliver queued messages -> fire due timers.
Time comes from an injected clock (`now()` wrapping ms ticks, `idle(ms)`): board ticks, the host's
real clock, or a virtual clock that tests advance. An actor that raises is logged, counted and
restarted; too many crashes in a short window stop it for good: `actor.stopped` is posted with its
name and the port's fatal hook recovers the unit (a board stops feeding its watchdog and resets).
Timer delays are clamped to MAX_TIMER_MS, so no setting can crash an actor through ticks_add.

An idle pass allocates nothing on a board: inboxes are rings preallocated at their capacity, pass
timing uses the wrapping ms ticks (small ints), and a timer can be re-armed in place (`rearm`).
"""

import sys

from adafruit_ticks import ticks_diff, ticks_ms

from dinamics import messages as m
from dinamics.timers import MAX_TIMER_MS, Timer, TimerTable  # noqa: F401 (re-exported)

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_CRASH_WINDOW_MS = const(60000)
_CRASH_LIMIT = const(5)


def _exception_printer():
    """Traceback printer for the console: sys.print_exception on MicroPython; CircuitPython 10
    removed it, traceback.print_exception takes its place there; None on CPython (the host logs)."""
    pe = getattr(sys, "print_exception", None)
    if pe is None and sys.implementation.name == "circuitpython":
        try:
            import traceback

            pe = traceback.print_exception
        except ImportError:
            pe = None
    return pe


_print_exception = _exception_printer()


class Actor:
    """Base class. Subclasses set `name`, `subscribes` (kinds) and override the hooks."""

    name = "actor"
    subscribes = ()
    inbox_size = 16
    polls = False  # True: poll(budget_ms) is called every pass (owns I/O)
    stopped = False  # set by supervision when the actor kept crashing and was stopped for good

    def __init__(self):
        self.sched = None
        self.crashes = 0
        self.lost = 0  # COMMAND messages refused because the inbox was full
        self.dropped = 0  # telemetry evicted or coalesced
        self._ring(self.inbox_size)
        self._crash_times = []

    def _ring(self, size):
        """The inbox: a ring of `size` (kind, payload) slots, allocated once. `_head` is the
        oldest message, `_count` how many are queued."""
        self._kinds = bytearray(size)
        self._payloads = [None] * size
        self._head = 0
        self._count = 0

    # --- hooks -------------------------------------------------------------------------------
    def start(self):
        """Called when registered and after a restart: arm timers, reset state."""

    def handle(self, kind, payload):
        """React to one message, run to completion, never block."""

    def poll(self, budget_ms):
        """I/O actors: move bytes <-> messages, spending at most about budget_ms."""

    def reset(self):
        """Called before a restart after a crash: return to a clean initial state."""

    # --- helpers for subclasses --------------------------------------------------------------
    def post(self, kind, payload=None):
        return self.sched.post(kind, payload)

    def every(self, ms, tag):
        return self.sched.every(self, ms, tag)

    def after(self, ms, tag):
        return self.sched.after(self, ms, tag)

    def rearm(self, timer, ms):
        """Re-arm a timer this actor got from after()/every() (fired, cancelled or still running)
        to fire ms from now: the same object, nothing allocated. Returns the timer."""
        return self.sched.rearm(timer, ms)

    def cancel(self, timer):
        if timer is not None:
            self.sched.cancel(timer)

    def log(self, level, text):
        self.sched.log(level, self.name + ": " + text)

    def now(self):
        return self.sched.clock.now()


class Scheduler(TimerTable):
    def __init__(self, clock, console=None, on_fatal=None, poll_budget_ms=5, max_deliveries=64):
        self.clock = clock
        self.console = console  # callable(level, text) or None
        self.on_fatal = on_fatal  # callable(actor) when an actor keeps crashing
        self.poll_budget_ms = poll_budget_ms
        self.max_deliveries = max_deliveries
        self.actors = []
        self._pollers = []
        self._subs = [None] * m.COUNT  # kind -> list of actors
        self._timers = []
        self._clamped = []  # (actor name, tag) of the timers already logged as clamped
        self.stopped = []  # names of the actors supervision stopped for good
        self.passes = 0
        self.delivered = 0
        self.worst_pass_ms = 0  # real ms ticks (supervisor.ticks_ms on a board), not the clock
        self.last_pass_ms = 0
        self.running = False
        self._stop = False  # a stop() that comes before run_forever() still counts
        self._logging = False  # inside log(): no LOG message about posting a LOG message

    # --- registration ------------------------------------------------------------------------
    def add(self, actor):
        actor.sched = self
        if len(actor._kinds) != actor.inbox_size:  # inbox_size set on the instance
            actor._ring(actor.inbox_size)
        self.actors.append(actor)
        if actor.polls:
            self._pollers.append(actor)
        for k in actor.subscribes:
            self.subscribe(actor, k)
        self._start(actor)
        return actor

    def subscribe(self, actor, kind):
        subs = self._subs[kind]
        if subs is None:
            subs = self._subs[kind] = []
        if actor not in subs:
            subs.append(actor)

    def find(self, name):
        for a in self.actors:
            if a.name == name:
                return a
        return None

    # --- messaging ---------------------------------------------------------------------------
    def post(self, kind, payload=None):
        """Deliver to every subscriber. Returns False if some inbox refused a COMMAND."""
        subs = self._subs[kind]
        ok = True
        if subs:
            for a in subs:
                if not self.send(a, kind, payload):
                    ok = False
        return ok

    def send(self, actor, kind, payload=None):
        kinds = actor._kinds
        payloads = actor._payloads
        size = len(kinds)
        n = actor._count
        policy = m.POLICY
        if policy[kind] == m.DROP_NEW and n >= size - (size >> 2):
            actor.dropped += 1  # a log line: the last quarter of an inbox stays for everything else
            return True
        head = actor._head
        if n < size:
            i = head + n
            if i >= size:
                i -= size
            kinds[i] = kind
            payloads[i] = payload
            actor._count = n + 1
            return True
        if policy[kind] == m.LATEST:
            # Newest wins: replace a queued value of the same kind, else evict the oldest telemetry.
            for k in range(n - 1, -1, -1):
                i = (head + k) % size
                if kinds[i] == kind:
                    payloads[i] = payload
                    actor.dropped += 1
                    return True
            for k in range(n):
                i = (head + k) % size
                if policy[kinds[i]] == m.LATEST:
                    # Close the gap (later messages move up one slot), the new one goes last.
                    for _ in range(k, n - 1):
                        j = i + 1
                        if j == size:
                            j = 0
                        kinds[i] = kinds[j]
                        payloads[i] = payloads[j]
                        i = j
                    kinds[i] = kind
                    payloads[i] = payload
                    actor.dropped += 1
                    return True
            actor.dropped += 1
            return True
        # A command must not vanish silently: refuse, count, tell the sender and the console.
        actor.lost += 1
        self.log(m.ERROR_LEVEL, "inbox full: %s lost %s" % (actor.name, m.NAMES[kind]))
        return False

    def _clear(self, actor):
        """Empty an inbox (dropping the payloads' references)."""
        payloads = actor._payloads
        for i in range(len(payloads)):
            payloads[i] = None
        actor._head = 0
        actor._count = 0

    def log(self, level, text):
        """Console first, then a LOG message (DROP_NEW: never refused, never evicts anything).
        A log emitted while a log is being posted (an inbox-full report) goes to the console only."""
        if self.console is not None:
            self.console(level, text)
        if self._logging or not self._subs[m.LOG]:
            return
        self._logging = True
        try:
            self.post(m.LOG, (level, text))
        finally:
            self._logging = False

    # --- supervision -------------------------------------------------------------------------
    def _start(self, actor):
        try:
            actor.start()
        except Exception as e:  # noqa: BLE001 - supervision boundary
            self._crashed(actor, e)

    def _crashed(self, actor, exc):
        actor.crashes += 1
        try:  # building the text (str(exc)) may itself fail, e.g. MemoryError: never escape
            self.log(m.ERROR_LEVEL, "%s crashed: %s %s" % (actor.name, type(exc).__name__, exc))
            if self.console is not None and _print_exception is not None:
                _print_exception(exc)  # board: traceback on the serial console
        except Exception:  # noqa: BLE001 - supervision boundary
            try:
                self.log(m.ERROR_LEVEL, "crashed (no details: out of memory?)")
            except Exception:  # noqa: BLE001
                pass
        now = self.clock.now()
        times = actor._crash_times
        times.append(now)
        while times and ticks_diff(now, times[0]) > _CRASH_WINDOW_MS:
            times.pop(0)
        # Drop the actor's timers and queued messages: it restarts from a clean state.
        for t in [t for t in self._timers if t.owner is actor]:
            self.cancel(t)
        self._clear(actor)
        if len(times) > _CRASH_LIMIT:
            self.log(m.ERROR_LEVEL, "%s keeps crashing: stopped" % actor.name)
            self._stop_actor(actor)
            return
        try:
            actor.reset()
            actor.start()
        except Exception as e:  # noqa: BLE001
            self.log(m.ERROR_LEVEL, "%s failed to restart: %s" % (actor.name, e))
            self._stop_actor(actor)

    def _stop_actor(self, actor):
        """Stop an actor for good, say so, and let the port recover the unit: the actor gets no
        more messages, polls or timers; `actor.stopped` posts its name (the MQTT bridge publishes
        it); then on_fatal(actor) (board: stop feeding the watchdog, a clean reset follows; host:
        recorded for the CLI's exit code)."""
        if actor.stopped:
            return
        actor.stopped = True
        for subs in self._subs:
            if subs and actor in subs:
                subs.remove(actor)
        if actor in self._pollers:
            self._pollers.remove(actor)
        for t in [t for t in self._timers if t.owner is actor]:
            self.cancel(t)  # a start() that failed half-way may have armed some
        self._clear(actor)
        self.stopped.append(actor.name)
        self.post(m.ACTOR_STOPPED, actor.name)
        if self.on_fatal is not None:
            try:
                self.on_fatal(actor)
            except Exception as e:  # noqa: BLE001 - a broken hook must not take the loop down
                self.log(m.ERROR_LEVEL, "fatal hook failed: %s" % e)

    # --- the loop ----------------------------------------------------------------------------
    def run_once(self):
        t0 = ticks_ms()
        for a in self._pollers:
            try:
                a.poll(self.poll_budget_ms)
            except Exception as e:  # noqa: BLE001
                self._crashed(a, e)
        self._deliver()
        self._fire_timers(self.clock.now())
        self._deliver()
        ms = ticks_diff(ticks_ms(), t0)
        self.last_pass_ms = ms
        if ms > self.worst_pass_ms:
            self.worst_pass_ms = ms
        self.passes += 1

    # Pass times in us (1 ms resolution) for the host rig's reports and older callers.
    def _get_worst_us(self):
        return self.worst_pass_ms * 1000

    def _set_worst_us(self, us):
        self.worst_pass_ms = us // 1000

    worst_pass_us = property(_get_worst_us, _set_worst_us)
    last_pass_us = property(lambda self: self.last_pass_ms * 1000)

    def _deliver(self):
        budget = self.max_deliveries
        busy = True
        while busy and budget > 0:
            busy = False
            for a in self.actors:  # registration order = priority order
                if a._count:
                    busy = True
                    i = a._head
                    kind = a._kinds[i]
                    payloads = a._payloads
                    payload = payloads[i]
                    payloads[i] = None  # the inbox must not keep a delivered payload alive
                    i += 1
                    a._head = 0 if i == len(payloads) else i
                    a._count -= 1
                    budget -= 1
                    self.delivered += 1
                    try:
                        a.handle(kind, payload)
                    except Exception as e:  # noqa: BLE001
                        self._crashed(a, e)

    def pending(self):
        for a in self.actors:
            if a._count:
                return True
        return False

    def run_forever(self, idle_ms=2):
        """The firmware's only loop. Sleeps in the clock's idle hook, never inside an actor."""
        self.running = True
        while not self._stop:
            self.run_once()
            if not self.pending():
                due = self.next_due_ms(self.clock.now())
                self.clock.idle(idle_ms if due is None else min(due, idle_ms))

        self.running = False

    def stop(self):
        self._stop = True

    def stats(self):
        return {
            "passes": self.passes,
            "delivered": self.delivered,
            "worst_pass_ms": self.worst_pass_ms,
            "timers": len(self._timers),
            "crashes": sum(a.crashes for a in self.actors),
            "lost": sum(a.lost for a in self.actors),
            "stopped": len(self.stopped),
        }
