"""web_guard: the socket pool the web actor gives adafruit_httpserver, so the library never waits
on a client (docs/web.md "Guarding the library").

adafruit_httpserver's `poll()` accepts a client and then reads it with a blocking timeout (1 s by
default) until the headers and the body are in: a client that sends nothing stalls a pass for
the timeout, a slowloris client (a byte now and then) holds it for ever, and a client that
connects and closes makes the header loop spin for ever (recv returns 0 and nothing ends the
loop). It also reads any body into RAM and busy-waits while a slow peer drains a response.

So the library never sees a real client socket. This pool hands it a listening socket whose
`accept()` returns only requests already read in full, by `pump()`, which the web actor calls
every pass and which never blocks:
  - while no client is connected, accept() is tried every `accept_ms` (100) only: on a board a
    refused accept raises, i.e. allocates; a new client waits at most that long;
  - at most `max_conns` client sockets at once (the board has 8 in all; MQTT needs one); more
    clients wait in the listen backlog;
  - each client is read without blocking into a buffer of at most `head_max` + `body_max` bytes;
    headers too long: 431; a Content-Length over `body_max`: 413; a request line that is not
    `METHOD /path HTTP/1.x`: 400; all answered by the guard, the library never runs;
  - a client that closes early, or sends nothing, is dropped; a request not complete within
    `request_ms` of the accept gets 408 (nothing, if it sent nothing) and is closed;
  - what the library sends goes out without blocking: what the peer does not take at once is
    kept (at most `out_max` bytes per client) and sent by later pumps; a peer that does not drain
    it within `send_ms` is dropped.
A handler may `hold` a request: the library's close() is then ignored and the actor answers
later (a reply from another actor), by sending a Response itself and calling `release`.
"""

import errno

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

from adafruit_ticks import ticks_add, ticks_less

_EAGAIN = errno.EAGAIN
_READING = const(0)
_READY = const(1)  # complete, waiting for (or in) the library
_CLOSING = const(2)  # the library closed it: send what is left, then close
_METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
_REASON = {400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large",
           431: "Request Header Fields Too Large"}


def request_problem(head):
    """The request line and headers (bytes up to the blank line) -> (status, content length):
    status 0 when the guard lets the library have it, else 400. What the library can parse: a
    `METHOD /path HTTP/1.x` line, at least one header (HTTP/1.1 needs Host), every header
    `Name: value`, printable ASCII only (it decodes UTF-8 and splits on other line breaks)."""
    for c in head:
        if (c < 32 and c not in (9, 10, 13)) or c > 126:
            return 400, 0
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if (len(parts) != 3 or parts[0] not in _METHODS or not parts[1].startswith(b"/")
            or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or len(lines) < 2):
        return 400, 0
    length = 0
    for h in lines[1:]:
        k = h.find(b": ")
        if k <= 0 or b"\n" in h or b"\t" in h[:k] or b" " in h[:k]:
            return 400, 0
        name = h[:k].lower()
        if name == b"content-length":
            v = h[k + 2:].strip()
            if not v or len(v) > 9 or v.strip(b"0123456789"):
                return 400, 0
            length = int(v)
        elif name == b"transfer-encoding":
            return 400, 0  # chunked bodies: not taken
    return 0, length


class _Conn:
    """One client: read by the guard, then, to the library, a socket that has it all."""

    def __init__(self, guard, sock, addr, now):
        self.guard = guard
        self.sock = sock
        self.addr = addr
        self.state = _READING
        self.buf = bytearray(guard.head_max)
        self.n = 0
        self.need = 0  # whole request length once the headers are in
        self.data = None  # the request, for the library's recv_into
        self.pos = 0
        self.out = []
        self.out_len = 0
        self.hold = False
        self.deadline = ticks_add(now, guard.request_ms)

    # --- what the library calls ----------------------------------------------------------------
    def settimeout(self, t):
        pass

    def setblocking(self, flag):
        pass

    def recv_into(self, buffer, nbytes=0):
        data = self.data
        left = len(data) - self.pos if data is not None else 0
        if left <= 0:
            raise OSError(errno.ETIMEDOUT, "timed out")  # the library's loops end on a timeout
        k = min(left, nbytes or len(buffer), len(buffer))
        buffer[:k] = data[self.pos:self.pos + k]
        self.pos += k
        return k

    def send(self, data):
        n = len(data)
        if self.sock is None:
            raise OSError(errno.ECONNRESET, "reset")  # the library stops sending on a reset
        if not self.out:
            try:
                k = self.sock.send(data)
            except OSError as e:
                if _errno(e) != _EAGAIN:
                    self.guard._drop(self)
                    raise OSError(errno.ECONNRESET, "reset")
                k = 0
            if k >= n:
                return n
            data = memoryview(data)[k:]
        if self.out_len + len(data) > self.guard.out_max:
            self.guard.stats["too_slow"] += 1
            self.guard._drop(self)
            raise OSError(errno.ECONNRESET, "reset")
        self.out.append(bytes(data))
        self.out_len += len(data)
        return n

    def close(self):
        if self.hold or self.sock is None:
            return
        if self.state != _CLOSING:
            self.state = _CLOSING
            self.data = None
            self.deadline = ticks_add(self.guard.now(), self.guard.send_ms)
        self._flush()

    # --- the guard's side ----------------------------------------------------------------------
    def _flush(self):
        while self.out and self.sock is not None:
            chunk = self.out[0]
            try:
                k = self.sock.send(chunk)
            except OSError as e:
                if _errno(e) == _EAGAIN:
                    return
                self.guard._drop(self)
                return
            self.out_len -= k
            if k < len(chunk):
                self.out[0] = chunk[k:]
                return
            self.out.pop(0)
        if self.state == _CLOSING and not self.out:
            self.guard._drop(self)

    def _read(self):
        g = self.guard
        room = len(self.buf) - self.n
        if room <= 0:
            return
        try:
            k = self.sock.recv_into(memoryview(self.buf)[self.n:], room)
        except OSError as e:
            if _errno(e) != _EAGAIN:
                g._drop(self)
            return
        if not k:
            g.stats["closed_early"] += 1
            g._drop(self)  # connect-and-close, or a client that gave up
            return
        self.n += k
        if not self.need:
            view = bytes(self.buf[:self.n])
            end = view.find(b"\r\n\r\n")
            if end < 0:
                if self.n >= g.head_max:
                    self._refuse(431)
                return
            status, length = request_problem(view[:end])
            if status:
                self._refuse(status)
                return
            if length > g.body_max:
                self._refuse(413)
                return
            self.need = end + 4 + length
            if self.need > len(self.buf):
                buf = bytearray(self.need)
                buf[:self.n] = self.buf[:self.n]
                self.buf = buf
        if self.n >= self.need:
            self.data = bytes(self.buf[:self.need])
            self.buf = None
            self.state = _READY
            g.ready.append(self)

    def _refuse(self, status):
        g = self.guard
        g.stats["refused"] += 1
        self.state = _CLOSING
        self.buf = None
        self.deadline = ticks_add(g.now(), g.send_ms)
        body = _REASON[status]
        self.send(("HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
            status, body, len(body), body)).encode())
        self._flush()


