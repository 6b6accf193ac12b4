"""The web actor's authentication half: the admin password, sessions, login and its lock-out.

actors.web.Web derives from WebAuth. The password is settings.toml's DINAMICS_WEB_PASSWORD, else
the `web_pass` setting; with neither, the first visit may set one, but only over the setup access
point (net.up mode "ap") or on a PC. Login gives a session (a cookie token and its CSRF token, at
most _MAX_SESSIONS, each _SESSION_MS after its last use); passwords are compared in constant
time; failures lock the login for 1, 2, 4 ... 60 s.
"""

import os

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

from adafruit_ticks import ticks_add, ticks_diff, ticks_less

from dinamics import messages as m
from dinamics.mailbox import Actor

_SESSION_MS = const(8 * 3600 * 1000)
_MAX_SESSIONS = const(4)
_COOKIE = "dsid"


def same(a, b):
    """Constant-time equality of two str: the time depends on len(b) (the guess) only."""
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    r = len(a) ^ len(b)
    la = len(a) or 1
    for i in range(len(b)):
        r |= (a[i % la] if a else 0) ^ b[i]
    return r == 0


def _hex(n):
    import binascii

    return binascii.hexlify(os.urandom(n)).decode()


class WebAuth(Actor):
    def password(self):
        pw = getattr(self.port, "web_password", None)
        if pw is None:
            try:
                pw = os.getenv("DINAMICS_WEB_PASSWORD")
            except Exception:  # noqa: BLE001
                pw = None
        if isinstance(pw, str) and 8 <= len(pw) <= 63:
            return pw
        return self.settings.get("web_pass") or None

    def setup_allowed(self):
        """No password yet: the first visitor may set one, over the setup AP (or on a PC)."""
        if self.password() is not None:
            return False
        return (self.net is not None and self.net[1] == "ap") or getattr(self.port, "web_port", None) is not None

    def session(self, request):
        try:
            cookies = request.cookies  # the library's parser raises on `Cookie: ;=;`
        except ValueError:
            cookies = None
        token = cookies.get(_COOKIE) if cookies else None
        if not token:
            return None
        for t in self.sessions:
            if same(t, token):
                s = self.sessions[t]
                s[1] = ticks_add(self.now(), _SESSION_MS)
                return s
        return None

    def login(self, guess):
        now = self.now()
        if self.locked_until is not None and ticks_less(now, self.locked_until):
            return None, (ticks_diff(self.locked_until, now) + 999) // 1000
        pw = self.password()
        if pw is None or not same(pw, guess):
            self.fails += 1
            self.stats["login_failures"] += 1
            if self.fails >= 3:
                self.locked_until = ticks_add(now, min(60, 1 << (self.fails - 3)) * 1000)
            self.log(m.WARNING, "web login refused (%d in a row)" % self.fails)
            return None, 0
        self.fails = 0
        self.locked_until = None
        self.stats["logins"] += 1
        if len(self.sessions) >= _MAX_SESSIONS:
            oldest = None
            for t in self.sessions:
                if oldest is None or ticks_less(self.sessions[t][1], self.sessions[oldest][1]):
                    oldest = t
            del self.sessions[oldest]
        token = _hex(16)
        self.sessions[token] = [_hex(12), ticks_add(now, _SESSION_MS)]
        return token, 0

    def _expire_sessions(self, now):
        for token in tuple(self.sessions):
            if ticks_less(self.sessions[token][1], now):
                del self.sessions[token]
