"""Every setting, declared once in dinamics.settings_table (row layout and flags there); this
module is how everything reads it: TABLE (rows in the declared order), NAMES, row(name),
by_topic(topic), parse() and the cross-field rules, and Settings (the live values). MQTT topics,
the settings/timers JSON, the store, the web UI and the README's topic reference all derive from
TABLE.

The declaration is read once, here at import, and dropped (docs/heap.md): TABLE keeps the rows
packed in columns and builds each row tuple when it is read (as the declaration has it). A topic
is "set_" + name unless the declaration says otherwise (kept in a small dict).
"""
import sys

from dinamics import settings_table as _decl
from dinamics.settings_table import (  # noqa: F401  (re-exported: st.INT, st.PERSIST, ...)
    BITS, BOOL, CHOICE, ECHO, INT, NET, PERSIST, SECRET, STR)

# Reserved `setting.set` names (not settings): restore defaults without a reboot.
RESET_SETTINGS = "!defaults"  # delete_settings: everything except NET rows
RESET_WIFI = "!wifi"  # delete_wifi: the WiFi credentials

# Fields of a row
NAME, TOPIC, TYPE, LO, HI, DEFAULT, UNIT, FLAGS, KEY = range(9)


class _Rows:
    """The settings table, packed: one tuple per column (names, lo, hi, default, key), type,
    flags and unit as three bytes per row, the topics that are not "set_" + name in a dict. Reads
    like the declared tuple of rows (iteration, len, index); each row is a new tuple."""

    def __init__(self, columns):
        self.names, self.lo, self.hi, self.default, self.key, self.units, self.meta, self.odd = columns

    def topic(self, name):
        t = self.odd.get(name)
        return "set_" + name if t is None else t

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        n = self.names[i]
        j = 3 * i
        meta = self.meta
        return (n, self.topic(n), meta[j], self.lo[i], self.hi[i], self.default[i],
                self.units[meta[j + 2]], meta[j + 1], self.key[i])

    def __iter__(self):
        for i in range(len(self.names)):
            yield self[i]


TABLE = _Rows(_decl.columns())
NAMES = TABLE.names
del _decl
sys.modules.pop("dinamics.settings_table", None)
import dinamics  # noqa: E402

if hasattr(dinamics, "settings_table"):
    delattr(dinamics, "settings_table")
del dinamics
TIMER_NAMES = ("timer",) + tuple("timer%d" % i for i in range(1, 15))
WIFI_NAMES = ("wifi_ssid", "wifi_pass")


def row(name):
    return TABLE[NAMES.index(name)]


def by_topic(topic):
    """The row whose MQTT topic is `topic`, or None."""
    if topic[:4] == "set_" and topic[4:] in NAMES and topic[4:] not in TABLE.odd:
        return row(topic[4:])
    for name, t in TABLE.odd.items():
        if t and t == topic:
            return row(name)
    return None


