"""RAPI codec: pure functions for the OpenEVSE serial protocol.

Reference: docs rapi.md (firmware 8.2.3, RAPI 5.2.1). Bytes on the wire, str
fields after parsing. No I/O here; runs on CircuitPython 10 and CPython 3.11.
"""

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

OK = "OK"
NK = "NK"
AT = "AT"
AB = "AB"
AN = "AN"
WF = "WF"
ST = "ST"  # the state report of RAPI < 5.0.0 controllers (`$ST ss`), replaced by `$AT`
_KINDS = (OK, NK, AT, AB, AN, WF, ST)
_KIND_B = (b"OK", b"NK", b"AT", b"AB", b"AN", b"WF", b"ST")

MAX_LINE = 31     # '$' .. last checksum digit; the controller drops longer lines silently
MAX_TOKENS = 10   # command + arguments + ':SS'; one more gives a bare $NK^21
_LINE_BUF = const(64)     # LineAssembler bound (longest real reply is well below)

STATE_A = 1
STATE_B = 2
STATE_C = 3
STATE_D = 4
STATE_SLEEP = 0xFE
STATE_DISABLED = 0xFF

VF_HARD_FAULT = 0x0002
VF_CHARGING_ON = 0x0040
VF_EV_CONNECTED = 0x0100

# Bytes that would break framing/tokenizing on the controller (NUL ends its C string).
_BAD = (b" ", b"$", b"^", b"*", b"\r", b"\n", b"\x00")
_HEX = "0123456789abcdefABCDEF"


class ChecksumError(ValueError):
    """Response/async line with a missing or wrong checksum."""


def xor_checksum(data):
    c = 0
    for b in data:
        c ^= b
    return c


def add_checksum(data):
    return sum(data) & 0xFF


def _tok(a):
    if isinstance(a, (bytes, bytearray)):
        t = bytes(a)
    elif isinstance(a, str):
        t = a.encode()
    elif isinstance(a, int):
        t = str(a).encode()
    else:
        raise TypeError("RAPI token must be str, int or bytes")
    for b in _BAD:
        if b in t:
            raise ValueError("bad byte in RAPI token %r" % (t,))
    return t


def build(cmd, args=None, seq=0):
    """`$cmd a1 a2 :SS^XX\\r` as bytes; ValueError if too long / too many tokens."""
    c = _tok(cmd)
    if len(c) != 2:
        raise ValueError("RAPI command must be 2 chars")
    n = 1 + (len(args) if args else 0) + (1 if seq else 0)
    if n > MAX_TOKENS:
        raise ValueError("RAPI line has %d tokens (max %d)" % (n, MAX_TOKENS))
    if not 0 <= seq <= 255:
        raise ValueError("seq must be 0..255")
    out = bytearray(b"$")
    out += c
    if args:
        for a in args:
            out += b" "
            out += _tok(a)
    if seq:
        out += (" :%02X" % seq).encode()
    if len(out) + 3 > MAX_LINE:
        raise ValueError("RAPI line too long (%d > %d bytes)" % (len(out) + 3, MAX_LINE))
    out += ("^%02X\r" % xor_checksum(out)).encode()
    return bytes(out)


def text(line):
    """A line as str for logs and replies; a non-ASCII byte (line noise) becomes '?'.
    (CircuitPython ignores decode's `errors=` and raises UnicodeError.)"""
    if isinstance(line, str):
        return line
    try:
        return bytes(line).decode("ascii")
    except UnicodeError:
        return "".join([chr(c) if c < 128 else "?" for c in line])


def _hex2(line, i):
    h = line[i:i + 2]
    if len(h) != 2:
        return -1
    v = 0
    for b in h:
        if 48 <= b <= 57:
            b -= 48
        elif 65 <= b <= 70:
            b -= 55
        elif 97 <= b <= 102:
            b -= 87
        else:
            return -1
        v = v * 16 + b
    return v


def parse_line(line):
    """bytes '$..' (no CR) -> (kind, fields, seq), None if not a reply/async line."""
    if not isinstance(line, bytes):
        line = bytes(line)   # MicroPython's bytearray lacks split/decode
    if len(line) < 3 or line[0] != 0x24:
        return None
    k = line[1:3]
    if k not in _KIND_B:
        return None
    n = len(line)
    if n > 3 and line[3] not in (0x20, 0x5E, 0x2A):
        return None
    # Checksum is always the last 3 bytes of a reply; finding it from the end
    # keeps $GI's raw signature bytes (which may be '^' or '*') out of the way.
    if n < 6 or line[n - 3] not in (0x5E, 0x2A):
        raise ChecksumError("RAPI reply without checksum")
    want = _hex2(line, n - 2)
    body = line[:n - 3]
    got = xor_checksum(body) if line[n - 3] == 0x5E else add_checksum(body)
    if want != got:
        raise ChecksumError("RAPI checksum mismatch")
    seq = 0
    fields = []
    if len(body) > 3:
        if body[3] != 0x20:
            raise ChecksumError("RAPI checksum misplaced")
        b = body[4:]
        try:
            s = b.decode()
        except UnicodeError:
            s = "".join([chr(x) for x in b])  # $GI raw bytes
        fields = s.split(" ")
        t = fields[-1]
        if len(t) == 3 and t[0] == ":" and t[1] in _HEX and t[2] in _HEX:
            seq = int(t[1:], 16)
            fields.pop()
    if k == b"ST" and len(fields) != 1:
        return None  # our own delay-timer command `$ST sh sm eh em` echoed back, not a report
    return _KINDS[_KIND_B.index(k)], fields, seq


