"""Non-blocking transport under adafruit_minimqtt, so the MQTT bridge never stalls a scheduler
pass (see circuitpython-notes: MiniMQTT waits out its timeouts and does not see a dead broker).

- the socket wrapper tests readiness first (`ready()`: one non-blocking 1-byte read into a
  preallocated buffer, the byte is handed to the next read), so MiniMQTT only runs when a packet has
  begun to arrive; it raises at EOF at once; TCP connect is bounded by CONNECT_TIMEOUT_S;
  TCP_NODELAY where available;
- the MQTT subclass sends keep-alive pings without waiting for PINGRESP (`ping_pending` until it
  comes; the session keeps time on the scheduler's clock), keeps the fixed header of the last packet
  (its retain bit) and reads with poll(max_packets) instead of loop().
Relies on MiniMQTT 8.1.0 internals (_wait_for_msg, _sock_exact_recv, _send_bytes, _sock);
tests/test_mqtt_bridge.py checks they exist.
"""

import errno

SOCKET_TIMEOUT_S = 0.05  # continuation reads and sends (the first byte of a packet never waits)
RECV_TIMEOUT_S = 1.0  # longest wait for CONNACK / SUBACK
CONNECT_TIMEOUT_S = 1.0  # TCP (and TLS) connect

_AGAIN = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN), errno.ETIMEDOUT)
_ECONNRESET = getattr(errno, "ECONNRESET", 104)


class _Sock:
    def __init__(self, sock, nodelay=None):
        self.raw = sock
        self._timeout = None
        self._nodelay = nodelay
        self._one = bytearray(1)  # readiness probe; its byte is handed to the next read
        self._held = False

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

    def ready(self):
        """True when a byte has arrived (kept for the next read). Never waits; EOF raises."""
        if self._held:
            return True
        raw = self.raw
        raw.settimeout(0)
        try:
            got = raw.recv_into(self._one, 1)
        except OSError as e:
            if e.args and e.args[0] in _AGAIN or type(e).__name__ in ("SSLWantReadError", "BlockingIOError"):
                return False
            raise
        finally:
            raw.settimeout(self._timeout)
        if not got:
            raise OSError(_ECONNRESET, "connection closed by the broker")
        self._held = True
        return True

    def recv_into(self, buf, nbytes=0):
        if self._held and (nbytes or len(buf)):
            self._held = False
            buf[0] = self._one[0]
            return 1  # a short read: MiniMQTT reads the rest
        got = self.raw.recv_into(buf, nbytes)
        if not got and (nbytes or len(buf)):
            raise OSError(_ECONNRESET, "connection closed by the broker")
        return got

    def close(self):
        self.raw.close()


class NonBlockingPool:
    """Wraps the port's socket pool so that every socket is a _Sock. One per bridge, which also
    gives each bridge its own adafruit_connection_manager entry (they are keyed by pool)."""

    def __init__(self, pool):
        self._pool = pool
        self.SOCK_STREAM = pool.SOCK_STREAM
        self.AF_INET = getattr(pool, "AF_INET", 2)
        texc = getattr(pool, "timeout", None)
        if texc is not None:
            self.timeout = texc  # MiniMQTT's CPython path catches pool.timeout
        self._nodelay = None
        if hasattr(pool, "IPPROTO_TCP") and hasattr(pool, "TCP_NODELAY"):
            self._nodelay = (pool.IPPROTO_TCP, pool.TCP_NODELAY)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        return self._pool.getaddrinfo(host, port, family, type, proto, flags)

    def socket(self, family=2, type=1, proto=0):  # noqa: A002
        return _Sock(self._pool.socket(family, type, proto), self._nodelay)


class TlsWrapper:
    def __init__(self, ctx):
        self._ctx = ctx

    def wrap_socket(self, sock, server_hostname=None):
        return _Sock(self._ctx.wrap_socket(sock.raw, server_hostname=server_hostname), sock._nodelay)


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
            self.ping_pending = False
            self._first = False

        def _wait_for_msg(self, timeout=None):
            self._first = True
            try:
                op = super()._wait_for_msg(timeout)
            finally:
                self._first = False
            if op == 0xD0:
                self.ping_pending = False
            return op

        def _sock_exact_recv(self, bufsize, timeout=None):
            rc = super()._sock_exact_recv(bufsize, timeout)
            if self._first:
                self._first = False
                self.header = rc[0]
            return rc

        def ping(self):
            """PINGREQ without waiting for PINGRESP (the session times it on its own clock)."""
            self._send_bytes(b"\xc0\x00")
            self.ping_pending = True
            return []

        def poll(self, max_packets):
            """Handle at most max_packets packets that have begun to arrive; nothing else waits."""
            n = 0
            sock = self._sock
            while n < max_packets and sock is not None and sock.ready():
                if self._wait_for_msg() is None:
                    break
                n += 1
                sock = self._sock
            return n

    _client_cls = Client
    return Client
