"""A minimal MQTT 3.1.1 client of our own, non-blocking, for the bridge's one session.

Why not adafruit_minimqtt (the project prefers a well-kept library): heap. As .mpy on the 32-bit
VM MiniMQTT plus adafruit_connection_manager and our non-blocking subclass cost ~30 KB resident;
this module costs ~5 KB (docs/mqtt.md, docs/heap.md), and a board without PSRAM has ~150 KB.
It does only what the unit needs, and keeps what MiniMQTT's wrapper did for us (circuitpython-notes):
- CONNECT with clean session, keep-alive, last will (retained), username with or without a password
  (an empty password is sent then, as before); CONNACK refused -> an exception, never a retry
  (the session backs off); TCP (+TLS through the port's ssl context) connect bounded by
  CONNECT_TIMEOUT_S, CONNACK/SUBACK by RECV_TIMEOUT_S;
- SUBSCRIBE (one wildcard), PUBLISH out at QoS 0 (or 1, PUBACK not awaited), PUBLISH in at QoS 0/1
  (PUBACK sent), PINGREQ without waiting (`ping_pending` until PINGRESP; the session times it on
  the scheduler's clock), DISCONNECT;
- the socket wrapper tests readiness first (`ready()`: one non-blocking 1-byte read into a
  preallocated buffer, the byte is handed to the next read), so a packet is only read once it has
  begun to arrive; EOF raises at once (a dead broker is seen, not waited out); TCP_NODELAY;
- packets are read into one preallocated buffer (BUF_SIZE; a longer packet gets its own buffer).
"""

import errno

SOCKET_TIMEOUT_S = 0.05  # continuation reads and sends (the first byte of a packet never waits)
RECV_TIMEOUT_S = 1.0  # longest wait for CONNACK / SUBACK, and for the rest of a packet
CONNECT_TIMEOUT_S = 1.0  # TCP (and TLS) connect
BUF_SIZE = 256  # preallocated read buffer: commands, requests and their topics fit

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
    """Wraps the port's socket pool so that every socket is a _Sock."""

    def __init__(self, pool):
        self._pool = pool
        self.SOCK_STREAM = pool.SOCK_STREAM
        self.AF_INET = getattr(pool, "AF_INET", 2)
        self._nodelay = None
        if hasattr(pool, "IPPROTO_TCP") and hasattr(pool, "TCP_NODELAY"):
            self._nodelay = (pool.IPPROTO_TCP, pool.TCP_NODELAY)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        return self._pool.getaddrinfo(host, port, family, type, proto, flags)

    def socket(self, family=2, type=1, proto=0):  # noqa: A002
        return _Sock(self._pool.socket(family, type, proto), self._nodelay)


def _again(e):
    """A read or send that timed out (no data yet), on CircuitPython, MicroPython and CPython."""
    return (e.args and e.args[0] in _AGAIN) or type(e).__name__ in (
        "SSLWantReadError", "SSLWantWriteError", "BlockingIOError", "timeout", "TimeoutError")


def _str(b):
    return b if isinstance(b, bytes) else (b.encode("utf-8") if isinstance(b, str) else bytes(b))


def _field(b):
    return bytes((len(b) >> 8, len(b) & 0xFF)) + b


def _packet(first, body):
    """Fixed header (type/flags byte, remaining length) + body."""
    n = len(body)
    out = bytearray((first,))
    while True:
        d = n & 0x7F
        n >>= 7
        out.append(d | 0x80 if n else d)
        if not n:
            break
    out += body
    return out


class MqttError(OSError):
    pass