class LineAssembler:
    """Bytes in, lines out: `$` restarts, CR ends, LF ignored, bounded buffer."""

    def __init__(self, size=_LINE_BUF, max_lines=16):
        self._buf = bytearray(size)
        self._mv = memoryview(self._buf)
        self._n = -1           # -1: no line open (waiting for '$')
        self._lines = []
        self._max = max_lines
        self.overflows = 0     # lines dropped for being longer than the buffer
        self.dropped = 0       # complete lines dropped because nobody popped them

    def read_from(self, stream, mv):
        """Feed what `stream` (a UART) has waiting, read into the buffer behind memoryview `mv`.
        -> bytes read; 0 when nothing waits or the port is gone (an OSError: a dead line, which
        rapi_link's silence detection handles). Nothing is allocated when nothing waits."""
        try:
            if not stream.in_waiting:
                return 0
            n = stream.readinto(mv)
        except OSError:
            return 0
        if n:
            self.feed(mv[:n])
        return n or 0

    def feed(self, data):
        """Consume bytes; returns how many complete lines are waiting."""
        if not isinstance(data, bytes):
            data = bytes(data)   # MicroPython's bytearray has no find()
        i = 0
        end = len(data)
        while i < end:
            if self._n < 0:
                i = data.find(b"$", i)
                if i < 0:
                    break
                self._buf[0] = 0x24
                self._n = 1
                i += 1
                continue
            d = data.find(b"$", i)
            c = data.find(b"\r", i)
            j = end
            if 0 <= d < j:
                j = d
            if 0 <= c < j:
                j = c
            seg = data[i:j]
            if b"\n" in seg:
                seg = seg.replace(b"\n", b"")
            m = self._n + len(seg)
            if m > len(self._buf):
                self.overflows += 1
                self._n = -1
            else:
                self._mv[self._n:m] = seg
                self._n = m
                if j == c:
                    if len(self._lines) >= self._max:
                        self._lines.pop(0)
                        self.dropped += 1
                    self._lines.append(bytes(self._mv[:m]))
                    self._n = -1
                elif j == d:
                    self._n = -1   # '$' inside a line: drop the partial one
            i = j + 1 if j == c else j
        return len(self._lines)

    def pop(self):
        """Next complete line (bytes from '$', CR excluded) or None."""
        if self._lines:
            return self._lines.pop(0)
        return None

    def reset(self):
        self._n = -1
        self._lines = []


# -- field parsers: fields list -> tuple; ValueError when malformed ---------

def _count(f, lo, hi=None):
    if not lo <= len(f) <= (hi or lo):
        raise ValueError("expected %d fields, got %d" % (lo, len(f)))


def _dec(s, signed=False):
    t = s[1:] if signed and s[:1] == "-" else s
    if not t:
        raise ValueError("empty number")
    for ch in t:
        if not "0" <= ch <= "9":
            raise ValueError("bad decimal %s" % s)
    return int(s)


dec = _dec  # public: dialect parsers reuse it


def _hx(s):
    if not s:
        raise ValueError("empty hex")
    for ch in s:
        if ch not in _HEX:
            raise ValueError("bad hex %s" % s)
    return int(s, 16)


def parse_gs(f):
    """-> (state, elapsed_s, pilot, vflags)"""
    _count(f, 4)
    return _hx(f[0]), _dec(f[1]), _hx(f[2]), _hx(f[3])


def parse_at(f):
    """-> (state, pilot, amps, vflags)"""
    _count(f, 4)
    return _hx(f[0]), _hx(f[1]), _dec(f[2]), _hx(f[3])


def parse_gc(f):
    """-> (min, hmax, pilot, cmax); older firmware sends 2 or 3 (rest None)."""
    _count(f, 2, 4)
    v = [_dec(x) for x in f]
    while len(v) < 4:
        v.append(None)
    return tuple(v)


def parse_gg(f):
    """-> (mA, mV), signed."""
    _count(f, 2)
    return _dec(f[0], True), _dec(f[1], True)


def parse_gu(f):
    """-> (session Ws, lifetime Wh)"""
    _count(f, 2)
    return _dec(f[0]), _dec(f[1])


def parse_g0(f):
    _count(f, 1)
    return _dec(f[0])


def plug_of(state, vflags):
    """The plug a state report shows: 1 connected (B/C/D), 0 not (A); sleeping or disabled, the
    EV_CONNECTED flag when the report has flags; None: it does not say. The one rule (evse.plug)."""
    if state == STATE_B or state == STATE_C or state == STATE_D:
        return 1
    if state == STATE_A:
        return 0
    if vflags is not None and (state == STATE_SLEEP or state == STATE_DISABLED):
        return 1 if vflags & VF_EV_CONNECTED else 0
    return None


def parse_gv(f):
    """-> (fw, rapi) version strings."""
    _count(f, 2)
    if not f[0] or not f[1]:
        raise ValueError("empty version")
    return f[0], f[1]


def parse_gy(f):
    """-> (interval_s, amps, trigger); also used for $SY replies (OK and NK)."""
    _count(f, 3)
    return _dec(f[0]), _dec(f[1]), _dec(f[2])


parse_sy = parse_gy


def parse_ab(f):
    """-> (postcode, fw)"""
    _count(f, 2)
    return _hx(f[0]), f[1]


def parse_wf(f):
    _count(f, 1)
    return _hx(f[0])


def parse_sc(f):
    """-> resulting amps ($SC replies carry it on OK and NK)."""
    _count(f, 1)
    return _dec(f[0])


# -- states ----------------------------------------------------------------

def is_fault(state):
    return 0x04 <= state <= 0x0E
