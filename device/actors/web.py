"""web: the local web UI and its JSON API (docs/web.md), on adafruit_httpserver.

The server listens on the `web_port` setting (80; 0 = off) as soon as the port has a socket pool
(a board once WiFi is up, `net.up`; a PC at once). The library is polled without blocking: it is
given dinamics.web_guard's pool, which reads every request in full before the library sees it and
sends every response without waiting (connect-and-close, silent clients, slowloris, bodies over
1 KB: 413; at most 3 client sockets; each request bounded in time). A pass spends at most
~_BUDGET_MS in the library.

The page (www/index.html.gz, one gzip'd file, no CDN) is a small script that draws the dashboard,
the settings forms (from /api/settings, i.e. the settings table), WiFi setup, system and a RAPI
console from the JSON API. The API names things as the MQTT topics do: GET /api/status,
/api/settings, /api/wifi, /api/system; POST /api/<set topic> (body: the value, as an MQTT payload),
/api/rapi_request, /api/wifi_scan, /api/delete_wifi, /api/restart. A setting goes through the
settings actor like an MQTT one (setting.set with this actor as the source) and the answer,
accepted or refused with the table's reason, comes back as setting.reply; RAPI commands as
rapi.request (allow-listed: mqtt_topics.rapi_allowed, the MQTT list); a scan as wifi.scan to the
wifi actor. Those requests are held open until the reply comes (or _REPLY_MS passes: 504).

Authentication is on whatever happens (actors/web_auth.py, a mixin): login gives a session cookie
(HttpOnly, SameSite=Strict); every POST also needs the session's CSRF token in X-CSRF. What the
API shows is built by actors/web_status.py (a mixin); no secret is ever sent back.
"""

import json
import os

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

from adafruit_ticks import ticks_add, ticks_diff, ticks_less, ticks_ms

from actors.web_auth import WebAuth
from actors.web_status import WebStatus
from dinamics import messages as m
from dinamics import settings as st

_BUDGET_MS = const(15)  # at most this long in the library per pass (requests are already read in full)
_REPLY_MS = const(4000)  # a held request (setting, RAPI, scan) answered 504 after this
SCAN_MS = 15000  # a WiFi scan may take longer (web_routes)
_MAX_HELD = const(4)
_BUSY_MS = const(5000)  # web.busy: a client is mid-request for this long (the page polls each 0.5-2 s)
_BUSY_EVERY_MS = const(1000)  # at most one web.busy a second
_T_SWEEP = "sweep"  # timer tags: time out held requests and sessions;
_T_RESTART = "restart"  # restart once the answer to /api/restart is out
_TAG_RAPI = "web"  # rapi.request tag (one console request at a time)
WORKFLOW_MOVE = 8080  # where the web UI goes when the web workflow holds port 80


def workflow_on_80(getenv=None):
    """CircuitPython's web workflow listens on 80 when settings.toml sets
    CIRCUITPY_WEB_API_PASSWORD and leaves CIRCUITPY_WEB_API_PORT at 80."""
    getenv = getenv or os.getenv
    try:
        if not getenv("CIRCUITPY_WEB_API_PASSWORD"):
            return False
        p = getenv("CIRCUITPY_WEB_API_PORT")
        return p is None or int(p) == 80
    except Exception:  # noqa: BLE001 - no getenv, or a port that is not a number
        return False