def _errno(e):
    return e.errno if getattr(e, "errno", None) is not None else (e.args[0] if e.args else None)


class _Listener:
    """The listening socket as the library sees it: accept() gives complete requests only."""

    def __init__(self, guard, sock):
        self.guard = guard
        self.sock = sock

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def bind(self, addr):
        self.sock.bind(addr)

    def listen(self, backlog):
        self.sock.listen(backlog)

    def setblocking(self, flag):
        self.sock.setblocking(False)

    def getsockname(self):
        return self.sock.getsockname()

    def accept(self):
        ready = self.guard.ready
        if ready:
            c = ready.pop(0)
            return c, c.addr
        raise OSError(_EAGAIN, "no request")

    def close(self):
        self.guard.close_all()
        self.sock.close()


class GuardPool:
    """A socket pool for adafruit_httpserver.Server: `pool` is the real one (socketpool on a
    board, the stdlib `socket` module on a PC), `now()` the scheduler's ms ticks."""

    def __init__(self, pool, now, max_conns=3, head_max=2048, body_max=1024, request_ms=3000,
                 send_ms=5000, out_max=20480, accept_ms=100):
        self.pool = pool
        self.now = now
        self.AF_INET = pool.AF_INET
        self.SOCK_STREAM = pool.SOCK_STREAM
        self.SOL_SOCKET = getattr(pool, "SOL_SOCKET", 1)
        self.SO_REUSEADDR = getattr(pool, "SO_REUSEADDR", 2)
        self.max_conns = max_conns
        self.head_max = head_max
        self.body_max = body_max
        self.request_ms = request_ms
        self.send_ms = send_ms
        self.out_max = out_max
        self.accept_ms = accept_ms
        self._next_accept = now()
        self.conns = []
        self.ready = []
        self.listener = None
        self.stats = {"accepted": 0, "closed_early": 0, "timeouts": 0, "refused": 0, "too_slow": 0}

    def getaddrinfo(self, *args, **kwargs):
        return self.pool.getaddrinfo(*args, **kwargs)

    def socket(self, family=None, type=None):  # noqa: A002 - the pool's own signature
        self.listener = _Listener(self, self.pool.socket(family, type))
        return self.listener

    def pump(self):
        """Accept, read, time out and flush: no call here waits."""
        listener = self.listener
        if listener is None:
            return
        now = self.now()
        conns = self.conns
        if not conns and ticks_less(now, self._next_accept):
            return  # idle: look for a client every accept_ms only (a refused accept allocates)
        while len(conns) < self.max_conns:
            try:
                sock, addr = listener.sock.accept()
            except OSError:
                self._next_accept = ticks_add(now, self.accept_ms)
                break
            try:
                sock.setblocking(False)
            except OSError:
                sock.close()
                continue
            self.stats["accepted"] += 1
            conns.append(_Conn(self, sock, addr, now))
        if not conns:
            return
        for c in tuple(conns):
            if c.state == _READING:
                c._read()
            elif c.out:
                c._flush()
            if c.sock is None or c.hold or not ticks_less(c.deadline, now):
                continue
            if c.state == _READING:
                self.stats["timeouts"] += 1
                if c.n:
                    c._refuse(408)  # it gets its send_ms to go out
                    continue
            self._drop(c)

    def hold(self, conn):
        conn.hold = True

    def release(self, conn):
        """A held request was answered (or abandoned): close it once its bytes are out."""
        conn.hold = False
        conn.close()

    def _drop(self, c):
        if c.sock is not None:
            try:
                c.sock.close()
            except OSError:
                pass
            c.sock = None
        c.out = []
        c.out_len = 0
        c.buf = c.data = None
        if c in self.conns:
            self.conns.remove(c)
        if c in self.ready:
            self.ready.remove(c)

    def close_all(self):
        for c in tuple(self.conns):
            c.hold = False
            self._drop(c)

    def busy(self):
        return len(self.conns)
