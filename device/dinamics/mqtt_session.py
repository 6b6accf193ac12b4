"""One MQTT broker session for the bridge: connect, back-off, keep-alive, reading, outgoing queues.
Every deadline is on the scheduler's clock (a virtual clock in tests); only the cost of a blocking
connect is measured in real time (time.monotonic_ns, like the scheduler's pass timing).

Never blocks the scheduler (the client is dinamics.mqtt_client, see docs/mqtt.md):
- one connection attempt per timer shot, `connect_retries=1`, capped exponential back-off with
  jitter; TCP connect bounded by CONNECT_TIMEOUT_S, CONNACK/SUBACK by RECV_TIMEOUT_S;
- the socket is read at most every READ_EVERY_MS, only when a byte has arrived (mqtt_client's
  readiness test), at most MAX_PACKETS_PER_POLL packets; a socket at EOF raises at once;
- a keep-alive ping never waits; no PINGRESP within PING_TIMEOUT_MS takes the session down;
- any exception from the socket = down, then a new attempt after BACKOFF_FIRST_MS (+ jitter).
Outgoing: telemetry/state coalesces per topic (newest wins), responses wait in order in a bounded
FIFO, and the owner's `more(n)` callback sends built-at-send-time content (reports, HA, debug_log)
with what is left of the MAX_SENDS_PER_POLL budget.
"""

import errno
import os
import sys

from adafruit_ticks import ticks_add, ticks_diff

from dinamics import messages as m
from dinamics.mqtt_client import NonBlockingPool, client_class

KEEPALIVE_S = 60
T_CONNECT = "connect"  # the owner's timer tag of a connection attempt (it calls connect())
PING_TIMEOUT_MS = 15000  # no PINGRESP this long after a ping: the connection is dead
BACKOFF_FIRST_MS = 1000
BACKOFF_MAX_MS = 60000
READ_EVERY_MS = 20
MAX_PACKETS_PER_POLL = 8
MAX_SENDS_PER_POLL = 12
FIFO_MAX = 64  # responses waiting for the broker


def jitter(ms):
    return ms + (os.urandom(1)[0] * ms) // 1024  # up to +25 %


def forget(name):
    """Drop a module that is loaded only when needed (dinamics.<name>): imported again next time."""
    sys.modules.pop("dinamics." + name, None)
    import dinamics

    if hasattr(dinamics, name):
        delattr(dinamics, name)


def why(e):
    text = str(e)
    return type(e).__name__ + (": " + text if text else "")


