"""`python -m hil web-bench`: does the web UI cost the load management anything? The benchmark's
randomised load steps (hil.bench, virtual clock) run twice on a firmware WITH the web actor
listening (127.0.0.1, a free port): once with the web UI idle, once under web load from another
process (no GIL shared with the firmware): a port scan (connect and close, as fast as it goes),
two slowloris clients (a header byte every 200 ms, reconnecting when dropped) and a dashboard
(GET /api/status every 100 ms, logged in). Printed per run: step -> $SC p50/p99/max (virtual
time: the logic's reaction, which web traffic must not delay), the worst scheduler pass (real
time on this PC: what the web load costs a pass) and what the load did. The load stops by itself
after --max-s at the latest."""
import multiprocessing
import socket
import time

PASSWORD = "bench-password"


def add_parser(sub):
    p = sub.add_parser("web-bench", help="step -> $SC p99 and the worst pass, with and without web load")
    p.add_argument("--steps", type=int, default=25, help="load steps per episode (default 25)")
    p.add_argument("--episodes", default="b20-1ph,b25-3ph-house-1ph-car",
                   help="comma-separated hil.bench_steps episode names")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-s", type=float, default=300.0, help="the web load stops after this at the latest")
    return p


def _attack(port, stop, counts, max_s):
    """Runs in its own process until `stop` is set (or max_s)."""
    end = time.monotonic() + max_s
    addr = ("127.0.0.1", port)
    slow = []
    cookie = None
    next_dash = next_slow = 0.0
    scans = dash = dash_ok = 0
    while not stop.is_set() and time.monotonic() < end:
        now = time.monotonic()
        try:
            socket.create_connection(addr, timeout=1).close()
            scans += 1
        except OSError:
            pass
        if now >= next_slow:
            next_slow = now + 0.2
            while len(slow) < 2:
                try:
                    s = socket.create_connection(addr, timeout=1)
                    s.sendall(b"GET / HTTP/1.1\r\n")
                    slow.append(s)
                except OSError:
                    break
            for s in tuple(slow):
                try:
                    s.send(b"X")
                except OSError:
                    slow.remove(s)
                    s.close()
        if now >= next_dash:
            next_dash = now + 0.1
            try:
                if cookie is None:
                    r = _http(addr, b"POST /api/login HTTP/1.1\r\nHost: u\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(PASSWORD), PASSWORD.encode()))
                    for line in r.split(b"\r\n"):
                        if line.lower().startswith(b"set-cookie:"):
                            cookie = line.split(b":", 1)[1].split(b";")[0].strip()
                else:
                    r = _http(addr, b"GET /api/status HTTP/1.1\r\nHost: u\r\nCookie: " + cookie + b"\r\n\r\n")
                    dash += 1
                    dash_ok += r.startswith(b"HTTP/1.1 200")
            except OSError:
                pass
    for s in slow:
        s.close()
    counts[0], counts[1], counts[2] = scans, dash, dash_ok


def _http(addr, raw):
    s = socket.create_connection(addr, timeout=2)
    try:
        s.sendall(raw)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def _rig():
    from hil.rigs import WorldRig

    return WorldRig(port_kwargs={"web_port": 0, "web_password": PASSWORD})


def _loaded(max_s):
    def during(rig):
        port = rig.world.app.web.listening[1]
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        counts = ctx.Array("l", 3)
        proc = ctx.Process(target=_attack, args=(port, stop, counts, max_s), daemon=True)
        proc.start()

        def end():
            stop.set()
            proc.join(10)
            g = rig.world.app.web.guard
            return {"scans": counts[0], "dashboard_gets": counts[1], "dashboard_ok": counts[2],
                    "guard": dict(g.stats) if g is not None else None}
        return end
    return during


def measure(episodes, steps, seed, max_s=300.0, out=print):
    from hil import figures
    from hil.bench_steps import EPISODES
    from hil.bench import run_episode

    specs = [e for e in EPISODES if e[0] in episodes]
    res = {}
    for label, during in (("web idle", None), ("web load", _loaded(max_s))):
        react, worst, extra, errors = [], 0.0, [], []
        t0 = time.monotonic()
        for spec in specs:
            r = run_episode(spec, steps, seed, rig_factory=_rig, during=during)
            if r["error"]:
                errors.append(r["error"])
                continue
            react += [f["reaction_ms"] for f in r["steps"] if f["over"] and f["reaction_ms"] is not None]
            worst = max(worst, r["worst_pass_ms"] or 0)
            if r.get("during"):
                extra.append(r["during"])
        res[label] = {"steps_over_breaker": len(react), "p50": figures.percentile(react, 50),
                      "p99": figures.percentile(react, 99), "max": max(react) if react else None,
                      "worst_pass_ms": worst, "load": extra, "errors": errors,
                      "wall_s": time.monotonic() - t0}
        out("%s: step->$SC p50 %s ms, p99 %s ms, max %s ms over %d steps; worst pass %.0f ms (real)%s"
            % (label, res[label]["p50"], res[label]["p99"], res[label]["max"], len(react), worst,
               "; load %s" % extra if extra else ""))
        for e in errors:
            out("  episode error: " + e)
    return res


def run(args):
    eps = [e.strip() for e in args.episodes.split(",") if e.strip()]
    res = measure(eps, args.steps, args.seed, args.max_s)
    bad = any(r["errors"] for r in res.values())
    return 1 if bad else 0