class Client:
    """The unit's MQTT client. on_message(client, topic str, payload bytes); `header` is the fixed
    header of the packet being handled (bit 0: retained)."""

    def __init__(self, broker, port, client_id, keep_alive, socket_pool, username=None,
                 password=None, ssl_context=None, socket_timeout=SOCKET_TIMEOUT_S,
                 recv_timeout=RECV_TIMEOUT_S):
        self.broker = broker
        self.port = port
        self.client_id = client_id
        self.keep_alive = keep_alive
        self.username = username
        self.password = password
        self._pool = socket_pool
        self._ssl = ssl_context
        self._timeout = socket_timeout
        self._tries = max(1, int(recv_timeout / socket_timeout))
        self._will = None
        self._pid = 0
        self._buf = bytearray(BUF_SIZE)
        self._sock = None
        self._is_connected = False
        self.header = 0
        self.ping_pending = False
        self.on_message = None

    def will_set(self, topic, payload, retain=False, qos=0):
        self._will = (_str(topic), _str(payload), 0x20 if retain else 0, qos)

    # --- socket ------------------------------------------------------------------------------------
    def _send(self, data):
        mv = memoryview(data)
        tries = self._tries
        while len(mv):
            try:
                n = self._sock.send(mv)
            except OSError as e:
                if not _again(e) or tries <= 0:
                    raise
                tries -= 1
                continue
            if n is None:  # some ports return None for "all of it"
                return
            mv = mv[n:]

    def _recv(self, buf, n):
        """Exactly n bytes into buf[:n]; waits at most recv_timeout for them."""
        mv = memoryview(buf)
        got = 0
        tries = self._tries
        sock = self._sock
        while got < n:
            try:
                got += sock.recv_into(mv[got:n], n - got)
            except OSError as e:
                if not _again(e) or tries <= 0:
                    raise
                tries -= 1
        return buf

    def _byte(self):
        return self._recv(self._buf, 1)[0]

    def _close_socket(self):
        s = self._sock
        self._sock = None
        self._is_connected = False
        if s is not None:
            s.close()

    # --- packets -----------------------------------------------------------------------------------
    def connect(self, clean_session=True):
        """TCP (+TLS), CONNECT, CONNACK (the code is in dinamics.mqtt_connect: connect time only)."""
        from dinamics import mqtt_connect

        mqtt_connect.connect(self, clean_session)

    def subscribe(self, topics):
        """topics: [(topic, qos), …] in one SUBSCRIBE; handles what arrives until the SUBACK."""
        from dinamics import mqtt_connect

        mqtt_connect.subscribe(self, topics)

    def publish(self, topic, payload, retain=False, qos=0):
        body = _field(_str(topic))
        if qos:
            pid = self._next_pid()
            body += bytes((pid >> 8, pid & 0xFF))
        self._send(_packet(0x30 | (qos << 1) | (1 if retain else 0), body + _str(payload)))

    def ping(self):
        """PINGREQ without waiting for PINGRESP (the session times it on its own clock)."""
        self._send(b"\xc0\x00")
        self.ping_pending = True

    def disconnect(self):
        try:
            self._send(b"\xe0\x00")
        finally:
            self._close_socket()

    def poll(self, max_packets):
        """Handle at most max_packets packets that have begun to arrive; nothing else waits."""
        n = 0
        while n < max_packets and self._sock is not None and self._sock.ready():
            self._handle()
            n += 1
        return n

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def _fixed(self):
        """-> (packet type byte & 0xF0, remaining length); self.header = the whole first byte."""
        h = self._byte()
        self.header = h
        n = 0
        shift = 0
        while True:
            b = self._byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return h & 0xF0, n
            shift += 7
            if shift > 21:
                raise MqttError("bad remaining length")

    def _handle(self):
        """Read one packet and act on it. -> its type (0x30 PUBLISH, 0xD0 PINGRESP, …)."""
        op, n = self._fixed()
        buf = self._buf if n <= len(self._buf) else bytearray(n)
        self._recv(buf, n)
        if op == 0x30:
            tl = (buf[0] << 8) | buf[1]
            i = 2 + tl
            qos = (self.header >> 1) & 3
            if qos:
                self._send(bytes((0x40 if qos == 1 else 0x50, 2, buf[i], buf[i + 1])))
                i += 2
            try:
                topic = str(buf[2:2 + tl], "utf-8")
            except UnicodeError:
                return op  # not a topic of ours
            if self.on_message is not None:
                self.on_message(self, topic, bytes(buf[i:n]))
        elif op == 0xD0:
            self.ping_pending = False
        return op


def client_class():
    return Client
