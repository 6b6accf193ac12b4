"""Runs INSIDE the MicroPython unix VM (tests/test_web.py): the web actor, web_guard, web_routes
and adafruit_httpserver on MicroPython, with in-memory sockets (no network): a login, a status
read, a setting refused and one applied through the settings actor, a connect-and-close, an
oversized body. Prints one line "WEB {json}"."""
import errno
import json
import sys


class Clock:
    def __init__(self):
        self.t = 0

    def now(self):
        return self.t

    def idle(self, ms):
        pass

    def epoch(self):
        return 0


class Client:
    """One accepted connection: `data` is what the client sent (then it closes its side)."""

    def __init__(self, data):
        self.data = data
        self.out = b""
        self.closed = False

    def setblocking(self, flag):
        pass

    def recv_into(self, buf, n=0):
        if not self.data:
            return 0
        k = min(len(self.data), n or len(buf), len(buf))
        buf[:k] = self.data[:k]
        self.data = self.data[k:]
        return k

    def send(self, b):
        self.out += bytes(b)
        return len(b)

    def close(self):
        self.closed = True


class Listener:
    def __init__(self):
        self.pending = []

    def setsockopt(self, *a):
        pass

    def bind(self, a):
        pass

    def listen(self, n):
        pass

    def setblocking(self, f):
        pass

    def accept(self):
        if not self.pending:
            raise OSError(errno.EAGAIN)
        return self.pending.pop(0), ("10.0.0.9", 5000)

    def close(self):
        pass


class Pool:
    AF_INET = 2
    SOCK_STREAM = 1

    def __init__(self):
        self.listener = Listener()

    def getaddrinfo(self, host, port, *a):
        return [(2, 1, 6, "", (host, port))]

    def socket(self, family=2, type=1):  # noqa: A002
        return self.listener


class Port:
    def __init__(self):
        self.socket_pool = Pool()
        self.web_port = 8080
        self.web_host = "0.0.0.0"
        self.web_password = "vm-password"
        self.www_root = sys.argv[1] if len(sys.argv) > 1 else "/www"

    def console(self, level, text):
        print(text)

    def ip(self):
        return ""

    def fatal(self, actor):
        print("FATAL", actor.name)


# The drive's host shims (.vm: hil/vm/shims) are first on MICROPYPATH: CircuitPython's re (match.groups())
# and ssl (SSLError), which adafruit_httpserver uses, come from there.
from dinamics.mailbox import Scheduler  # noqa: E402
from dinamics.settings import Settings  # noqa: E402
from actors.settings_actor import SettingsActor  # noqa: E402
from actors.web import Web  # noqa: E402


class Store:
    corrupt = ()
    slot = None

    def save(self, values):
        pass


port = Port()
clock = Clock()
sched = Scheduler(clock, console=port.console, on_fatal=port.fatal)
settings = Settings()
sched.add(SettingsActor(settings, Store()))
web = sched.add(Web(settings, port))


def ask(raw):
    c = Client(raw)
    port.socket_pool.listener.pending.append(c)
    for _ in range(6):
        clock.t += 25
        sched.run_once()
    return c


out = {}
r = ask(b"POST /api/login HTTP/1.1\r\nHost: u\r\nContent-Length: 11\r\n\r\nvm-password")
out["login"] = r.out[:12].decode()
head, body = r.out.split(b"\r\n\r\n", 1)
cookie = [h.split(b": ", 1)[1].split(b";")[0] for h in head.split(b"\r\n") if h.lower().startswith(b"set-cookie")][0]
csrf = json.loads(body)["csrf"].encode()
r = ask(b"GET /api/status HTTP/1.1\r\nHost: u\r\nCookie: " + cookie + b"\r\n\r\n")
out["status"] = r.out[:12].decode()
out["status_body"] = json.loads(r.out.split(b"\r\n\r\n", 1)[1])["breaker"]
post = b"POST /api/set_breaker HTTP/1.1\r\nHost: u\r\nCookie: " + cookie + b"\r\nX-CSRF: " + csrf
r = ask(post + b"\r\nContent-Length: 3\r\n\r\n272")
out["refused"] = r.out.split(b"\r\n\r\n", 1)[1].decode()
r = ask(post + b"\r\nContent-Length: 2\r\n\r\n20")
out["applied"] = r.out.split(b"\r\n\r\n", 1)[1].decode()
out["breaker"] = settings.get("breaker")
r = ask(b"")  # connect and close
out["scan_closed"] = r.closed
r = ask(b"POST /api/set_breaker HTTP/1.1\r\nHost: u\r\nContent-Length: 9999\r\n\r\n")
out["big"] = r.out[:12].decode()
r = ask(b"GET / HTTP/1.1\r\nHost: u\r\n\r\n")
out["page"] = r.out[:12].decode()
out["page_gzip"] = b"content-encoding: gzip" in r.out.lower()
# idle with the server listening: 1000 passes, 1 ms apart (the guard tries accept every 20 ms)
import gc  # noqa: E402

for _ in range(50):
    clock.t += 1
    sched.run_once()
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for _ in range(1000):
    clock.t += 1
    sched.run_once()
out["idle_alloc_per_pass"] = (gc.mem_alloc() - a0) / 1000
gc.enable()
out["crashes"] = web.crashes
out["errors"] = web.stats["errors"]
print("WEB " + json.dumps(out))
