"""Scheduler: ordering, overflow policy per kind, timers and tick wrap, supervision."""
from adafruit_ticks import ticks_diff

from dinamics import messages as m
from dinamics.mailbox import Actor, Scheduler
from hil.clock import VirtualClock
from hil.recorder import Recorder as SharedRecorder
from inbox import queued


class Recorder(SharedRecorder):
    def __init__(self, name="rec", subscribes=(), inbox_size=16):
        super().__init__(name, subscribes, inbox_size)
        self.seen = self.got


def make():
    clock = VirtualClock()
    logs = []
    s = Scheduler(clock, console=lambda lvl, t: logs.append(t))
    return clock, s, logs


def test_post_reaches_every_subscriber_in_order():
    _, s, _ = make()
    a = s.add(Recorder("a", (m.CHARGE_COMMAND, m.SETTING_REJECTED)))
    b = s.add(Recorder("b", (m.SETTING_REJECTED,)))
    s.post(m.CHARGE_COMMAND, 1)
    s.post(m.SETTING_REJECTED, 2)
    s.post(m.CHARGE_COMMAND, 3)
    s.run_once()
    assert a.seen == [(m.CHARGE_COMMAND, 1), (m.SETTING_REJECTED, 2), (m.CHARGE_COMMAND, 3)]
    assert b.seen == [(m.SETTING_REJECTED, 2)]


def test_run_to_completion_posts_during_handle_are_queued_not_reentrant():
    _, s, _ = make()
    order = []

    class Chain(Actor):
        name = "chain"
        subscribes = (m.CHARGE_COMMAND,)

        def handle(self, kind, payload):
            order.append(("start", payload))
            if payload < 3:
                self.post(m.CHARGE_COMMAND, payload + 1)
            order.append(("end", payload))

    s.add(Chain())
    s.post(m.CHARGE_COMMAND, 1)
    s.run_once()
    assert order == [("start", 1), ("end", 1), ("start", 2), ("end", 2), ("start", 3), ("end", 3)]


def test_telemetry_overflow_keeps_newest():
    _, s, _ = make()
    r = s.add(Recorder("r", (m.CT_READING, m.EVSE_STATE), inbox_size=3))
    for i in range(10):
        s.post(m.CT_READING, i)
    s.post(m.EVSE_STATE, "x")
    s.run_once()
    # One CT reading slot holds the newest value; the state got a slot by evicting telemetry.
    assert (m.CT_READING, 9) in r.seen
    assert (m.EVSE_STATE, "x") in r.seen
    assert all(p != 0 for k, p in r.seen if k == m.CT_READING)
    assert r.dropped >= 7 and r.lost == 0


def test_command_overflow_is_refused_counted_and_reported():
    _, s, logs = make()
    r = s.add(Recorder("r", (m.RAPI_REQUEST,), inbox_size=2))
    assert s.post(m.RAPI_REQUEST, 1)
    assert s.post(m.RAPI_REQUEST, 2)
    assert s.post(m.RAPI_REQUEST, 3) is False
    assert r.lost == 1
    assert any("inbox full" in t and "rapi.request" in t for t in logs)
    s.run_once()
    assert [p for _, p in r.seen] == [1, 2]  # the accepted ones, in order
    assert s.stats()["lost"] == 1


def test_telemetry_never_evicts_commands():
    _, s, _ = make()
    r = s.add(Recorder("r", (m.RAPI_REQUEST, m.CT_READING), inbox_size=2))
    s.post(m.RAPI_REQUEST, "a")
    s.post(m.RAPI_REQUEST, "b")
    s.post(m.CT_READING, 1)  # no room and nothing to evict: dropped, commands intact
    s.run_once()
    assert r.seen == [(m.RAPI_REQUEST, "a"), (m.RAPI_REQUEST, "b")]


