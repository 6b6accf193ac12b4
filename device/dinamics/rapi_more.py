"""The RAPI codec's rarely used part, kept out of dinamics.rapi so it costs no heap until used
(docs/heap.md): parsers of replies the firmware itself never asks for ($GE, $GF, $GP, $GT, $AN:
tools, tests, rapi_request users), state names (host tools), and the LCD ($FP) text encoder
that set_lcd / erase_lcd load on demand, and the check of a user-typed command (rapi_request).
mqtt_inbound loads it when one of those commands arrives; the bridge drops both together."""

from dinamics import rapi

STATE_SLEEP = rapi.STATE_SLEEP
STATE_DISABLED = rapi.STATE_DISABLED


def build_raw(text, seq=0):
    """Build a user-typed command such as "SL 2" or "GV" (no '$', no checksum)."""
    text = text.encode() if isinstance(text, str) else bytes(text)
    if len(text) < 2 or text[:1] not in b"FGSTZ":
        raise ValueError("RAPI command must start with F, G, S, T or Z")
    c1 = text[1]
    if not (48 <= c1 <= 57 or 65 <= c1 <= 90):
        raise ValueError("RAPI command is 2 chars: F/G/S/T/Z + uppercase letter or digit")
    if len(text) > 2 and text[2] != 32:
        raise ValueError("space expected after the 2-char command")
    for b in text:
        if b < 32 or b > 126:
            raise ValueError("RAPI command must be printable ASCII")
    for b in (b"$", b"^", b"*"):
        if b in text:
            raise ValueError("'$', '^' and '*' are added by the codec, not typed")
    toks = text.split(b" ")
    # the controller takes a last ':' token as the id; ids belong to the link
    if len(toks) > 1 and toks[-1][:1] == b":":
        raise ValueError("sequence ids (:SS) are added by the link")
    return rapi.build(toks[0], toks[1:], seq)


def parse_ge(f):
    """-> (amps, ECF flags)"""
    rapi._count(f, 2)
    return rapi.dec(f[0]), rapi._hx(f[1])


def parse_gf(f):
    """-> (gfi, nognd, stuck) trip counters (unpadded hex)."""
    rapi._count(f, 3)
    return rapi._hx(f[0]), rapi._hx(f[1]), rapi._hx(f[2])


def parse_gp(f):
    """-> (t1, t2, t3) in 0.1 degC, None for an absent sensor (-2560)."""
    rapi._count(f, 3)
    r = []
    for x in f:
        v = rapi.dec(x, True)
        r.append(None if v == -2560 else v)
    return tuple(r)


def parse_gt(f):
    """-> (yy, mo, dd, hh, mi, ss), or None when no RTC is fitted."""
    rapi._count(f, 6)
    v = tuple([rapi.dec(x) for x in f])
    if v == (165, 165, 165, 165, 165, 85):   # 0xFF bytes read as BCD
        return None
    if not (1 <= v[1] <= 12 and 1 <= v[2] <= 31 and v[3] < 24 and v[4] < 60 and v[5] < 60):
        raise ValueError("RTC value out of range")
    return v


def parse_an(f):
    """-> 0 short press, 1 long press"""
    rapi._count(f, 1)
    return rapi.dec(f[0])


# -- states ----------------------------------------------------------------

_NAMES = ("starting", "A not connected", "B connected", "C charging",
          "D vent required", "fault: diode check", "fault: GFCI", "fault: no ground",
          "fault: stuck relay", "fault: GFI self-test", "fault: over temperature",
          "fault: over current", "fault: 0c", "fault: 0d", "fault: relay closure")


def state_name(state):
    if 0 <= state < len(_NAMES):
        return _NAMES[state]
    if state == STATE_SLEEP:
        return "sleeping"
    if state == STATE_DISABLED:
        return "disabled"
    return "state %02x" % state


# -- LCD ($FP) ---------------------------------------------------------------
#
# The controller splits on every space and, for $FP, puts one space back
# between the text tokens, so a space costs a token (max 10 per line: FP x y
# + ':SS' leave 6 text tokens = 5 spaces). Single spaces between two visible
# characters are sent as real separators, so normal text looks exact on every
# LCD. Every other space (leading, trailing, runs, or past the token budget)
# is sent as FP_BLANK, the byte the ESP32 gateway uses (blank in the usual
# HD44780 A00 ROM; firmware >= 8.2.0 prints bytes untranslated). Commands are
# sized for a ' :SS' id; built without one the last text token must not start
# with ':' (the controller would read it as an id), so always pass a seq.

FP_BLANK = b"\xfe"
_FP_SPACES = 5


def _fp_row(s, col, row, out):
    n = len(s)
    p = 0
    while p < n:
        x = col + p
        room = 17 - len(str(x))     # 31 - len("$FP x y  :SS^XX") with y one digit
        chunk = bytearray()
        seps = 0
        while p < n and len(chunk) < room:
            ch = s[p]
            if ch == " ":
                if (chunk and chunk[-1] != 0x20 and chunk[-1] != FP_BLANK[0]
                        and p + 1 < n and s[p + 1] != " "
                        and seps < _FP_SPACES and len(chunk) + 1 < room):
                    chunk.append(0x20)
                    seps += 1
                else:
                    chunk += FP_BLANK
            else:
                chunk.append(ord(ch))
            p += 1
        out.append(("FP", [x, row] + bytes(chunk).split(b" ")))


def fp_commands(text, row=0, col=0):
    """Text at (col, row) on the 16x2 LCD -> [("FP", [x, y, tok, ...]), ...].

    Overflow past column 15 continues on row 1 at column 0; the rest is cut.
    `$ ^ *`, control and non-ASCII characters become '?'."""
    if row not in (0, 1) or not 0 <= col <= 15:
        raise ValueError("LCD position out of range")
    t = []
    for ch in text:
        o = ord(ch)
        t.append(ch if 32 <= o <= 126 and ch not in "$^*" else "?")
    t = "".join(t)
    out = []
    while t and row < 2:
        w = 16 - col
        _fp_row(t[:w], col, row, out)
        t = t[w:]
        row += 1
        col = 0
    return out


def erase_commands():
    """Blank both LCD rows: two commands of 16 FP_BLANK bytes each."""
    return fp_commands(" " * 32)
