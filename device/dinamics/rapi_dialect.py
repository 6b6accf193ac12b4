"""Which RAPI dialect the controller speaks, learned at link-up; reply parsers that follow it.

Real OpenEVSE firmware echoes sequence ids (always since RAPI 5.0.0, optional since 3.0.0).
Other controllers do not: older firmware, other gateways' controllers and common emulators
(reference rapi.md §6 item 18). The link sends every request with an id until the first reply
decides: a reply carrying our id means "ids"; an id-less `$OK` (or an `$NK` with fields) to the
only request on the wire means "no ids", and from then on replies are matched by order with one
request in flight. A bare `$NK^21` decides nothing (a real controller sends it, without id, for a
line that arrived with a bad checksum).

Formats by dialect:
- `$GS`: 4 hex fields since RAPI 5.0.0; before that `state elapsed` in decimal (2 fields).
- `$GG`: `mA mV`; some emulators append state and flags (4 fields): the first two are used.
- `$GU`: `Ws Wh` on real firmware; a controller that claims RAPI >= 3.0.0 and yet does not echo
  ids is not the real firmware and sends `Wh Ws` (the emulators we know).
No clock, no I/O.
"""

from dinamics import rapi

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_NK_FOR_UNSUPPORTED = const(3)  # id-less NKs in a row (while others succeed) = command not supported


def _version(text):
    """'5.2.1' -> (5, 2, 1); None when it is not a dotted number."""
    out = []
    for part in text.split("."):
        n = 0
        if not part:
            return None
        for ch in part:
            if not "0" <= ch <= "9":
                return None
            n = n * 10 + ord(ch) - 48
        out.append(n)
    while len(out) < 3:
        out.append(0)
    return tuple(out[:3])


class Dialect:
    def __init__(self):
        self.reset()

    def reset(self):
        """A new link-up: the controller may have been swapped; detect again."""
        self.ids = None  # None unknown, True echoes ids, False does not
        self.fw = None
        self.rapi = None  # version tuple from $GV field 2, None unknown
        self.unsupported = []
        self._nk_run = {}
        self._bare_nk = 0
        self.reported = None

    # --- detection ---------------------------------------------------------------------------
    def on_reply(self, seq, ok, fields, on_wire):
        """Learn from a reply. on_wire: lines awaiting an answer. True when `ids` was decided.
        Two bare `$NK` in a row before anything else decide "no ids" too: an old controller
        may refuse every line that carries one (an extra token)."""
        if self.ids is not None:
            return False
        if seq:
            self.ids = True
            return True
        if ok or fields:
            if on_wire == 1:
                self.ids = False
                return True
            return False
        self._bare_nk += 1
        if self._bare_nk >= 2:
            self.ids = False
            return True
        return False

    def on_version(self, fw, rapi_version):
        self.fw = fw
        self.rapi = _version(rapi_version)

    def variant(self):
        """Claims a modern protocol but does not echo ids: not the real firmware."""
        return self.ids is False and (self.rapi is None or self.rapi >= (3, 0, 0))

    def old_gs(self):
        return self.rapi is not None and self.rapi < (5, 0, 0)

    def describe(self):
        ids = {None: "ids unknown", True: "sequence ids", False: "no sequence ids"}[self.ids]
        ver = "RAPI %d.%d.%d" % self.rapi if self.rapi else "RAPI ?"
        kind = "variant formats" if self.variant() else "OpenEVSE formats"
        text = "%s %s, %s, %s" % (self.fw or "?", ver, ids, kind)
        if self.unsupported:
            text += ", unsupported: " + " ".join(self.unsupported)
        return text

    def should_report(self):
        """True once per distinct description (log the dialect once, not at every link-up)."""
        d = self.describe()
        if d == self.reported:
            return False
        self.reported = d
        return True

    # --- unsupported commands ------------------------------------------------------------------
    def on_result(self, cmd, ok, fields, had_id):
        """Count refusals. Returns True when `cmd` has just been judged unsupported.
        With ids an `$NK :SS` without fields is conclusive (the line arrived intact); without ids
        a bare NK could be line noise, so it takes a few in a row."""
        if ok or fields:
            self._nk_run.pop(cmd, None)
            return False
        if cmd in self.unsupported:
            return False
        if had_id:
            n = _NK_FOR_UNSUPPORTED
        else:
            n = self._nk_run.get(cmd, 0) + 1
            self._nk_run[cmd] = n
        if n >= _NK_FOR_UNSUPPORTED:
            self.unsupported.append(cmd)
            return True
        return False

    def supports(self, cmd):
        return cmd not in self.unsupported

    # --- parsers -------------------------------------------------------------------------------
    def parse_gs(self, f):
        """-> (state, elapsed_s, pilot or None, vflags or None)"""
        if len(f) == 2:
            return rapi.dec(f[0]), rapi.dec(f[1]), None, None
        return rapi.parse_gs(f)

    def parse_gg(self, f):
        """-> (mA, mV)"""
        if len(f) == 4:
            f = f[:2]
        return rapi.parse_gg(f)

    def parse_gu(self, f):
        """-> (session Ws, lifetime Wh)"""
        a, b = rapi.parse_gu(f)
        if self.variant():
            return b, a
        return a, b


def fits(cmd, ok, fields):
    """Could this reply belong to `cmd`? Used to match replies by order without ids, where a
    line the controller dropped would otherwise shift every later answer by one."""
    n = len(fields)
    if not ok and n == 0:
        return True
    if cmd == "GV":
        return n == 2 and "." in fields[0] + fields[1]
    if cmd in ("SY", "GY", "GF"):
        return n == 3
    if cmd == "GS":
        return n in (2, 4)
    if cmd == "GG":
        return n in (2, 4)
    if cmd in ("GU", "GE", "GA"):
        return n == 2
    if cmd == "GC":
        return 2 <= n <= 4
    if cmd in ("G0", "SC"):
        return n <= 1
    if cmd in ("FE", "FS", "FD", "FB", "FP", "SL", "SA", "ST", "SV", "S1"):
        return n == 0
    return True
