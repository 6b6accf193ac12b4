"""The web actor's routes (docs/web.md "JSON API"). Kept apart from actors/web.py: the actor is
the state, this is the HTTP surface. Every /api route but session/login/password needs a session
cookie; every POST also the session's CSRF token in the X-CSRF header."""

import json

from adafruit_httpserver import GET, POST, FileResponse, Response

from dinamics import messages as m
from dinamics import settings as st

# RAPI console allow-list: every G… command (reads only) and FP (a line of text on the
# controller's LCD: changes nothing about charging). Everything else (SC, FE/FD/FS, SY, S…, T…,
# Z…) belongs to the balancer and the link, or changes the controller's safety settings.
WEB_RAPI = ("FP",)
_JSON = "application/json"


def rapi_allowed(cmd):
    return cmd[:1] == "G" or cmd in WEB_RAPI


def _status_text(code):
    return {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 503: "Service Unavailable"}.get(code, "Error")


def reply(request, obj, code=200, cookies=None):
    return Response(request, json.dumps(obj), status=(code, _status_text(code)), content_type=_JSON,
                    cookies=cookies)


def _text(request):
    return request.body or b""


def add(web, server):
    from actors.web import SCAN_MS
    from actors.web_auth import _COOKIE, same

    def auth(request, post):
        """None when allowed, else the refusal."""
        s = web.session(request)
        if s is None:
            return reply(request, {"error": "login required"}, 401)
        if post and not same(s[0], request.headers.get("X-CSRF") or ""):
            return reply(request, {"error": "missing or wrong CSRF token"}, 403)
        return None

    def guarded(post, fn):
        def handler(request, **kw):
            web.stats["requests"] += 1
            no = auth(request, post)
            if no is not None:
                return no
            return fn(request, **kw)
        return handler

    def index(request):
        web.stats["requests"] += 1
        root = getattr(web.port, "www_root", None) or "/www"
        return FileResponse(request, "index.html.gz", root, content_type="text/html; charset=utf-8",
                            headers={"Content-Encoding": "gzip"})

    def session(request):
        web.stats["requests"] += 1
        s = web.session(request)
        return reply(request, {"auth": s is not None, "csrf": s[0] if s else None,
                               "setup": web.setup_allowed(), "password": web.password() is not None,
                               "wifi": web.wifi_status()})

    def login(request):
        web.stats["requests"] += 1
        try:
            guess = _text(request).decode()
        except UnicodeError:
            guess = ""
        token, wait = web.login(guess)
        if token is None:
            if wait:
                return reply(request, {"error": "too many failures: try again in %d s" % wait}, 429)
            return reply(request, {"error": "wrong password"}, 401)
        return reply(request, {"ok": True, "csrf": web.sessions[token][0]},
                     cookies={_COOKIE: token + "; Path=/; HttpOnly; SameSite=Strict"})

    def logout(request):
        web.stats["requests"] += 1
        s = web.session(request)
        if s is not None:
            for t in tuple(web.sessions):
                if web.sessions[t] is s:
                    del web.sessions[t]
        return reply(request, {"ok": True}, cookies={_COOKIE: "; Path=/; Max-Age=0"})

    def password(request):
        """Set the admin password: the first one without a login (setup AP / PC only), a new one
        with a login. settings.toml's DINAMICS_WEB_PASSWORD, when set, cannot be changed here."""
        web.stats["requests"] += 1
        if not web.setup_allowed():
            no = auth(request, True)
            if no is not None:
                return no
            if web.password() is not None and web.password() != web.settings.get("web_pass"):
                return reply(request, {"error": "the password is set in settings.toml"}, 409)
        try:
            pw = _text(request).decode()
        except UnicodeError:
            pw = ""
        if not 8 <= len(pw) <= 63:
            return reply(request, {"error": "8-63 characters"}, 400)
        return _set(request, "web_pass", pw)

    def _set(request, name, raw):
        if web.held("set", name):
            return reply(request, {"error": "busy: a change of %s is in progress" % name}, 409)
        if not web.post(m.SETTING_SET, (name, raw, web)):
            return reply(request, {"error": "busy: not applied, send it again"}, 503)
        if not web.hold("set", name, request):
            return reply(request, {"error": "busy"}, 503)
        return None  # held: answered when setting.reply arrives

    def status(request):
        return reply(request, web.status())

    def settings(request):
        return reply(request, web.settings_rows())

    def wifi(request):
        out = web.wifi_status()
        out["networks"] = [list(n) for n in web.networks]
        out["stored_ssid"] = web.settings.get("wifi_ssid")
        out["stored_pass"] = "set" if web.settings.get("wifi_pass") else "not set"
        out["forget"] = web.forget_plan()
        return reply(request, out)

    def system(request):
        return reply(request, web.system())

    def command(request, topic):
        r = st.by_topic(topic)
        if r is not None and r[st.NAME] not in ("web_pass",):
            return _set(request, r[st.NAME], _text(request))
        if topic == "rapi_request":
            return _rapi(request)
        if topic == "delete_wifi":
            return _set(request, st.RESET_WIFI, b"1")
        if topic == "wifi_scan":
            if web.sched.find("wifi") is None:
                return reply(request, {"error": "no WiFi on this unit"}, 503)
            if web.held("scan"):
                return reply(request, {"error": "a scan is running"}, 409)
            if not web.post(m.WIFI_SCAN, web) or not web.hold("scan", None, request, SCAN_MS):
                return reply(request, {"error": "busy"}, 503)
            return None
        if topic == "restart":
            web.restart_soon()
            return reply(request, {"ok": True, "restarting": True})
        return reply(request, {"error": "unknown topic"}, 404)

    def _rapi(request):
        from dinamics import mqtt_inbound as inb

        try:
            text = _text(request).decode().strip()
        except UnicodeError:
            return reply(request, {"error": "not UTF-8 text"}, 400)
        first = text.lstrip("$").split(" ")[0].split("^")[0].split("*")[0]
        if first and not rapi_allowed(first):
            return reply(request, {"error": "command %s not allowed here (allowed: G*, %s)" % (
                first, ",".join(WEB_RAPI))}, 403)
        a = inb.translate("rapi_request", text, False)
        if a is None or a[0] == inb.ERROR:
            return reply(request, {"error": a[3] if a else "empty"}, 400)
        cmd, args = a[3][1], a[3][2]
        if not rapi_allowed(cmd):
            return reply(request, {"error": "command %s not allowed here (allowed: G*, %s)" % (
                cmd, ",".join(WEB_RAPI))}, 403)
        if web.held("rapi"):
            return reply(request, {"error": "one command at a time"}, 409)
        from actors.web import _TAG_RAPI

        if not web.post(m.RAPI_REQUEST, (web, _TAG_RAPI, cmd, args)) or not web.hold("rapi", None, request):
            return reply(request, {"error": "busy"}, 503)
        return None

    add_route = server.route
    add_route("/", GET)(index)
    add_route("/api/session", GET)(session)
    add_route("/api/login", POST)(login)
    add_route("/api/logout", POST)(logout)
    add_route("/api/password", POST)(password)
    add_route("/api/status", GET)(guarded(False, status))
    add_route("/api/settings", GET)(guarded(False, settings))
    add_route("/api/wifi", GET)(guarded(False, wifi))
    add_route("/api/system", GET)(guarded(False, system))
    add_route("/api/<topic>", POST)(guarded(True, command))