def test_timers_fire_on_time_across_tick_wrap():
    clock, s, _ = make()
    start = clock.now()
    r = s.add(Recorder("r"))
    s.every(r, 1000, "tick")
    once = s.after(r, 2500, "once")
    fired = []
    for _ in range(130000 // 10):  # 130 s simulated, crossing the 2**29 wrap at ~65 s
        clock.advance(10)
        s.run_once()
        while r.seen:
            fired.append((clock.ms, r.seen.pop(0)[1]))
    ticks = [t for t, tag in fired if tag == "tick"]
    assert len(ticks) == 130
    assert all(b - a == 1000 for a, b in zip(ticks, ticks[1:]))
    assert [t for t, tag in fired if tag == "once"] == [2500]
    assert not once.active
    assert clock.now() < start  # the tick counter really wrapped
    assert ticks_diff(clock.now(), start) == 130000


def test_cancel_and_next_due():
    clock, s, _ = make()
    r = s.add(Recorder("r"))
    t = s.every(r, 500, "x")
    assert s.next_due_ms(clock.now()) == 500
    s.cancel(t)
    assert s.next_due_ms(clock.now()) is None
    clock.advance(2000)
    s.run_once()
    assert r.seen == []


def test_late_periodic_timer_does_not_burst():
    clock, s, _ = make()
    r = s.add(Recorder("r"))
    s.every(r, 100, "p")
    clock.advance(1000)  # the loop stalled for 10 periods
    s.run_once()
    s.run_once()
    assert len(r.seen) == 1


def test_crashing_actor_is_restarted_and_loop_survives():
    clock, s, logs = make()

    class Fragile(Actor):
        name = "fragile"
        subscribes = (m.CHARGE_COMMAND,)

        def __init__(self):
            super().__init__()
            self.starts = 0
            self.handled = []

        def start(self):
            self.starts += 1
            self.every(1000, "beat")

        def handle(self, kind, payload):
            if payload == "boom":
                raise RuntimeError("bad input")
            self.handled.append(payload)

    f = s.add(Fragile())
    other = s.add(Recorder("other", (m.CHARGE_COMMAND,)))
    s.post(m.CHARGE_COMMAND, "boom")
    s.post(m.CHARGE_COMMAND, "after")
    s.run_once()
    assert f.crashes == 1 and f.starts == 2
    assert any("fragile crashed: RuntimeError bad input" in t for t in logs)
    assert [p for _, p in other.seen] == ["boom", "after"]
    # Its old timer was dropped with the crash; the restart armed exactly one new one.
    assert sum(1 for t in s._timers if t.owner is f) == 1
    s.post(m.CHARGE_COMMAND, "later")
    s.run_once()
    assert f.handled[-1] == "later"


def test_actor_that_keeps_crashing_is_stopped_and_escalated():
    clock, s, _ = make()
    fatal = []
    s.on_fatal = fatal.append

    class Bad(Actor):
        name = "bad"
        subscribes = (m.CHARGE_COMMAND,)

        def handle(self, kind, payload):
            raise ValueError("always")

    b = s.add(Bad())
    for _ in range(10):
        s.post(m.CHARGE_COMMAND, 1)
        s.run_once()
    assert fatal == [b]
    assert b.crashes == 6
    s.post(m.CHARGE_COMMAND, 1)  # no longer subscribed; nothing raises
    s.run_once()


def test_poll_called_every_pass_and_worst_pass_measured():
    clock, s, _ = make()

    class Io(Actor):
        name = "io"
        polls = True

        def __init__(self):
            super().__init__()
            self.polls_seen = 0

        def poll(self, budget_ms):
            self.polls_seen += 1
            assert budget_ms == s.poll_budget_ms

    io = s.add(Io())
    for _ in range(5):
        s.run_once()
    assert io.polls_seen == 5
    assert s.passes == 5 and s.worst_pass_us >= s.last_pass_us >= 0


def test_delivery_budget_bounds_one_pass():
    clock, s, _ = make()
    s.max_deliveries = 10

    class Flood(Actor):
        name = "flood"
        subscribes = (m.CHARGE_COMMAND,)

        def handle(self, kind, payload):
            self.post(m.CHARGE_COMMAND, payload)  # infinite chain

    s.add(Flood())
    s.post(m.CHARGE_COMMAND, 0)
    s.run_once()  # must return despite the endless chain
    assert s.delivered <= 2 * 10


# --- issue 8: no setting can stop an actor; a stopped actor is visible ---------------------------

def test_timer_delay_beyond_the_ticks_limit_is_clamped_not_a_crash():
    from dinamics.mailbox import MAX_TIMER_MS

    clock, s, logs = make()
    assert MAX_TIMER_MS == 2 ** 28 - 1

    class Poller(Actor):
        name = "poller"

        def start(self):
            # the testers' settings: timer5 500000 x TFO 1000 = 5e8 ms > ticks_add's 2**28 limit
            self.slow = self.every(500000 * 1000, "GC")
            self.once = self.after(float("inf"), "never")
            self.neg = self.after(-5, "now")

        def handle(self, kind, payload):
            self.fired = getattr(self, "fired", []) + [payload]

    p = s.add(Poller())
    assert p.crashes == 0 and not p.stopped
    assert ticks_diff(p.slow.due, clock.now()) == MAX_TIMER_MS and p.slow.period == MAX_TIMER_MS
    assert ticks_diff(p.once.due, clock.now()) == MAX_TIMER_MS
    s.run_once()
    assert p.fired == ["now"]  # a negative delay is due at once
    clamped = [t for t in logs if "clamped" in t]
    assert len(clamped) == 3 and "'GC'" in clamped[0] and str(MAX_TIMER_MS) in clamped[0]
    p.every(10 ** 9, "GC")  # the same timer re-armed: logged once only
    assert len([t for t in logs if "clamped" in t]) == 3
    clock.advance(MAX_TIMER_MS)
    s.run_once()
    assert sorted(p.fired[1:]) == ["GC", "GC", "never"]


def _keep_crashing(s, a, kind=m.LOG):
    for _ in range(10):
        s.post(kind, 1)
        s.run_once()


def test_stopped_actor_posts_actor_stopped_once_and_calls_fatal_once():
    clock, s, logs = make()
    fatal = []
    s.on_fatal = fatal.append
    watcher = s.add(Recorder("bridge", (m.ACTOR_STOPPED,)))

    class Bad(Actor):
        name = "bad"
        subscribes = (m.LOG,)
        polls = True

        def start(self):
            self.every(100, "tick")

        def handle(self, kind, payload):
            raise ValueError("always")

    b = s.add(Bad())
    _keep_crashing(s, b)
    s.run_once()
    assert watcher.of(m.ACTOR_STOPPED) == ["bad"]
    assert fatal == [b] and b.stopped and s.stopped == ["bad"]
    assert s.stats()["stopped"] == 1
    assert all(t.owner is not b for t in s._timers) and b not in s._pollers
    assert any("bad keeps crashing: stopped" in t for t in logs)


def test_failed_restart_stops_the_actor_and_drops_timers_it_armed_first():
    clock, s, logs = make()
    fatal = []
    s.on_fatal = fatal.append
    watcher = s.add(Recorder("bridge", (m.ACTOR_STOPPED,)))

    class HalfStart(Actor):
        name = "half"
        subscribes = (m.LOG,)
        starts = 0

        def start(self):
            self.starts += 1
            self.every(100, "tick")  # armed before the failure below
            if self.starts > 1:
                raise RuntimeError("cannot restart")

        def handle(self, kind, payload):
            raise ValueError("crash once")

    h = s.add(HalfStart())
    s.post(m.LOG, 1)
    s.run_once()
    s.run_once()
    assert h.stopped and fatal == [h] and watcher.of(m.ACTOR_STOPPED) == ["half"]
    assert all(t.owner is not h for t in s._timers)


def test_a_raising_fatal_hook_does_not_take_the_loop_down():
    clock, s, logs = make()

    def hook(actor):
        raise OSError("no watchdog")

    s.on_fatal = hook

    class Bad(Actor):
        name = "bad"
        subscribes = (m.LOG,)

        def handle(self, kind, payload):
            raise ValueError("always")

    b = s.add(Bad())
    _keep_crashing(s, b)
    assert b.stopped and any("fatal hook failed" in t for t in logs)


class _FakeWd:
    def __init__(self):
        self.fed = 0
        self.timeout = None
        self.mode = None

    def feed(self):
        self.fed += 1


class _Bad(Actor):
    name = "rapi_link"
    subscribes = (m.LOG,)

    def handle(self, kind, payload):
        raise OverflowError("ticks interval overflow")


def _board_port(monkeypatch):
    """dinamics.board_port imported against fake board modules (the code under test is fatal()
    and start_watchdog(), which need no pins)."""
    import sys
    import types

    resets = []
    wd = _FakeWd()
    mc = types.ModuleType("microcontroller")
    mc.watchdog = wd
    mc.reset = lambda: resets.append(True)
    wdm = types.ModuleType("watchdog")
    wdm.WatchDogMode = types.SimpleNamespace(RESET="RESET", RAISE="RAISE")
    for name, mod in (("board", types.ModuleType("board")), ("busio", types.ModuleType("busio")),
                      ("microcontroller", mc), ("watchdog", wdm)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "dinamics.board_port", raising=False)
    import dinamics.board_port as bp

    monkeypatch.delitem(sys.modules, "dinamics.board_port")
    port = bp.BoardPort.__new__(bp.BoardPort)  # no UART, WiFi, ADC
    port._feeder = None
    return bp, port, wd, resets


def test_board_fatal_starves_the_watchdog_after_posting_and_never_blocks(monkeypatch):
    bp, port, wd, resets = _board_port(monkeypatch)
    clock, s, logs = make()
    s.on_fatal = port.fatal
    bridge = s.add(Recorder("bridge", (m.ACTOR_STOPPED,)))
    bad = s.add(_Bad())
    port.start_watchdog(s)
    assert wd.timeout == bp.WATCHDOG_TIMEOUT_S and wd.mode == "RESET"
    for _ in range(30):
        clock.advance(100)
        s.run_once()
    assert wd.fed >= 2 and resets == []
    monkeypatch.setattr("time.sleep", lambda *_: (_ for _ in ()).throw(AssertionError("blocks")))
    _keep_crashing(s, bad)
    assert bad.stopped and bridge.of(m.ACTOR_STOPPED) == ["rapi_link"]
    assert resets == []  # not at once: the loop runs on so the bridge can publish
    fed = wd.fed
    for _ in range(bp.WATCHDOG_TIMEOUT_S * 10):
        clock.advance(100)
        s.run_once()
    assert wd.fed == fed  # starved: the hardware watchdog resets the board within its timeout
    assert resets == []
    for _ in range(25):  # still up 2 s after the watchdog should have fired: the backstop
        clock.advance(100)
        s.run_once()
    assert resets == [True]


def test_board_fatal_without_a_watchdog_resets_after_a_short_grace(monkeypatch):
    bp, port, wd, resets = _board_port(monkeypatch)
    import sys

    sys.modules["microcontroller"].watchdog = None
    clock, s, logs = make()
    s.on_fatal = port.fatal
    bad = s.add(_Bad())
    port.start_watchdog(s)
    _keep_crashing(s, bad)
    assert resets == []
    for _ in range(35):
        clock.advance(100)
        s.run_once()
    assert resets == [True] and wd.fed == 0


def test_host_fatal_records_and_calls_the_cli_callback(tmp_path):
    from hil.host_port import HostPort

    clock, s, _ = make()
    lines = []
    port = HostPort(object(), str(tmp_path), clock=clock, console=lambda lvl, t: lines.append(t))
    s.on_fatal = port.fatal
    bad = s.add(_Bad())
    _keep_crashing(s, bad)
    assert port.fatal_actors == ["rapi_link"] and any("rapi_link stopped" in t for t in lines)
    stopped = []
    port.on_fatal = stopped.append
    bad2 = _Bad()
    bad2.name = "other"
    s.add(bad2)
    _keep_crashing(s, bad2)
    assert port.fatal_actors == ["rapi_link", "other"] and stopped == [bad2]


# --- board-lean internals: ring inboxes, re-armable timers, pass timing in ms ticks ---------------

def test_ring_inbox_keeps_fifo_order_across_the_wrap_and_frees_delivered_payloads():
    _, s, _ = make()
    r = s.add(Recorder("r", (m.CHARGE_COMMAND,), inbox_size=4))
    assert len(r._kinds) == 4 and len(r._payloads) == 4  # allocated once, at its capacity
    kinds, payloads = r._kinds, r._payloads
    n = 0
    for round_ in range(5):  # 3 in, 3 out: the head walks round the ring several times
        for _ in range(3):
            assert s.post(m.CHARGE_COMMAND, [n])
            n += 1
        s.run_once()
        assert r._kinds is kinds and r._payloads is payloads
        assert r._payloads == [None] * 4  # nothing delivered is kept alive by the inbox
    assert [p[0] for _, p in r.seen] == list(range(15))


def test_full_wrapped_ring_evicts_the_oldest_telemetry_and_keeps_the_order():
    _, s, _ = make()
    r = s.add(Recorder("r", (m.CHARGE_COMMAND, m.CT_READING, m.EVSE_STATE), inbox_size=4))
    s.post(m.CHARGE_COMMAND, "x")
    s.post(m.CHARGE_COMMAND, "y")
    s.run_once()  # head is now at slot 2: the next four messages wrap
    s.post(m.CHARGE_COMMAND, 0)
    s.post(m.CT_READING, 1)
    s.post(m.CHARGE_COMMAND, 2)
    s.post(m.CT_READING, 3)
    assert queued(r) == [m.CHARGE_COMMAND, m.CT_READING, m.CHARGE_COMMAND, m.CT_READING]
    s.post(m.CT_READING, 4)  # same kind queued: the newest queued value is replaced
    s.post(m.EVSE_STATE, 5)  # other telemetry: the oldest telemetry (ct 1) goes
    assert not s.post(m.CHARGE_COMMAND, 6)  # a command is refused, not evicting anything
    assert queued(r) == [m.CHARGE_COMMAND, m.CHARGE_COMMAND, m.CT_READING, m.EVSE_STATE]
    del r.seen[:]
    s.run_once()
    assert r.seen == [(m.CHARGE_COMMAND, 0), (m.CHARGE_COMMAND, 2), (m.CT_READING, 4),
                      (m.EVSE_STATE, 5)]
    assert r.lost == 1 and r.dropped == 2


def test_inbox_size_set_on_the_instance_sizes_the_ring():
    _, s, _ = make()
    a = Actor()
    a.inbox_size = 5
    s.add(a)
    assert len(a._kinds) == 5 and len(a._payloads) == 5


def test_rearm_reuses_a_fired_running_or_cancelled_timer():
    clock, s, _ = make()
    r = s.add(Recorder("r"))
    t = r.after(100, "once")
    clock.advance(100)
    s.run_once()
    assert r.seen == [(m.TIMER, "once")] and not t.active and t not in s._timers
    assert r.rearm(t, 50) is t and t.active and s._timers.count(t) == 1
    clock.advance(49)
    s.run_once()
    assert len(r.seen) == 1
    assert r.rearm(t, 30) is t and s._timers.count(t) == 1  # running: pushed back, not doubled
    clock.advance(29)
    s.run_once()
    assert len(r.seen) == 1
    clock.advance(1)
    s.run_once()
    assert r.seen[-1] == (m.TIMER, "once") and len(r.seen) == 2
    r.rearm(t, 10)
    r.cancel(t)
    r.rearm(t, 10)
    clock.advance(10)
    s.run_once()
    assert len(r.seen) == 3
    p = r.every(100, "tick")
    r.rearm(p, 10)  # a periodic timer: next in 10 ms, then every 100 ms again
    clock.advance(10)
    s.run_once()
    clock.advance(100)
    s.run_once()
    assert [x for x in r.seen if x == (m.TIMER, "tick")] == [(m.TIMER, "tick")] * 2
    assert p.period == 100 and p.active


def test_rearm_clamps_like_after_and_ignores_a_stopped_actor():
    from dinamics.mailbox import MAX_TIMER_MS

    clock, s, logs = make()
    r = s.add(Recorder("r"))
    t = r.after(1, "t")
    r.rearm(t, 10 ** 12)
    assert ticks_diff(t.due, clock.now()) == MAX_TIMER_MS and any("clamped" in x for x in logs)
    s._stop_actor(r)
    r.rearm(t, 5)
    assert t not in s._timers


def test_pass_timing_uses_real_ms_ticks_not_the_injected_clock(monkeypatch):
    import dinamics.mailbox as mb

    _, s, _ = make()
    ticks = iter([1000, 1007, 2000, 2003])
    monkeypatch.setattr(mb, "ticks_ms", lambda: next(ticks))
    s.run_once()
    s.run_once()
    assert s.last_pass_ms == 3 and s.worst_pass_ms == 7 and s.stats()["worst_pass_ms"] == 7
    assert s.worst_pass_us == 7000 and s.last_pass_us == 3000  # the rig's figures, 1 ms resolution
    s.worst_pass_us = 0
    assert s.worst_pass_ms == 0