class Session:
    """owner: the actor (timers, log, clock, post). on_message(topic, payload, retained),
    on_up() after CONNACK/SUBACK, more(n) sends up to n extra publishes with send()."""

    def __init__(self, owner, port, on_message, on_up, more):
        self.owner = owner
        self.port = port
        self._on_message = on_message
        self._on_up = on_up
        self._more = more
        self._pool = NonBlockingPool(port.socket_pool)
        self._client_cls = client_class()
        self.stats = {"connects": 0, "connect_failures": 0, "downs": 0, "published": 0,
                      "published_bytes": 0, "received": 0, "rejected": 0, "handler_errors": 0,
                      "fifo_dropped": 0, "worst_connect_ms": 0, "pings": 0}
        self.client = None
        self.connected = False
        self.prefix = ""
        self.reset()

    def reset(self):
        self.close_client()
        self.connected = False
        self.cfg = None  # (sn, host, port, user, password, tls) of the session
        self.conn_timer = None
        self._backoff = BACKOFF_FIRST_MS
        self._failing = False
        self._latest = {}  # topic suffix -> (payload, retain): newest wins
        self._latest_order = []  # its keys in first-insert order (a board's dict has none)
        self._fifo = []  # (topic suffix, payload, retain) in order
        self._read_at = 0
        self._sent_at = 0
        self._ping_at = None  # when the oldest unanswered ping went out

    def _now(self):
        return self.owner.sched.clock.now()

    # --- connection ----------------------------------------------------------------------------
    def schedule(self, ms):
        self.owner.cancel(self.conn_timer)
        self.conn_timer = self.owner.after(ms, T_CONNECT)

    def kick(self):
        """The network came (back) up: try the broker now, with the back-off from its start."""
        if self.connected:
            return
        self._backoff = BACKOFF_FIRST_MS
        self.schedule(1)

    def unschedule(self):
        self.owner.cancel(self.conn_timer)
        self.conn_timer = None

    def connect(self, cfg, prefix, topics):
        """One attempt (the owner's "connect" timer). Success -> on_up(); failure -> back-off.
        The attempt's code is dinamics.mqtt_connect, loaded for it and dropped after (heap)."""
        self.conn_timer = None
        if self.connected:
            return
        self.cfg = cfg
        self.prefix = prefix
        if not cfg[1]:
            return
        from dinamics import mqtt_connect

        try:
            mqtt_connect.attempt(self, cfg, prefix, topics)
        finally:
            forget("mqtt_connect")

    def up(self):
        """The client is connected (also how tests attach a fake client)."""
        now = self._now()
        self.connected = True
        self.stats["connects"] += 1
        self._sent_at = now
        self._read_at = now
        self._ping_at = None
        self._on_up()

    def _client_message(self, client, topic, message):
        self._on_message(topic, message, bool(client.header & 1))

    def close_client(self):
        c = self.client
        self.client = None
        if c is None:
            return
        try:
            c._close_socket()
        except Exception:  # noqa: BLE001 - the socket may already be gone
            pass
        c._is_connected = False  # (a test's fake client)

    def down(self, exc):
        self.stats["downs"] += 1
        self.connected = False
        self.close_client()
        self.owner.log(m.WARNING, "broker connection lost (%s)" % why(exc))
        self.owner.post(m.NET_STATUS, False)
        self._backoff = BACKOFF_FIRST_MS
        self.schedule(jitter(BACKOFF_FIRST_MS))

    def leave(self, flush=True):
        """Leave cleanly: (send what waits,) publish offline, DISCONNECT. True if it was connected."""
        c = self.client
        was = c is not None and self.connected
        if was:
            try:
                if flush:
                    self.flush()
                c.publish(self.prefix + "availability", "offline", True)
                c.disconnect()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self.close_client()
        self.connected = False
        return was

    def reconfigure(self, cfg, delay_ms):
        """Broker or identity changed: leave cleanly, connect with `cfg` after delay_ms (none
        without a host). True if a session was left."""
        was = self.leave()
        self.cfg = cfg
        self._backoff = BACKOFF_FIRST_MS
        if cfg[1]:
            self.schedule(delay_ms)
        else:
            self.unschedule()
        return was

    def close(self):
        """Host shutdown: leave (offline, DISCONNECT), the socket is closed."""
        self.leave(False)

    def poll(self):
        if not self.connected:
            return
        c = self.client
        try:
            now = self._now()
            if ticks_diff(now, self._read_at) >= 0:
                self._read_at = ticks_add(now, READ_EVERY_MS)
                if ticks_diff(now, self._sent_at) >= KEEPALIVE_S * 1000:
                    c.ping()
                    self.stats["pings"] += 1
                    self._sent_at = now
                    if self._ping_at is None:
                        self._ping_at = now
                c.poll(MAX_PACKETS_PER_POLL)
                if self._ping_at is not None:
                    if not c.ping_pending:
                        self._ping_at = None
                    elif ticks_diff(now, self._ping_at) > PING_TIMEOUT_MS:
                        raise OSError(errno.ETIMEDOUT, "no PINGRESP")
            if self.connected:
                self.flush()
        except Exception as e:  # noqa: BLE001 - anything from the socket: reconnect
            if self.connected:
                self.down(e)

    # --- outgoing ------------------------------------------------------------------------------
    def pub(self, sub, payload, fifo, retain):
        """Queue a publish: telemetry/state (fifo False) coalesces per topic; responses keep order."""
        if fifo:
            if len(self._fifo) >= FIFO_MAX:
                self._fifo.pop(0)
                self.stats["fifo_dropped"] += 1
            self._fifo.append((sub, payload, retain))
        else:
            if sub not in self._latest:
                self._latest_order.append(sub)
            self._latest[sub] = (payload, retain)

    def send(self, topic, payload, retain):
        self.client.publish(topic, payload, retain)
        self._sent_at = self._now()
        self.stats["published"] += 1
        self.stats["published_bytes"] += len(topic) + len(payload)

    def flush(self):
        n = MAX_SENDS_PER_POLL
        pre = self.prefix
        fifo = self._fifo
        while fifo and n > 0:
            sub, payload, retain = fifo[0]
            self.send(pre + sub, payload, retain)
            fifo.pop(0)
            n -= 1
        latest = self._latest
        order = self._latest_order
        while order and n > 0:
            sub = order.pop()  # newest first, the same on every VM
            item = latest.pop(sub)
            try:
                self.send(pre + sub, item[0], item[1])
            except Exception:
                latest[sub] = item  # keep it for the next connection
                order.append(sub)
                raise
            n -= 1
        if n > 0:
            self._more(n)
