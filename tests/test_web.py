"""The web actor without a browser: the guard around adafruit_httpserver (connect-and-close, silent
and slowloris clients, 413/431/400, the socket limit), a port scan and slowloris while the
balancer reacts to a load step (no pass over 50 ms, the cut still goes out), 1 000 malformed
requests (no crash, no setting changed), the login's rate limit and the JSON API's auth/CSRF."""
import json
import os
import random
import socket
import time

import pytest

from web_fixtures import Running, http, wait_for

PW = "admin-pass-1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def unit():
    from hil.ev_model import EvModel
    from hil.house import HouseLoad
    from hil.world import World

    w = World(virtual=True, house=HouseLoad(base=(3.0, 1.0, 1.0)),
              port_kwargs={"web_port": 0, "web_password": PW})
    for name, value in (("breaker", 25), ("cte", 123), ("c_limit", 32), ("dinamics", 1)):
        w.set(name, value)
    w.run_until(lambda: w.app.rapi.up, 8000)
    w.emu.plug(EvModel(max_amps=32, phases=1, response_s=1.0))
    w.run_until(lambda: w.emu.state == 3, 20000)
    run = Running(w, step_ms=5)
    yield w, run, w.app.web.listening[1]
    run.close()
    w.close()


def login(port):
    out = http(port, b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(PW), PW.encode()))
    head, body = out.split(b"\r\n\r\n", 1)
    cookie = [h.split(b":", 1)[1].split(b";")[0].strip() for h in head.split(b"\r\n") if h.lower().startswith(b"set-cookie")][0]
    return cookie, json.loads(body)["csrf"].encode()


