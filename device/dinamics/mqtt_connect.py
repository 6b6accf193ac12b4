"""Connect-time code of the MQTT session and client: one attempt (client, CONNECT/CONNACK,
SUBSCRIBE/SUBACK, back-off on failure). Not resident: mqtt_session imports it for each attempt
and drops it from sys.modules after (heap, docs/heap.md), like ha_discovery. Behaviour and
texts are those of Session.connect / Client.connect / Client.subscribe, which call in here."""

import time

from dinamics import messages as m
from dinamics import mqtt_session as ms
from dinamics.mqtt_client import MqttError, _field, _packet, _str


def attempt(session, cfg, prefix, topics):
    """Session.connect past its checks: success -> session.up(); failure -> back-off."""
    sn, host, port, user, password, tls = cfg
    stats = session.stats
    t0 = time.monotonic_ns()
    try:
        ctx = None
        if tls:
            ctx = getattr(session.port, "ssl_context", None)
            if ctx is None:
                raise ValueError("TLS needs an ssl context on this port")
        c = session._client_cls(
            host, port, "Dinamics-" + sn, ms.KEEPALIVE_S, session._pool, username=user or None,
            password=(password or "") if user else None, ssl_context=ctx)
        c.will_set(prefix + "availability", "offline", True, 0)
        c.on_message = session._client_message
        session.client = c
        c.connect(clean_session=True)
        # Retained set_*/commands may arrive inside subscribe(); on_message handles them there.
        c.subscribe([(prefix + t, 0) for t in topics])
    except Exception as e:  # noqa: BLE001 - any failure: close, back off, try again
        session.connected = False
        session.close_client()
        stats["connect_failures"] += 1
        wait = ms.jitter(session._backoff)
        session._backoff = min(session._backoff * 2, ms.BACKOFF_MAX_MS)
        level = m.DEBUG if session._failing else m.WARNING
        session._failing = True
        session.owner.log(level, "broker %s:%d unavailable (%s); retry in %d ms" % (host, port, ms.why(e), wait))
        session.schedule(wait)
        return
    finally:
        took = (time.monotonic_ns() - t0) // 1000000
        if took > stats["worst_connect_ms"]:
            stats["worst_connect_ms"] = took
    session._failing = False
    session._backoff = ms.BACKOFF_FIRST_MS
    session.owner.log(m.INFO, "connected to %s:%d as %s" % (host, port, prefix[:-1]))
    session.up()


def connect(client, clean_session):
    """Client.connect: TCP (+TLS), CONNECT, CONNACK."""
    self = client
    ai = self._pool.getaddrinfo(self.broker, self.port, 0, self._pool.SOCK_STREAM)[0]
    addr = ai[-1]
    sock = self._pool.socket(ai[0], self._pool.SOCK_STREAM)
    if self._ssl is not None:
        try:
            sock.raw = self._ssl.wrap_socket(sock.raw, server_hostname=self.broker)
        except Exception:
            sock.close()
            raise
    self._sock = sock
    try:
        sock.settimeout(self._timeout)
        sock.connect(addr)
        flags = 0x02 if clean_session else 0
        body = bytearray(b"\x00\x04MQTT\x04\x00")
        body += bytes((self.keep_alive >> 8, self.keep_alive & 0xFF))
        body += _field(_str(self.client_id))
        if self._will is not None:
            t, p, r, q = self._will
            flags |= 0x04 | r | (q << 3)
            body += _field(t) + _field(p)
        if self.username is not None:
            flags |= 0x80
            body += _field(_str(self.username))
            if self.password is not None:
                flags |= 0x40
                body += _field(_str(self.password))
        body[7] = flags
        self._send(_packet(0x10, body))
        op, n = self._fixed()
        if op != 0x20 or n != 2:
            raise MqttError("no CONNACK (0x%02x)" % op)
        rc = self._recv(self._buf, 2)[1]
        if rc:
            raise MqttError("connection refused (%d)" % rc)
    except Exception:
        self._close_socket()
        raise
    self._is_connected = True


def subscribe(client, topics):
    """Client.subscribe: one SUBSCRIBE; handles what arrives until the SUBACK."""
    self = client
    pid = self._next_pid()
    body = bytearray((pid >> 8, pid & 0xFF))
    for t, q in topics:
        body += _field(_str(t))
        body.append(q)
    self._send(_packet(0x82, body))
    for _ in range(64):  # retained messages may come before the SUBACK
        op = self._handle()
        if op == 0x90:
            if self._buf[2] == 0x80:
                raise MqttError("subscription refused")
            return
    raise MqttError("no SUBACK")
