"""Non-blocking transport under adafruit_minimqtt, so the MQTT bridge never stalls a scheduler
pass (see circuitpython-notes: MiniMQTT waits out its timeouts and does not see a dead broker).

- the socket wrapper reads the first byte of a packet without waiting (`quick`) and raises at
  EOF at once; TCP connect is bounded by CONNECT_TIMEOUT_S; TCP_NODELAY where available;
- the MQTT subclass sends keep-alive pings without waiting for PINGRESP, keeps the fixed header of
  the last packet (its retain bit) and reads with poll(max_packets) instead of loop().
Relies on MiniMQTT 8.1.0 internals (_wait_for_msg, _sock_exact_recv, _send_bytes, _sock,
_last_msg_sent_timestamp); tests/test_mqtt_bridge.py checks they exist.
"""

import errno

from adafruit_ticks import ticks_diff, ticks_ms

SOCKET_TIMEOUT_S = 0.05  # continuation reads and sends (the first byte of a packet never waits)
RECV_TIMEOUT_S = 1.0  # longest wait for CONNACK / SUBACK
CONNECT_TIMEOUT_S = 1.0  # TCP (and TLS) connect

_AGAIN = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN), errno.ETIMEDOUT)
_ECONNRESET = getattr(errno, "ECONNRESET", 104)


class _Sock:
    def __init__(self, sock, timeout_exc, nodelay=None):
        self.raw = sock
        self.quick = False
        self._timeout = None
        self._texc = timeout_exc
        self._nodelay = nodelay

    def settimeout(self, t):
        self._timeout = t
        self.raw.settimeout(t)

    def connect(self, addr):
        self.raw.settimeout(CONNECT_TIMEOUT_S)
        self.raw.connect(addr)
        self.raw.settimeout(self._timeout)
        if self._nodelay is not None:
            # MiniMQTT writes one packet in 2-3 send() calls: without TCP_NODELAY, Nagle plus
            # delayed ACK hold the last part ~40 ms (SUBACK and replies arrive that much later).
            try:
                self.raw.setsockopt(self._nodelay[0], self._nodelay[1], 1)
            except (OSError, AttributeError):
                pass

    def send(self, data):
        return self.raw.send(data)

    def recv_into(self, buf, nbytes=0):
        if self.quick:
            self.quick = False
            raw = self.raw
            raw.settimeout(0)
            try:
                got = raw.recv_into(buf, nbytes)
            except OSError as e:
                if e.args and e.args[0] in _AGAIN or type(e).__name__ in ("SSLWantReadError", "BlockingIOError"):
                    raise self._nothing()
                raise
            finally:
                raw.settimeout(self._timeout)
        else:
            got = self.raw.recv_into(buf, nbytes)
        if not got and (nbytes or len(buf)):
            raise OSError(_ECONNRESET, "connection closed by the broker")
        return got

    def _nothing(self):
        # What MiniMQTT treats as "no packet yet": the pool's timeout class on CPython, EAGAIN on a
        # board's socketpool.
        if self._texc is not None:
            return self._texc()
        return OSError(errno.EAGAIN)

    def close(self):
        self.raw.close()


class NonBlockingPool:
    """Wraps the port's socket pool so that every socket is a _Sock. One per bridge, which also
    gives each bridge its own adafruit_connection_manager entry (they are keyed by pool)."""

    def __init__(self, pool):
        self._pool = pool
        self.SOCK_STREAM = pool.SOCK_STREAM
        self.AF_INET = getattr(pool, "AF_INET", 2)
        self._texc = getattr(pool, "timeout", None)
        if self._texc is not None:
            self.timeout = self._texc  # MiniMQTT's CPython path catches pool.timeout
        self._nodelay = None
        if hasattr(pool, "IPPROTO_TCP") and hasattr(pool, "TCP_NODELAY"):
            self._nodelay = (pool.IPPROTO_TCP, pool.TCP_NODELAY)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        return self._pool.getaddrinfo(host, port, family, type, proto, flags)

    def socket(self, family=2, type=1, proto=0):  # noqa: A002
        return _Sock(self._pool.socket(family, type, proto), self._texc, self._nodelay)


class TlsWrapper:
    def __init__(self, ctx):
        self._ctx = ctx

    def wrap_socket(self, sock, server_hostname=None):
        return _Sock(self._ctx.wrap_socket(sock.raw, server_hostname=server_hostname), sock._texc,
                     sock._nodelay)


_client_cls = None


def client_class():
    """MiniMQTT's MQTT with a non-blocking ping, the fixed header of the last packet (its retain
    bit) kept for the message callback, and poll() instead of loop() (loop() waits out its timeout
    even when nothing arrives)."""
    global _client_cls
    if _client_cls is not None:
        return _client_cls
    from adafruit_minimqtt.adafruit_minimqtt import MQTT

    class Client(MQTT):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.header = 0
            self.ping_at = None
            self._first = False

        def _wait_for_msg(self, timeout=None):
            self._first = True
            try:
                op = super()._wait_for_msg(timeout)
            finally:
                self._first = False
            if op == 0xD0:
                self.ping_at = None
            return op

        def _sock_exact_recv(self, bufsize, timeout=None):
            rc = super()._sock_exact_recv(bufsize, timeout)
            if self._first:
                self._first = False
                self.header = rc[0]
            return rc

        def ping(self):
            self._send_bytes(b"\xc0\x00")
            now = ticks_ms()
            self._last_msg_sent_timestamp = now
            if self.ping_at is None:
                self.ping_at = now
            return []

        def poll(self, max_packets):
            if ticks_diff(ticks_ms(), self._last_msg_sent_timestamp) >= self.keep_alive * 1000:
                self.ping()
            n = 0
            while n < max_packets:
                self._sock.quick = True
                op = self._wait_for_msg()
                if op is None:
                    break
                n += 1
            if self._sock is not None:
                self._sock.quick = False
            return n

    _client_cls = Client
    return Client