def status_of(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else None


def test_guard_answers_what_the_library_must_never_see(unit):
    w, run, port = unit
    assert status_of(http(port, b"GET /api/session HTTP/1.1\r\nHost: unit\r\n\r\n")) == 200
    big = b"POST /api/set_breaker HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"1" * 5000
    assert status_of(http(port, big)) == 413
    assert status_of(http(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 3000 + b"\r\n\r\n")) == 431
    assert status_of(http(port, b"BREW /pot HTTP/1.1\r\nHost: unit\r\n\r\n")) == 400
    assert status_of(http(port, b"GET / HTTP/1.1\r\n\r\n")) == 400  # no Host: 400, as HTTP/1.1 says
    assert status_of(http(port, b"GET /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n")) == 400
    # a client that sends part of a request and then nothing: 408 once its time is up
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/sess")
    s.settimeout(10)
    assert status_of(s.recv(200)) == 408
    s.close()
    # files outside the routes are not served (settings.toml, the code)
    assert status_of(http(port, b"GET /settings.toml HTTP/1.1\r\nHost: u\r\n\r\n")) == 404
    assert status_of(http(port, b"GET /../code.py HTTP/1.1\r\nHost: u\r\n\r\n")) in (403, 404)


def test_at_most_three_clients_and_the_fourth_is_served_when_one_times_out(unit):
    w, run, port = unit
    guard = w.app.web.guard
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    assert wait_for(lambda: len(guard.conns) == 3, 5)
    most = [0]

    def watch(w):
        most[0] = max(most[0], len(w.app.web.guard.conns))

    first_timeout = run.call(lambda w: min(c.deadline for c in w.app.web.guard.conns))
    got = http(port, b"GET /api/session HTTP/1.1\r\nHost: u\r\n\r\n", timeout=20)  # waits in the backlog
    t1 = run.call(lambda w: w.sched.clock.now())  # scheduler ticks (they wrap: ticks_diff)
    run.call(watch)
    assert status_of(got) == 200
    from adafruit_ticks import ticks_diff

    late = ticks_diff(t1, first_timeout)
    assert late >= 0, "served %d ms before a silent client timed out" % -late
    assert most[0] <= 3
    for s in silent:
        s.close()


def test_port_scan_and_slowloris_while_the_balancer_cuts(unit):
    w, run, port = unit
    guard = w.app.web.guard
    pilot = run.call(lambda w: w.emu.current_capacity)
    run.call(lambda w: setattr(w.sched, "worst_pass_ms", 0))
    slow = []
    for _ in range(2):  # two slowloris clients: a header byte now and then
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\n")
        slow.append(s)
    run.call(lambda w: w.house.set(w.ms(), (19.0, 1.0, 1.0)))
    closed_before = guard.stats["closed_early"]
    for _ in range(200):  # port scan: connect, close
        socket.create_connection(("127.0.0.1", port)).close()
        for s in slow:
            try:
                s.send(b"X")
            except OSError:
                pass
    assert wait_for(lambda: guard.stats["closed_early"] >= closed_before + 150, 10)
    assert wait_for(lambda: w.emu.current_capacity < pilot, 10), "no $SC cut under web load"
    for s in slow:
        s.close()
    # still serving
    assert wait_for(lambda: status_of(http(port, b"GET /api/session HTTP/1.1\r\nHost: unit\r\n\r\n")) == 200, 10)
    worst = run.call(lambda w: w.sched.worst_pass_ms)
    assert worst <= 50, "a pass took %d ms under a port scan + slowloris" % worst
    assert w.app.web.crashes == 0


def _malformed(rng, cookie, csrf):
    pick = rng.randrange(14)
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if pick == 0:
        return junk
    if pick == 1:
        return b"GET " + junk + b" HTTP/1.1\r\n\r\n"
    if pick == 2:
        return b"POST /api/set_breaker HTTP/1.1\r\nContent-Length: 2\r\n\r\n20"  # no login
    if pick == 3:
        return (b"POST /api/set_breaker HTTP/1.1\r\nCookie: dsid=" + junk.hex().encode()[:40]
                + b"\r\nContent-Length: 2\r\n\r\n20")
    if pick == 4:
        return (b"POST /api/set_c_limit HTTP/1.1\r\nCookie: dsid=" + cookie.split(b"=", 1)[1]
                + b"\r\nX-CSRF: wrong\r\nContent-Length: 2\r\n\r\n10")  # CSRF missing
    if pick == 5:
        return b"GET /api/status HTTP/1.1\r\nContent-Length: " + str(rng.randrange(10, 900)).encode() + b"\r\n\r\nab"
    if pick == 6:
        return b"GET /" + b"%" * rng.randrange(1, 50) + b"?a=%zz&&=&b HTTP/1.1\r\n\r\n"
    if pick == 7:
        return b"GET / HTTP/1.1\r\n" + junk.replace(b"\r\n", b"") + b"\r\n\r\n"
    if pick == 8:
        return b"POST /api/login HTTP/1.1\r\nHost: u\r\nContent-Length: 3\r\n\r\n" + junk[:3]
    if pick == 9:
        return b"GET /api/session HTTP/1.0\r\nCookie: " + b";=;" * rng.randrange(1, 100) + b"\r\n\r\n"
    if pick == 10:
        return b"POST /api/" + junk.hex().encode()[:30] + b" HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    if pick == 11:
        return b"GET /api/status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    if pick == 12:
        return b"\r\n\r\n"
    return b"PUT /api/settings HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=\r\n\r\n"


def test_a_thousand_malformed_requests_change_nothing(unit):
    w, run, port = unit
    cookie, csrf = login(port)
    before = run.call(lambda w: dict(w.app.settings.values))
    rng = random.Random(7)
    codes = {}
    t0 = time.monotonic()
    for _ in range(1000):
        code = status_of(http(port, _malformed(rng, cookie, csrf)))
        codes[code] = codes.get(code, 0) + 1
    after = run.call(lambda w: dict(w.app.settings.values))
    assert after == before
    assert w.app.web.crashes == 0 and not w.port.fatal_actors
    assert w.app.web.stats["errors"] == 0  # the library never raised: the guard or a route answered
    assert codes.get(200, 0) < 200 and codes.get(400, 0) > 100, codes
    assert status_of(http(port, b"GET /api/session HTTP/1.1\r\nHost: unit\r\n\r\n")) == 200
    print("1000 malformed requests in %.1f s: %s; web %s" % (time.monotonic() - t0, codes, w.app.web.stats))


def test_api_auth_csrf_and_the_login_rate_limit(unit):
    w, run, port = unit
    run.call(lambda w: w.app.web.__dict__.update(fails=0, locked_until=None))  # the fuzz above failed logins
    cookie, csrf = login(port)
    post = b"POST /api/set_c_limit HTTP/1.1\r\nHost: u\r\nCookie: %s\r\nX-CSRF: %s\r\nContent-Length: 2\r\n\r\n%s"
    r = http(port, post % (cookie, csrf, b"18"))
    assert status_of(r) == 200 and json.loads(r.split(b"\r\n\r\n", 1)[1]) == {"ok": True, "value": 18}
    assert run.call(lambda w: w.app.settings.get("c_limit")) == 18
    r = http(port, post % (cookie, csrf, b"99"))
    assert status_of(r) == 400 and b"out of range 6-80" in r
    r = http(port, b"GET /api/settings HTTP/1.1\r\nHost: u\r\nCookie: %s\r\n\r\n" % cookie)
    rows = {x["name"]: x for x in json.loads(r.split(b"\r\n\r\n", 1)[1])}
    assert rows["mqtt_pass"]["value"] == "not set" and "web_pass" not in rows
    assert rows["breaker"]["topic"] == "set_breaker" and rows["c_limit"]["group"] == "charging"
    # wrong passwords: locked out after three, even for the right one, for a while
    bad = b"POST /api/login HTTP/1.1\r\nHost: u\r\nContent-Length: 5\r\n\r\nwrong"
    codes = [status_of(http(port, bad)) for _ in range(4)]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429
    good = b"POST /api/login HTTP/1.1\r\nHost: u\r\nContent-Length: %d\r\n\r\n%s" % (len(PW), PW.encode())
    assert status_of(http(port, good)) == 429


def test_constant_time_compare():
    from actors.web_auth import same

    assert same("abc", "abc") and not same("abc", "abd") and not same("abc", "ab")
    assert not same("", "x") and same("", "")


def test_generated_web_files_are_current():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, os.path.join(root, "tools", "gen_www.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + " (run: .venv/bin/python tools/gen_www.py --write)"
    out = subprocess.run([sys.executable, os.path.join(root, "tools", "gen_web_api.py")], capture_output=True,
                         text=True, check=True).stdout
    assert out in open(os.path.join(root, "docs", "web.md")).read(), "run: .venv/bin/python tools/gen_web_api.py --write"


def test_the_web_path_on_micropython(tmp_path):
    """web actor + web_guard + web_routes + adafruit_httpserver on the MicroPython unix VM, with
    in-memory sockets (tests/vm_web/web_probe.py): login, status, a refusal and a change through
    the settings actor, connect-and-close, 413, the gzip'd page."""
    import os
    import shutil
    import subprocess

    from hil import vm

    if vm.interpreter() is None:
        pytest.skip("no micropython interpreter (scripts/setup)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    drive = str(tmp_path / "drive")
    vm.build_drive(drive)
    shutil.copytree(os.path.join(root, "device", "www"), os.path.join(drive, "www"))
    env = {"PATH": os.environ.get("PATH", ""), "MICROPYPATH": ":".join(
        [os.path.join(drive, ".vm"), drive, os.path.join(drive, "lib")])}
    r = subprocess.run([vm.interpreter(), os.path.join(root, "tests", "vm_web", "web_probe.py"),
                        os.path.join(drive, "www")], capture_output=True, text=True, timeout=60,
                       env=env, cwd=drive)
    lines = [x for x in r.stdout.splitlines() if x.startswith("WEB ")]
    assert lines, r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads(lines[0][4:])
    assert out["login"] == out["status"] == out["page"] == "HTTP/1.1 200" and out["page_gzip"]
    assert json.loads(out["refused"])["error"] == "out of range 6-100"
    assert json.loads(out["applied"]) == {"ok": True, "value": 20} and out["breaker"] == 20
    assert out["scan_closed"] and out["big"] == "HTTP/1.1 413"
    assert out["crashes"] == 0 and out["errors"] == 0
    # listening and idle: only the accept tried every 100 ms allocates (docs/web.md)
    assert out["idle_alloc_per_pass"] < 3, out["idle_alloc_per_pass"]


def test_the_web_workflow_keeps_port_80():
    from actors.web import WORKFLOW_MOVE, workflow_on_80

    env = {"CIRCUITPY_WEB_API_PASSWORD": "pw"}
    assert workflow_on_80(env.get) and WORKFLOW_MOVE != 80
    assert not workflow_on_80({}.get)
    assert not workflow_on_80(dict(env, CIRCUITPY_WEB_API_PORT=8000).get)
    assert workflow_on_80(dict(env, CIRCUITPY_WEB_API_PORT=80).get)


class _Peer:
    """A client socket as the guard sees it: sends `data`, then EOF; takes `take` bytes per send
    (then EAGAIN until the next pump), or raises `broken` on send."""

    def __init__(self, data, take=None, broken=None):
        self.data, self.take, self.broken = data, take, broken
        self.out, self.closed, self.budget = b"", False, take

    def setblocking(self, flag):
        pass

    def recv_into(self, buf, n=0):
        k = min(len(self.data), n or len(buf))
        buf[:k] = self.data[:k]
        self.data = self.data[k:]
        return k

    def send(self, b):
        import errno

        if self.broken is not None:
            raise self.broken
        if self.take is not None:
            if self.budget <= 0:
                raise BlockingIOError(errno.EAGAIN, "again")
            b = bytes(b)[:self.budget]
            self.budget -= len(b)
        self.out += bytes(b)
        return len(b)

    def close(self):
        self.closed = True


def _fake_web():
    import errno

    from actors.settings_actor import SettingsActor
    from actors.web import Web
    from dinamics.mailbox import Scheduler
    from dinamics.settings import Settings
    from hil.clock import VirtualClock

    class Listener:
        pending = []

        def setsockopt(self, *a):
            pass

        bind = listen = setblocking = setsockopt

        def accept(self):
            if not self.pending:
                raise BlockingIOError(errno.EAGAIN, "again")
            return self.pending.pop(0), ("10.0.0.2", 4000)

        def close(self):
            pass

    class Pool:
        AF_INET, SOCK_STREAM = 2, 1
        listener = Listener()

        def getaddrinfo(self, host, port, *a):
            return [(2, 1, 6, "", (host, port))]

        def socket(self, *a):
            return self.listener

    class Port:
        socket_pool = Pool()
        web_port, web_host, web_password = 8080, "0.0.0.0", "fake-password"
        www_root = os.path.join(ROOT, "device", "www")

        def ip(self):
            return ""

    class Store:
        corrupt, slot = (), None

        def save(self, v):
            pass

    clock = VirtualClock()
    sched = Scheduler(clock)
    settings = Settings()
    sched.add(SettingsActor(settings, Store()))
    web = sched.add(Web(settings, Port()))
    Listener.pending = []

    def serve(peer, passes=40):
        Listener.pending.append(peer)
        for _ in range(passes):
            clock.advance(25)
            sched.run_once()
            if peer.take is not None:
                peer.budget = peer.take  # the peer drains a little between passes
        return peer
    return web, serve


def test_a_slow_reader_gets_the_whole_page_over_several_passes_and_a_gone_one_costs_nothing():
    web, serve = _fake_web()
    slow = serve(_Peer(b"GET / HTTP/1.1\r\nHost: u\r\n\r\n", take=200), passes=60)
    head, body = slow.out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and len(body) == int(
        [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
    assert slow.closed and not web.guard.conns
    gone = serve(_Peer(b"GET / HTTP/1.1\r\nHost: u\r\n\r\n", broken=BrokenPipeError(32, "broken pipe")))
    assert gone.closed and not web.guard.conns
    assert web.stats["errors"] == 0 and web.crashes == 0


def test_the_wifi_page_says_what_forget_will_do():
    """/api/wifi's `forget` (the WiFi page's text before the click) follows the wifi actor's rule
    (dinamics/wifi_book.py after_forget): on the stored network, nothing else naming it -> leave,
    then settings.toml's and the service network in order, else the setup AP; on a network
    settings.toml names, or not joined at all -> nothing changes now."""
    from actors.web import Web
    from dinamics.settings import Settings

    class Port:
        mac = b"\x01\x02\x03\x04\x05\x06"
        wifi_env = ("toml", "tomlpass1", None)

        def ip(self):
            return ""

    s = Settings()
    s.apply("wifi_ssid", "home")
    s.apply("wifi_service_ssid", "svc")
    web = Web(s, Port())
    web.net = ("192.168.1.20", "sta", "home", "")
    assert web.forget_plan() == {"on": "home", "leave": True, "next": ["toml", "svc"], "ap": "Dinamics-060504030201"}
    web.net = ("192.168.1.21", "sta", "toml", "")
    assert web.forget_plan()["leave"] is False
    web.net = ("192.168.4.1", "ap", "Dinamics-060504030201", "pw")
    assert web.forget_plan()["on"] == "" and not web.forget_plan()["leave"]
    Port.wifi_env = None
    s.apply("wifi_service_ssid", "")
    web.net = ("192.168.1.20", "sta", "home", "")
    assert web.forget_plan()["next"] == [] and web.forget_plan()["leave"]