class Web(WebAuth, WebStatus):
    name = "web"
    subscribes = (m.CT_READING, m.EVSE_STATE, m.EVSE_CURRENT, m.EVSE_ENERGY, m.EVSE_PLUG,
                  m.EVSE_PILOT, m.LINK_STATUS, m.NET_STATUS, m.BALANCER_TARGET, m.PHASES,
                  m.NET_UP, m.NET_DOWN, m.LORA_AIR, m.LCD_SHOWN)  # + setting.reply, rapi.reply, wifi.networks (sent to it)
    polls = True
    inbox_size = 20

    def __init__(self, settings, port):
        super().__init__()
        self.settings = settings
        self.port = port
        self.server = None
        self.guard = None
        self.listening = None  # (host, port) while the server runs
        self.sessions = {}  # token -> [csrf, expiry tick]
        self.fails = 0
        self.locked_until = None
        self.started_ms = None
        self.stats = {"requests": 0, "errors": 0, "logins": 0, "login_failures": 0}
        self.net = None  # (ip, mode, ssid, ap_password) from the wifi actor
        self.networks = ()
        self.lcd = None  # lcd.shown (cols, bytes): the unit LCD's text
        self.lora_air = None  # lora.air (used ms, budget ms, window ms, frames, refused, rssi)
        self._busy_at = None  # when web.busy was last posted
        self.reset()

    def reset(self):
        g = getattr(self, "guard", None)
        if g is not None:  # after a crash: held requests are lost; let their sockets go
            for c in tuple(g.conns):
                if c.hold:
                    g.release(c)
        self._held = []  # [kind, key, request, deadline]
        self.ct = None
        self.evse = None
        self.current = None
        self.energy = None
        self.plug = None
        self.pilot = None
        self.link = None
        self.broker = None
        self.target = None
        self.phases = None

    def start(self):
        if self.started_ms is None:
            self.started_ms = self.now()
        self.every(1000, _T_SWEEP)
        if self.server is None and (self.net is not None or getattr(self.port, "web_port", None) is not None):
            self._listen()  # a board: once the wifi actor says the network is up (net.up)

    # --- the server ----------------------------------------------------------------------------
    def _port_number(self):
        p = getattr(self.port, "web_port", None)
        if p is not None:
            return p
        n = self.settings.get("web_port")
        if n == 80 and workflow_on_80():
            self.log(m.WARNING, "port 80 is CircuitPython's web workflow (CIRCUITPY_WEB_API_PASSWORD): "
                                "web UI on %d" % WORKFLOW_MOVE)
            return WORKFLOW_MOVE
        return n

    def _listen(self):
        pool = getattr(self.port, "socket_pool", None)
        number = self._port_number()
        if pool is None or not number and getattr(self.port, "web_port", None) is None:
            return
        try:
            from adafruit_httpserver import Server
        except ImportError as e:  # a drive without lib/adafruit_httpserver: no web UI, no crash loop
            self.log(m.ERROR_LEVEL, "web UI off: %s (copy lib/adafruit_httpserver)" % e)
            return
        trim_library()
        from dinamics.web_guard import GuardPool

        self.guard = GuardPool(pool, self.now)
        server = Server(self.guard, None)  # no file serving but the page's own route
        server.headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                          "X-Content-Type-Options": "nosniff"}
        _routes(self, server)
        try:
            server.start(getattr(self.port, "web_host", "0.0.0.0"), number)
        except Exception as e:  # noqa: BLE001 - a port in use must not stop the unit
            self.log(m.ERROR_LEVEL, "web UI not started on port %s: %s" % (number, e))
            self.guard = None
            return
        self.server = server
        real = number
        try:
            real = self.guard.listener.getsockname()[1]
        except Exception:  # noqa: BLE001 - CircuitPython sockets have no getsockname
            pass
        self.listening = (getattr(self.port, "web_host", "0.0.0.0"), real)
        self.log(m.INFO, "web UI on port %d" % real)

    def _stop(self):
        if self.server is not None:
            try:
                self.server.stop()
            except Exception:  # noqa: BLE001
                pass
        self.server = None
        self.guard = None
        self.listening = None
        self._held = []

    def poll(self, budget_ms):
        g = self.guard
        if g is None:
            return
        g.pump()
        if not g.ready:
            return
        t0 = ticks_ms()
        now = self.now()
        if self._busy_at is None or ticks_diff(now, self._busy_at) >= _BUSY_EVERY_MS:
            self._busy_at = now  # the wifi actor holds off scans, joins and AP changes meanwhile
            self.post(m.WEB_BUSY, _BUSY_MS)
        while g.ready and ticks_diff(ticks_ms(), t0) < _BUDGET_MS:
            try:
                self.server.poll()
            except Exception as e:  # noqa: BLE001 - one bad request must not cost the actor
                self.stats["errors"] += 1
                self.log(m.WARNING, "request failed: %s %s" % (type(e).__name__, e))
        g.pump()

    # --- firmware messages ---------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.TIMER:
            if payload == _T_RESTART:
                self._restart()
            else:
                self._sweep()
        elif kind == m.CT_READING:
            self.ct = payload
        elif kind == m.EVSE_STATE:
            self.evse = payload
        elif kind == m.EVSE_CURRENT:
            self.current = payload
        elif kind == m.EVSE_ENERGY:
            self.energy = payload
        elif kind == m.EVSE_PLUG:
            self.plug = payload
        elif kind == m.EVSE_PILOT:
            self.pilot = payload
        elif kind == m.LINK_STATUS:
            self.link = "OK" if payload[0] else "CON_ERROR_FAILED_COM :" + payload[1]
        elif kind == m.NET_STATUS:
            self.broker = bool(payload)
        elif kind == m.BALANCER_TARGET:
            self.target = payload
        elif kind == m.PHASES:
            self.phases = payload
        elif kind == m.NET_UP:
            self.net = payload
            if self.server is None:
                self._listen()
        elif kind == m.NET_DOWN:
            self.net = None
        elif kind == m.LORA_AIR:
            self.lora_air = payload
        elif kind == m.LCD_SHOWN:
            self.lcd = payload
        elif kind == m.SETTING_REPLY:  # (name, raw, why or None)
            name, raw, why = payload
            if why is None:
                self._answer("set", name, 200, {"ok": True, "value": self._shown(name) if name in st.NAMES else None})
            else:
                self._answer("set", name, 400, {"ok": False, "error": why, "value": raw})
        elif kind == m.RAPI_REPLY:  # (tag, ok, fields, text)
            ok = payload[1]
            self._answer("rapi", None, 200 if ok is not None else 504,
                         {"ok": ok, "reply": payload[3] or " ".join(payload[2] or ())})
        elif kind == m.WIFI_NETWORKS:
            self.networks = payload
            self._answer("scan", None, 200, {"networks": [list(n) for n in payload]})

    def restart_soon(self):
        self.log(m.WARNING, "restart asked from the web UI")
        self.after(500, _T_RESTART)

    def _restart(self):
        f = getattr(self.port, "restart", None)
        if f is not None:
            f()

    # --- held requests: answered when the reply arrives ------------------------------------------
    def hold(self, kind, key, request, ms=_REPLY_MS):
        if len(self._held) >= _MAX_HELD:
            return False
        self.guard.hold(request.connection)
        self._held.append([kind, key, request, ticks_add(self.now(), ms)])
        return True

    def held(self, kind, key=None):
        for h in self._held:
            if h[0] == kind and (key is None or h[1] == key):
                return True
        return False

    def _answer(self, kind, key, status, obj):
        for h in self._held:
            if h[0] == kind and (key is None or h[1] == key):
                self._held.remove(h)
                self._respond(h[2], status, obj)
                return

    def _respond(self, request, status, obj):
        from adafruit_httpserver import Response

        conn = request.connection
        conn.hold = False
        try:
            Response(request, json.dumps(obj), status=(status, "OK" if status == 200 else "Error"),
                     content_type="application/json")._send()
        except OSError:
            pass
        if self.guard is not None:
            self.guard.release(conn)

    def _sweep(self):
        now = self.now()
        for h in tuple(self._held):
            if ticks_less(h[3], now):
                self._held.remove(h)
                self._respond(h[2], 504, {"ok": False, "error": "no answer in time"})
        self._expire_sessions(now)