def parse(r, raw):
    """Validate a raw payload (str or bytes) for row r. Returns the typed value or raises
    ValueError with a message fit for the error topic. Nothing is wrapped or truncated."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeError:
            raise ValueError("not UTF-8 text")
    t = r[TYPE]
    if t == STR:
        if len(raw) > r[HI]:
            raise ValueError("longer than %d characters" % r[HI])
        for ch in raw:
            if ord(ch) < 32:
                raise ValueError("control characters are not allowed")
        return raw
    s = raw.strip(" \t\r\n")
    if t == BITS:
        if len(s) != r[HI] or s.strip("01"):
            raise ValueError("expected exactly %d digits 0/1" % r[HI])
        return s
    if not s or not (_digits(s) or (s[0] in "+-" and _digits(s[1:]))):
        raise ValueError("expected a whole number")
    v = int(s)
    if t == CHOICE:
        if v not in r[LO]:
            raise ValueError("allowed: " + ",".join(str(x) for x in r[LO]))
        return v
    if v < r[LO] or v > r[HI]:
        raise ValueError("out of range %d-%d" % (r[LO], r[HI]))
    return v


def text_of(raw):
    """A received payload as text for a reply: UTF-8, or with each non-ASCII byte shown as
    U+FFFD when it is not UTF-8. (CircuitPython ignores decode's `errors=` and raises.)"""
    if not isinstance(raw, (bytes, bytearray)):
        return raw if isinstance(raw, str) else str(raw)
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeError:
        return "".join([chr(c) if c < 128 else "\ufffd" for c in raw])


def _digits(s):
    """ASCII digits only (str.isdigit also takes '²' and other scripts' digits on CPython)."""
    if not s or len(s) > 12:
        return False
    for ch in s:
        if not "0" <= ch <= "9":
            return False
    return True


# Cross-field limits (see check_together, and settings_load.repair for stored values;
# docs/balancer.md "Settings rules").
# A poll period is timerN (N = 5..9) times TFO while the slow-down applies: the product must stay
# a sane period and far below adafruit_ticks' limit (ticks_add refuses |delta| >= 2**28 ms).
MAX_POLL_MS = 86400000  # 24 h: the longest timerN x TFO
POLL_TIMERS = ("timer5", "timer6", "timer7", "timer8", "timer9")
LINK_SILENCE_PER_TIMEOUT = 2  # link_silence_ms >= 2 x timer13 (a silence shorter than two reply
#                               timeouts would call the link down while a request still waits)


def _hex_key(text):
    if len(text) % 2 or not 32 <= len(text) <= 64:
        return False
    for ch in text:
        if ch not in "0123456789abcdefABCDEF":
            return False
    return True


def _poll_problem(timer, t, tfo):
    if t * tfo > MAX_POLL_MS:
        return "%s x TFO = %d x %d = %d ms is above the limit %d ms (24 h)" % (
            timer, t, tfo, t * tfo, MAX_POLL_MS)
    return None


def check_together(values, name, value):
    """Cross-field rules, applied before a value is stored. Returns an error text or None.
      c_min_limit <= c_limit
      timerN x TFO <= MAX_POLL_MS for N = 5..9
      link_silence_ms >= 2 x timer13"""
    get = values.get
    if name == "c_min_limit" and value > get("c_limit", 80):
        return "minimum above c_limit (%d)" % get("c_limit")
    if name == "c_limit" and value < get("c_min_limit", 6):
        return "c_limit below the minimum (%d)" % get("c_min_limit")
    if name in POLL_TIMERS:
        return _poll_problem(name, value, get("TFO", 1))
    if name == "TFO":
        for t in POLL_TIMERS:
            problem = _poll_problem(t, get(t, 0), value)
            if problem:
                return problem
    if name == "timer13" and value * LINK_SILENCE_PER_TIMEOUT > get("link_silence_ms", 60000):
        return "2 x timer13 = %d ms is above link_silence_ms (%d ms)" % (
            value * LINK_SILENCE_PER_TIMEOUT, get("link_silence_ms"))
    if name == "lora_key" and value and not _hex_key(value):
        return "expected 32-64 hex digits (a 16-32 byte key), or empty"
    if name == "link_silence_ms" and value < get("timer13", 0) * LINK_SILENCE_PER_TIMEOUT:
        return "link_silence_ms below 2 x timer13 = %d ms" % (
            get("timer13") * LINK_SILENCE_PER_TIMEOUT)
    return None


def defaults():
    return dict(zip(NAMES, TABLE.default))


class Settings:
    """The live values. Only the settings actor writes (via `apply`); other actors read."""

    def __init__(self, stored=None):
        self.values = defaults()
        self.fixes = []  # (name, stored value, used value) from the last load(); the actor logs it
        if stored:
            self.load(stored)

    def load(self, stored):
        """Take values from the store, re-validating each against the table (a newer firmware may
        narrow a range, a file may be hand-made) and then the cross-field rules. Returns and keeps
        in `fixes` the list of (name, stored value, used value) for every stored value that was
        not used as is. Boot-time code: dinamics.settings_load, dropped after (heap)."""
        import sys

        from dinamics import settings_load

        try:
            self.fixes = settings_load.load(self.values, stored)
        finally:
            sys.modules.pop("dinamics.settings_load", None)
            import dinamics

            if hasattr(dinamics, "settings_load"):
                delattr(dinamics, "settings_load")
        return self.fixes

    def get(self, name):
        return self.values[name]

    def apply(self, name, value):
        self.values[name] = value

    def persisted(self):
        """{name: value} of the PERSIST settings that differ from their default (what is stored).
        Read from TABLE's columns: no row is built."""
        out = {}
        flags, default, values = TABLE.meta, TABLE.default, self.values
        for i in range(len(NAMES)):
            name = NAMES[i]
            if flags[3 * i + 1] & PERSIST and values[name] != default[i]:
                out[name] = values[name]
        return out
