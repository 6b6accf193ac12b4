"""dinamics.mqtt_session on the virtual clock (keep-alive, PINGRESP timeout, read rate) and the
scheduler's LOG messages the bridge's debug_log is built from (DROP_NEW policy, recursion guard)."""
import time

import pytest

from dinamics import messages as m
from dinamics import mqtt_session as ms
from dinamics.mailbox import Actor, Scheduler
from hil.clock import VirtualClock
from inbox import queued
from mqtt_fixtures import BridgeRig


def test_keepalive_and_pingresp_timeout_run_on_the_virtual_clock():
    r = BridgeRig()
    c = r.connect()
    c.silent = True  # a broker that stopped answering
    r.run(2000, step=50)  # the connect snapshot and HA configs go out
    sent = r.clock.ms
    r.run(ms.KEEPALIVE_S * 1000 - 2100, step=50)
    assert c.pings == 0 and r.bridge.connected
    while c.pings == 0 and r.clock.ms < sent + ms.KEEPALIVE_S * 1000 + 100:
        r.run(10, step=10)
    assert c.pings == 1 and r.bridge.connected  # nothing sent for KEEPALIVE_S: a ping
    pinged = r.clock.ms
    r.run(ms.PING_TIMEOUT_MS - 100, step=50)
    assert r.bridge.connected and c.pings == 1  # no answer yet, no second ping
    r.run(200, step=10)
    assert r.clock.ms - pinged <= ms.PING_TIMEOUT_MS + 100
    assert not r.bridge.connected and r.bridge.stats["downs"] == 1
    assert r.sink.of(m.NET_STATUS)[-1] is False
    assert r.bridge.session.conn_timer is not None  # a new attempt is scheduled
    assert any("no PINGRESP" in t for lvl, t in r.logs)


def test_an_answered_ping_keeps_the_session():
    r = BridgeRig()
    c = r.connect()
    r.run(5 * 60 * 1000, step=100)
    assert r.bridge.connected and c.pings >= 3 and r.bridge.stats["downs"] == 0


def test_the_socket_is_read_at_most_every_20_ms():
    r = BridgeRig()
    c = r.connect()
    polls = []
    c.poll = lambda n: polls.append(r.clock.ms) or 0
    r.run(1000, step=1)
    assert 45 <= len(polls) <= 51
    assert min(b - a for a, b in zip(polls, polls[1:])) >= ms.READ_EVERY_MS


class _Rec(Actor):
    def __init__(self, name, kinds, inbox_size=16):
        super().__init__()
        self.name = name
        self.subscribes = kinds
        self.inbox_size = inbox_size
        self.seen = []

    def handle(self, kind, payload):
        self.seen.append((kind, payload))


def test_log_posts_a_log_message_and_the_console_line():
    lines = []
    s = Scheduler(VirtualClock(), console=lambda lvl, t: lines.append(t))
    s.log(m.INFO, "before anyone listens")  # no subscriber: console only, nothing queued
    a = s.add(_Rec("a", (m.LOG,)))
    s.log(m.WARNING, "hello")
    s.run_once()
    assert lines == ["before anyone listens", "hello"]
    assert a.seen == [(m.LOG, (m.WARNING, "hello"))]


def test_log_lines_are_dropped_at_three_quarters_and_never_crowd_out_commands():
    s = Scheduler(VirtualClock(), console=lambda lvl, t: None)
    a = s.add(_Rec("a", (m.LOG, m.CHARGE_COMMAND, m.CT_READING), inbox_size=16))
    for i in range(20):
        s.log(m.WARNING, "line %d" % i)
    assert len(queued(a)) == 12 and a.dropped == 8  # the last quarter stays free
    for i in range(4):
        assert s.post(m.CHARGE_COMMAND, i)  # commands still fit
    assert s.post(m.CT_READING, 1)  # telemetry evicts telemetry only, never a log or a command
    s.log(m.WARNING, "full")
    assert a.lost == 0 and queued(a).count(m.CHARGE_COMMAND) == 4 and queued(a).count(m.LOG) == 12
    s.run_once()
    s.run_once()
    assert [p for k, p in a.seen if k == m.CHARGE_COMMAND] == [0, 1, 2, 3]


def test_a_log_emitted_while_posting_a_log_goes_to_the_console_only():
    lines = []

    class Noisy(Scheduler):
        def send(self, actor, kind, payload=None):
            if kind == m.LOG:
                self.log(m.ERROR_LEVEL, "nested")  # e.g. an inbox-full report
            return Scheduler.send(self, actor, kind, payload)

    s = Noisy(VirtualClock(), console=lambda lvl, t: lines.append(t))
    a = s.add(_Rec("a", (m.LOG,)))
    s.log(m.WARNING, "outer")
    s.run_once()
    assert lines == ["outer", "nested"]
    assert a.seen == [(m.LOG, (m.WARNING, "outer"))]


def test_readiness_probe_hands_its_byte_to_the_next_read_and_sees_eof():
    import socket

    from dinamics.mqtt_client import NonBlockingPool

    a, b = socket.socketpair()
    try:
        s = NonBlockingPool(socket).socket()
        s.raw.close()
        s.raw = a
        s.settimeout(0.05)
        assert s.ready() is False  # nothing there: no wait, no exception
        b.sendall(b"\x30\x05abcde")
        deadline = time.monotonic() + 2
        while not s.ready():
            assert time.monotonic() < deadline
        assert s.ready() is True  # still held, nothing more read
        buf = bytearray(1)
        assert s.recv_into(buf, 1) == 1 and buf == b"\x30"
        rest = bytearray(6)
        got = s.recv_into(rest, 6)
        assert rest[:got] == b"\x05abcde"[:got] and got >= 1
        b.close()
        deadline = time.monotonic() + 2
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                s.ready()  # EOF raises at once
    finally:
        a.close()