# adafruit_httpserver parts the web UI never uses, dropped after the import so the GC frees them
# (heap: docs/architecture.md). The package's __init__ imports every module, so they cannot be
# left out of the import itself.
_UNUSED = (("response", ("ChunkedResponse", "JSONResponse", "Redirect", "SSEResponse", "Websocket")),
           ("request", ("File", "Files", "FormData")),
           ("authentication", ("Bearer", "Token")),
           ("server", ("Bearer", "Token")))
_UNUSED_SERVER = ("serve_forever", "add_routes", "_create_ssl_context", "_create_cpython_ssl_context",
                  "_create_circuitpython_ssl_context", "_validate_https_cert_provided")


def trim_library():
    import adafruit_httpserver as h

    if getattr(h, "_dinamics_trimmed", False):
        return
    for sub, names in _UNUSED:
        mod = getattr(h, sub, None)
        for n in names:
            for where in (mod, h):
                if where is not None and hasattr(where, n):
                    try:
                        delattr(where, n)
                    except (AttributeError, TypeError):
                        pass
    for n in _UNUSED_SERVER:
        try:
            delattr(h.Server, n)
        except (AttributeError, TypeError):
            pass
    h.MIMETypes.configure(default_to="text/plain", keep_for=[".html"])
    h._dinamics_trimmed = True


def _routes(web, server):
    """The routes, kept out of the class so the Web object stays small."""
    from dinamics import web_routes

    web_routes.add(web, server)
