"""RAPI codec: every vector of rapi.md §5, real hardware lines, framing, $FP layout."""

import sys
from pathlib import Path

_DEV = str(Path(__file__).resolve().parents[1] / "device")
if _DEV not in sys.path:
    sys.path.insert(0, _DEV)

import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from dinamics import rapi  # noqa: E402
from dinamics import rapi_more  # noqa: E402
from dinamics.rapi import (  # noqa: E402
    AB, AN, AT, NK, OK, WF, ChecksumError, LineAssembler, add_checksum, build,
    parse_line, xor_checksum,
)
from dinamics.rapi_more import build_raw  # noqa: E402  (a user-typed command: the rare part)

# ---------------------------------------------------------------------------
# rapi.md §5: (number, request sent or None, controller output on the wire)

VECTORS = [
    (1, b"$GV^35\r", b"$OK 8.2.3 5.2.1^2F\r"),
    (2, b"$GV :01^2E\r", b"$OK 8.2.3 5.2.1 :01^34\r"),
    (3, b"$GS^30\r", b"$OK 01 0 01 0200^12\r"),
    (4, b"$GS^30\r", b"$OK 03 94 03 0540^2C\r"),
    (5, b"$GS :2A^59\r", b"$OK fe 3600 02 0700 :2A^4A\r"),
    (6, b"$G0^53\r", b"$OK 1^31\r"),
    (7, b"$GG^24\r", b"$OK 0 240000^16\r"),
    (8, b"$GG^24\r", b"$OK 15920 230000^1E\r"),
    (9, b"$GU^36\r", b"$OK 3600000 123456^12\r"),
    (10, b"$GC^20\r", b"$OK 6 80 32 40^1B\r"),
    (11, b"$GE^26\r", b"$OK 32 0001^20\r"),
    (12, b"$GF^25\r", b"$OK 0 1a 0^50\r"),
    (13, b"$GT^37\r", b"$OK 24 3 15 13 45 7^25\r"),
    (14, b"$GT^37\r", b"$OK 165 165 165 165 165 85^1F\r"),
    (15, b"$GP^33\r", b"$OK 282 -2560 -2560^38\r"),
    (16, b"$GY^3A\r", b"$OK 5 6 0^33\r"),
    (17, b"$SC 16^13\r", b"$OK 16^07\r$AT 02 02 16 0700^31\r"),
    (18, b"$SC 16 V^65\r", b"$OK 16^07\r"),
    (19, b"$SC 100^25\r", b"$NK 80^09\r"),
    (20, b"$SC 3^27\r", b"$NK 6^37\r"),
    (21, b"$SL 2^29\r", b"$OK^20\r"),
    (22, b"$SL A*24\r", b"$OK^20\r"),
    (23, b"$ST 22 0 6 0^15\r", b"$OK^20\r"),
    (24, b"$ST 0 0 0 0^23\r", b"$OK^20\r"),
    (25, b"$SH 10^1E\r", b"$OK^20\r"),
    (26, b"$SH 10^1E\r", b"$NK^21\r"),
    (27, b"$SY 5 6^2D\r", b"$OK 5 6 0^33\r"),
    (28, b"$SY^2E\r", b"$OK 5 6 0^33\r"),
    (29, b"$SY^2E\r", b"$NK 5 6 2^30\r"),
    (30, b"$SY 165^3C\r", b"$OK 5 6 1^32\r"),
    (31, b"$SA 220 0^36\r", b"$OK^20\r"),
    (32, b"$S2 1^54\r", b"$NK^21\r"),
    (33, b"$T0 20^62\r", b"$NK^21\r"),
    (34, b"$T0 20^62\r", b"$OK^20\r"),
    (35, b"$FD^26\r", b"$OK^20\r$AT ff 02 32 0700^35\r"),
    (36, b"$FE^27\r", b"$OK^20\r$AT 02 02 32 0700^37\r"),
    (37, b"$FS :10^2A\r", b"$OK :10^3B\r$AT fe 02 32 0700^36\r"),
    (38, b"$FR^30\r", b"$AT 00 00 0 0200^03\r$AB 00 8.2.3^1E\r$AT 01 01 32 0200^32\r"),
    (39, b"$FB 7^37\r", b"$OK^20\r"),
    (40, b"$FP 0 0 Hello^50\r", b"$OK^20\r"),
    (41, b"$FP 0 1 Lifetime\xFE0kWh^BA\r", b"$OK^20\r"),
    (42, b"$FF G 1^52\r", b"$OK^20\r"),
    (43, b"$FF E 0^51\r", b"$OK^20\r\n"),
    (44, b"$SC 16 ^33\r", b"$OK 16^07\r"),
    (45, b"$SL 2 ^09\r", b"$NK^21\r"),
    (46, b"$SV 230000^00\r", b"$OK^20\r"),
    (47, b"$SK 0^2C\r", b"$OK^20\r"),
    (48, b"$ZZ^24\r", b"$NK^21\r"),
    (49, b"$ZZ :07^39\r", b"$NK :07^3C\r"),
    (50, b"$GS :05^00\r", b"$NK^21\r"),
    (51, b"$GV^00\r", b"$NK^21\r"),
    (52, b"$GV\r", b"$OK 8.2.3 5.2.1^2F\r"),
    (53, None, b"$AB 00 8.2.3^1E\r"),
    (54, None, b"$AB 08 8.2.3^16\r"),
    (55, None, b"$AT 02 02 32 0700^37\r"),
    (56, None, b"$AT 03 03 32 0540^31\r"),
    (57, None, b"$AT 06 03 32 0780^3A\r"),
    (58, None, b"$AN 0^3B\r$AN 1^3A\r"),
    (59, None, b"$WF 02^17\r"),
]

# Request lines whose checksum is not a correct XOR: (corrected line, why)
SPECIAL_REQUESTS = {
    22: b"$SL A^5A\r",     # additive form in the vector; checked separately
    50: b"$GS :05^2F\r",   # bad checksum on purpose
    51: b"$GV^35\r",       # bad checksum on purpose
    52: b"$GV^35\r",       # no checksum
}

P = rapi
# every controller output line: (kind, fields, seq, field parser or None, parser result)
EXPECT = {
    b"$OK 8.2.3 5.2.1^2F": (OK, ["8.2.3", "5.2.1"], 0, P.parse_gv, ("8.2.3", "5.2.1")),
    b"$OK 8.2.3 5.2.1 :01^34": (OK, ["8.2.3", "5.2.1"], 1, P.parse_gv, ("8.2.3", "5.2.1")),
    b"$OK 01 0 01 0200^12": (OK, ["01", "0", "01", "0200"], 0, P.parse_gs, (1, 0, 1, 0x200)),
    b"$OK 03 94 03 0540^2C": (OK, ["03", "94", "03", "0540"], 0, P.parse_gs, (3, 94, 3, 0x540)),
    b"$OK fe 3600 02 0700 :2A^4A": (OK, ["fe", "3600", "02", "0700"], 0x2A, P.parse_gs,
                                    (0xFE, 3600, 2, 0x700)),
    b"$OK 1^31": (OK, ["1"], 0, P.parse_g0, 1),
    b"$OK 0 240000^16": (OK, ["0", "240000"], 0, P.parse_gg, (0, 240000)),
    b"$OK 15920 230000^1E": (OK, ["15920", "230000"], 0, P.parse_gg, (15920, 230000)),
    b"$OK 3600000 123456^12": (OK, ["3600000", "123456"], 0, P.parse_gu, (3600000, 123456)),
    b"$OK 6 80 32 40^1B": (OK, ["6", "80", "32", "40"], 0, P.parse_gc, (6, 80, 32, 40)),
    b"$OK 32 0001^20": (OK, ["32", "0001"], 0, rapi_more.parse_ge, (32, 1)),
    b"$OK 0 1a 0^50": (OK, ["0", "1a", "0"], 0, rapi_more.parse_gf, (0, 0x1A, 0)),
    b"$OK 24 3 15 13 45 7^25": (OK, ["24", "3", "15", "13", "45", "7"], 0, rapi_more.parse_gt,
                                (24, 3, 15, 13, 45, 7)),
    b"$OK 165 165 165 165 165 85^1F": (OK, ["165"] * 5 + ["85"], 0, rapi_more.parse_gt, None),
    b"$OK 282 -2560 -2560^38": (OK, ["282", "-2560", "-2560"], 0, rapi_more.parse_gp, (282, None, None)),
    b"$OK 5 6 0^33": (OK, ["5", "6", "0"], 0, P.parse_gy, (5, 6, 0)),
    b"$OK 16^07": (OK, ["16"], 0, P.parse_sc, 16),
    b"$AT 02 02 16 0700^31": (AT, ["02", "02", "16", "0700"], 0, P.parse_at, (2, 2, 16, 0x700)),
    b"$NK 80^09": (NK, ["80"], 0, P.parse_sc, 80),
    b"$NK 6^37": (NK, ["6"], 0, P.parse_sc, 6),
    b"$OK^20": (OK, [], 0, None, None),
    b"$NK^21": (NK, [], 0, None, None),
    b"$NK 5 6 2^30": (NK, ["5", "6", "2"], 0, P.parse_sy, (5, 6, 2)),
    b"$OK 5 6 1^32": (OK, ["5", "6", "1"], 0, P.parse_sy, (5, 6, 1)),
    b"$AT ff 02 32 0700^35": (AT, ["ff", "02", "32", "0700"], 0, P.parse_at, (0xFF, 2, 32, 0x700)),
    b"$AT 02 02 32 0700^37": (AT, ["02", "02", "32", "0700"], 0, P.parse_at, (2, 2, 32, 0x700)),
    b"$OK :10^3B": (OK, [], 0x10, None, None),
    b"$AT fe 02 32 0700^36": (AT, ["fe", "02", "32", "0700"], 0, P.parse_at, (0xFE, 2, 32, 0x700)),
    b"$AT 00 00 0 0200^03": (AT, ["00", "00", "0", "0200"], 0, P.parse_at, (0, 0, 0, 0x200)),
    b"$AB 00 8.2.3^1E": (AB, ["00", "8.2.3"], 0, P.parse_ab, (0, "8.2.3")),
    b"$AT 01 01 32 0200^32": (AT, ["01", "01", "32", "0200"], 0, P.parse_at, (1, 1, 32, 0x200)),
    b"$NK :07^3C": (NK, [], 7, None, None),
    b"$AB 08 8.2.3^16": (AB, ["08", "8.2.3"], 0, P.parse_ab, (8, "8.2.3")),
    b"$AT 03 03 32 0540^31": (AT, ["03", "03", "32", "0540"], 0, P.parse_at, (3, 3, 32, 0x540)),
    b"$AT 06 03 32 0780^3A": (AT, ["06", "03", "32", "0780"], 0, P.parse_at, (6, 3, 32, 0x780)),
    b"$AN 0^3B": (AN, ["0"], 0, rapi_more.parse_an, 0),
    b"$AN 1^3A": (AN, ["1"], 0, rapi_more.parse_an, 1),
    b"$WF 02^17": (WF, ["02"], 0, P.parse_wf, 2),
    # real lines from hardware (#139, firmware D7.1.1) and the boot sequence of §3
    b"$AT 05 05 32 0702^35": (AT, ["05", "05", "32", "0702"], 0, P.parse_at, (5, 5, 32, 0x702)),
    b"$AT 05 05 12 0503^34": (AT, ["05", "05", "12", "0503"], 0, P.parse_at, (5, 5, 12, 0x503)),
    b"$OK -2560 -2560 -2560^2C": (OK, ["-2560"] * 3, 0, rapi_more.parse_gp, (None, None, None)),
    b"$OK 0 42^16": (OK, ["0", "42"], 0, P.parse_gu, (0, 42)),
    b"$OK 0 0 0^30": (OK, ["0", "0", "0"], 0, rapi_more.parse_gf, (0, 0, 0)),
    b"$AB 00 D7.1.1^54": (AB, ["00", "D7.1.1"], 0, P.parse_ab, (0, "D7.1.1")),
    b"$AT 03 04 12 0541^35": (AT, ["03", "04", "12", "0541"], 0, P.parse_at, (3, 4, 12, 0x541)),
    b"$OK 00 0 00 0300^13": (OK, ["00", "0", "00", "0300"], 0, P.parse_gs, (0, 0, 0, 0x300)),
}

HW_REQUESTS = [b"$FF B 0^56\r", b"$FP 0 0 Connected 0A^1C\r", b"$FP 0 0 VEHICLE ERROR^32\r"]


def split_request(req):
    """Wire request -> (cmd, args as bytes tokens, seq), the way the controller reads it."""
    body = req.rstrip(b"\r")
    for m in (b"^", b"*"):
        if m in body:
            body = body[:body.index(m)]
    toks = body[1:].split(b" ")
    seq = 0
    if len(toks) > 1 and toks[-1][:1] == b":":
        seq = int(toks.pop()[1:], 16)
    return toks[0].decode(), toks[1:], seq


def controller_accepts(req):
    """Checksum + token check as in tokenize() of rapi_proc.cpp (CR stripped)."""
    body = req.rstrip(b"\r")
    if len(body) > 31:
        return False
    for i, b in enumerate(body):
        if b in b"^*":
            want = int(body[i + 1:i + 3], 16)
            got = xor_checksum(body[:i]) if b == ord("^") else add_checksum(body[:i])
            return want == got and body[:i].count(b" ") <= 9
    return body.count(b" ") <= 9


def test_vector_table_is_complete():
    assert [v[0] for v in VECTORS] == list(range(1, 60))


def test_constants_from_reference():
    assert xor_checksum(b"$OK") == 0x20 and xor_checksum(b"$NK") == 0x21
    assert add_checksum(b"$FD") == 0xAE and xor_checksum(b"$FD") == 0x26
    assert xor_checksum(b"$GV") == 0x35
    assert rapi.MAX_LINE == 31


@pytest.mark.parametrize("num,req,out", [v for v in VECTORS if v[1]], ids=lambda v: str(v))
def test_request_built(num, req, out):
    cmd, args, seq = split_request(req)
    got = build(cmd, args, seq)
    text = b" ".join([cmd.encode()] + args).decode("latin-1")
    if num in SPECIAL_REQUESTS:
        assert got == SPECIAL_REQUESTS[num]
        assert got != req
    else:
        assert got == req
        assert controller_accepts(req)
    if b"\xfe" not in req:
        assert build_raw(text, seq) == got
    # a request echoed back is not a reply
    assert parse_line(req.rstrip(b"\r")) is None


def test_additive_and_bad_checksum_requests():
    assert add_checksum(b"$SL A") == 0x24            # vector 22
    assert controller_accepts(b"$SL A*24\r")
    assert add_checksum(b"$FD") == 0xAE
    # legacy examples printed in rapi_proc.h
    for line in (b"$FB 7*03", b"$FE*AF", b"$FR*BC", b"$FS*BD", b"$SL 1*14", b"$SL 2*15",
                 b"$S0 0*F7", b"$S0 1*F8"):
        body, ck = line.split(b"*")
        assert add_checksum(body) == int(ck, 16), line
    assert not controller_accepts(b"$GS :05^00\r")   # vector 50
    assert not controller_accepts(b"$GV^00\r")       # vector 51
    assert controller_accepts(b"$GV\r")              # vector 52, testing only
    assert xor_checksum(b"$SV 230000") == 0          # vector 46: a real zero checksum


@pytest.mark.parametrize("req", HW_REQUESTS)
def test_hardware_requests_built(req):
    cmd, args, seq = split_request(req)
    assert build(cmd, args, seq) == req
    assert build_raw(req[1:req.index(b"^")].decode()) == req


def test_fp_commands_reproduce_real_lines():
    assert [build(*c) for c in rapi_more.fp_commands("Connected 0A")] == [b"$FP 0 0 Connected 0A^1C\r"]
    assert [build(*c) for c in rapi_more.fp_commands("VEHICLE ERROR")] == [b"$FP 0 0 VEHICLE ERROR^32\r"]
    assert [build(*c) for c in rapi_more.fp_commands("Hello")] == [b"$FP 0 0 Hello^50\r"]


@pytest.mark.parametrize("num,req,out", VECTORS, ids=lambda v: str(v))
def test_controller_output_parsed(num, req, out):
    asm = LineAssembler()
    asm.feed(out)
    lines = []
    while True:
        line = asm.pop()
        if line is None:
            break
        lines.append(line)
    assert lines and b"".join(x + b"\r" for x in lines) == out.replace(b"\n", b"")
    for line in lines:
        check_line(line)


@pytest.mark.parametrize("line", sorted(EXPECT))
def test_every_expected_line(line):
    check_line(line)


def check_line(line):
    kind, fields, seq, parser, value = EXPECT[line]
    got = parse_line(line)
    assert got == (kind, fields, seq)
    assert got[0] is kind    # the module constant itself
    if parser is not None:
        assert parser(got[1]) == value
    # the controller's reply is exactly what build() makes of it (emulator use)
    assert build(kind, fields, seq) == line + b"\r"


def test_hardware_fault_line_flags():
    state, pilot, amps, vf = rapi.parse_at(parse_line(b"$AT 05 05 32 0702^35")[1])
    assert rapi.is_fault(state) and vf & rapi.VF_HARD_FAULT
    assert rapi_more.state_name(state) == "fault: diode check"
    state, _, _, vf = rapi.parse_at(parse_line(b"$AT 03 03 32 0540^31")[1])
    assert state == rapi.STATE_C and vf & rapi.VF_CHARGING_ON and vf & rapi.VF_EV_CONNECTED
    assert not vf & rapi.VF_HARD_FAULT


# --- parse_line errors -----------------------------------------------------

@pytest.mark.parametrize("line", [
    b"$OK^21", b"$NK^20", b"$OK 8.2.3 5.2.1^2E", b"$AT 02 02 32 0700^38", b"$OK :01^3C",
    b"$OK^ZZ", b"$OK^2", b"$OK 1^3G",
])
def test_bad_checksum_rejected(line):
    with pytest.raises(ChecksumError):
        parse_line(line)


@pytest.mark.parametrize("line", [b"$OK", b"$NK", b"$OK 8.2.3 5.2.1", b"$AT 02 02 32 0700",
                                  b"$AN 0", b"$WF 02", b"$AB 00 8.2.3"])
def test_missing_checksum_rejected(line):
    with pytest.raises(ChecksumError):
        parse_line(line)
    assert issubclass(ChecksumError, ValueError)


def test_lowercase_and_additive_checksums_accepted():
    assert parse_line(b"$OK 8.2.3 5.2.1^2f") == (OK, ["8.2.3", "5.2.1"], 0)
    assert parse_line(b"$AT 02 02 32 0700 :2a^" + b"%02x" % xor_checksum(b"$AT 02 02 32 0700 :2a")) \
        == (AT, ["02", "02", "32", "0700"], 0x2A)
    body = b"$OK 1"
    assert parse_line(body + b"*%02X" % add_checksum(body)) == (OK, ["1"], 0)
    assert parse_line(body + b"*%02x" % add_checksum(body)) == (OK, ["1"], 0)


@pytest.mark.parametrize("line", [
    b"relayCloseMs: 100", b"Z0 1 2", b"", b"$", b"$O", b"$OKAY^00", b"$ST 22 0 6 0^15",
    b"$GS^30", b"$GV", b"$ok^00", b"OK^20", b"$AX 1^00",
])
def test_non_rapi_lines_ignored(line):
    assert parse_line(line) is None


def test_parse_line_accepts_bytearray_and_gi_raw_bytes():
    assert parse_line(bytearray(b"$OK 1^31")) == (OK, ["1"], 0)
    body = b"$OK  \x1e\x95\x0f^*\x00\x11ABCDEF01"  # $GI: two spaces, raw signature bytes
    kind, fields, seq = parse_line(body + b"^%02X" % xor_checksum(body))
    assert kind == OK and fields[0] == "" and fields[1].endswith("ABCDEF01") and seq == 0


def test_seq_token_rules():
    assert parse_line(build("OK", ["1"], 0xFF)[:-1]) == (OK, ["1"], 255)
    body = b"$OK 1 :00"
    assert parse_line(body + b"^%02X" % xor_checksum(body)) == (OK, ["1"], 0)
    body = b"$OK 1 :0G"  # not an id: stays a field
    assert parse_line(body + b"^%02X" % xor_checksum(body)) == (OK, ["1", ":0G"], 0)


# --- build -----------------------------------------------------------------

def test_build_types_and_ids():
    assert build("SC", [16, "V"]) == b"$SC 16 V^65\r"
    assert build("GV", None, 1) == b"$GV :01^2E\r"
    assert build("GS", [], 0x2A) == b"$GS :2A^59\r"
    assert build(b"GV") == b"$GV^35\r"
    assert build("OK", [-2560, -2560, -2560]) == b"$OK -2560 -2560 -2560^2C\r"
    assert isinstance(build("GV"), bytes)


def test_build_too_long():
    assert len(build("FP", [0, 0, "x" * 20])) == 32            # 31 + CR
    with pytest.raises(ValueError):
        build("FP", [0, 0, "x" * 21])
    assert len(build("FP", [0, 0, "x" * 16], 0x10)) == 32
    with pytest.raises(ValueError):
        build("FP", [0, 0, "x" * 17], 0x10)


def test_build_token_limit():
    assert controller_accepts(build("ST", ["1"] * 9))           # 10 tokens
    with pytest.raises(ValueError):
        build("ST", ["1"] * 10)
    assert build("ST", ["1"] * 8, 5).count(b" ") == 9
    with pytest.raises(ValueError):
        build("ST", ["1"] * 9, 5)                               # the id is a token too


@pytest.mark.parametrize("args", [["a b"], ["$"], ["1^"], ["1*"], ["x\r"], ["\n"], [b"\x00"]])
def test_build_rejects_framing_bytes(args):
    with pytest.raises(ValueError):
        build("FP", [0, 0] + args)


@pytest.mark.parametrize("cmd,seq", [("G", 0), ("GVV", 0), ("GV", 256), ("GV", -1)])
def test_build_rejects_bad_cmd_or_seq(cmd, seq):
    with pytest.raises(ValueError):
        build(cmd, None, seq)


def test_build_rejects_bad_arg_type():
    with pytest.raises(TypeError):
        build("SC", [1.5])


# --- build_raw ---------------------------------------------------------------

def test_build_raw_ok():
    assert build_raw("SL 2") == b"$SL 2^29\r"
    assert build_raw("GV", 1) == b"$GV :01^2E\r"
    assert build_raw(b"ST 22 0 6 0") == b"$ST 22 0 6 0^15\r"
    assert build_raw("SC 16 ") == b"$SC 16 ^33\r"      # trailing space kept (volatile $SC)
    assert build_raw("T0 20") == b"$T0 20^62\r"
    assert build_raw("Z0 1 2")[:3] == b"$Z0"


@pytest.mark.parametrize("text", [
    "", "G", "gs", "Gs", "XX 1", "AT 02", "OK", "GVX", "$GV", "GV^35", "SL A*24", "SL 2\r",
    "SL 2\n", "SL\t2", "FP 0 0 caf\u00e9", "GS :05", "G\x7f", "FP 0 0 " + "x" * 30,
    "ST 1 2 3 4 5 6 7 8 9 10",
])
def test_build_raw_rejects(text):
    with pytest.raises(ValueError):
        build_raw(text)


# --- LineAssembler -----------------------------------------------------------

def drain(asm):
    out = []
    while True:
        x = asm.pop()
        if x is None:
            return out
        out.append(x)


def test_assembler_split_chunks_byte_by_byte():
    asm = LineAssembler()
    wire = b"$OK 8.2.3 5.2.1^2F\r$AT 02 02 32 0700^37\r"
    for i in range(len(wire)):
        asm.feed(wire[i:i + 1])
    assert drain(asm) == [b"$OK 8.2.3 5.2.1^2F", b"$AT 02 02 32 0700^37"]
    assert asm.pop() is None


def test_assembler_dollar_restarts_and_junk_ignored():
    asm = LineAssembler()
    n = asm.feed(b"garbage\x00\xff$OK 8.2$OK^20\rjunk after\r$NK^21\r")
    assert n == 2
    assert drain(asm) == [b"$OK^20", b"$NK^21"]
    asm.feed(b"$AT 02 0")
    asm.feed(b"$AN 0^3B\r")
    assert drain(asm) == [b"$AN 0^3B"]


def test_assembler_lf_and_debug_text():
    asm = LineAssembler()
    asm.feed(b"\nZ0 100 80\r\n$OK^20\r\nrelayCloseMs: 100\r\n$OK\n^20\r\n\r\n")
    assert drain(asm) == [b"$OK^20", b"$OK^20"]
    assert asm.overflows == 0


def test_assembler_overflow():
    asm = LineAssembler()
    asm.feed(b"$" + b"A" * 63 + b"\r")                 # exactly 64 bytes: kept
    assert drain(asm) == [b"$" + b"A" * 63]
    asm.feed(b"$" + b"B" * 40)
    asm.feed(b"B" * 24 + b"\r$OK^20\r")                # 65 bytes over two feeds: dropped
    assert drain(asm) == [b"$OK^20"]
    assert asm.overflows == 1
    asm.feed(b"$" + b"C" * 500 + b"\r" + b"D" * 10 + b"$NK^21\r")
    assert drain(asm) == [b"$NK^21"]
    assert asm.overflows == 2


def test_assembler_empty_line_and_pending_bound():
    asm = LineAssembler(max_lines=3)
    asm.feed(b"$\r" + b"$OK^20\r" * 4)
    assert drain(asm) == [b"$OK^20"] * 3
    assert asm.dropped == 2
    asm.feed(memoryview(b"$OK^20\r"))
    asm.feed(bytearray(b"$NK^21\r"))
    assert drain(asm) == [b"$OK^20", b"$NK^21"]
    asm.feed(b"$OK")
    asm.reset()
    asm.feed(b"^20\r")
    assert drain(asm) == []


_line = st.binary(max_size=50).map(lambda b: b"$" + b.replace(b"$", b"").replace(b"\r", b"")
                                   .replace(b"\n", b""))
_junk = st.binary(max_size=20).map(lambda b: b.replace(b"$", b""))


@given(st.lists(st.tuples(_junk, _line, st.sampled_from([b"\r", b"\r\n"])), max_size=10),
       st.lists(st.integers(1, 40), max_size=30))
def test_assembler_random_chunking(items, cuts):
    wire = b"".join(j + l + e for j, l, e in items)
    asm = LineAssembler(max_lines=100)
    i = 0
    for c in cuts:
        asm.feed(wire[i:i + c])
        i += c
    asm.feed(wire[i:])
    assert drain(asm) == [l for _, l, _ in items]


# --- field parsers -----------------------------------------------------------

def test_parse_gc_old_firmware():
    assert rapi.parse_gc(["6", "80"]) == (6, 80, None, None)
    assert rapi.parse_gc(["6", "80", "32"]) == (6, 80, 32, None)


@pytest.mark.parametrize("parser,fields", [
    (rapi.parse_gs, ["01", "0", "01"]),
    (rapi.parse_gs, ["0x1", "0", "01", "0200"]),
    (rapi.parse_gs, ["01", "-1", "01", "0200"]),
    (rapi.parse_gs, ["1", "0", "01", "02g0"]),
    (rapi.parse_at, ["02", "02", "3 2", "0700"]),
    (rapi.parse_at, ["02", "02", "+32", "0700"]),
    (rapi.parse_at, ["02", "02", "3_2", "0700"]),
    (rapi.parse_at, ["02", "", "32", "0700"]),
    (rapi.parse_gc, ["6"]),
    (rapi.parse_gc, ["6", "80", "32", "40", "1"]),
    (rapi.parse_gg, ["-", "1"]),
    (rapi.parse_gg, ["1"]),
    (rapi.parse_gu, ["-1", "2"]),
    (rapi.parse_g0, []),
    (rapi_more.parse_ge, ["32", "zz"]),
    (rapi_more.parse_gf, ["0", "1a"]),
    (rapi.parse_gv, ["8.2.3"]),
    (rapi.parse_gv, ["", "5.2.1"]),
    (rapi.parse_gy, ["5", "6"]),
    (rapi.parse_sy, ["5", "6", "x"]),
    (rapi_more.parse_gt, ["24", "13", "15", "13", "45", "7"]),
    (rapi_more.parse_gt, ["24", "3", "15", "13", "45"]),
    (rapi.parse_ab, ["00"]),
    (rapi.parse_wf, ["0x"]),
    (rapi_more.parse_an, ["a"]),
    (rapi.parse_sc, []),
    (rapi.parse_sc, ["16", "V"]),
])
def test_parsers_reject_malformed(parser, fields):
    with pytest.raises(ValueError):
        parser(fields)


def test_parse_gg_signed_and_uppercase_hex():
    assert rapi.parse_gg(["-1", "240000"]) == (-1, 240000)
    assert rapi.parse_gs(["FE", "0", "02", "0700"]) == (0xFE, 0, 2, 0x700)


def test_states():
    assert [rapi.STATE_A, rapi.STATE_B, rapi.STATE_C, rapi.STATE_D] == [1, 2, 3, 4]
    assert (rapi.STATE_SLEEP, rapi.STATE_DISABLED) == (0xFE, 0xFF)
    assert [s for s in range(256) if rapi.is_fault(s)] == list(range(4, 15))
    assert rapi_more.state_name(1) == "A not connected"
    assert rapi_more.state_name(2) == "B connected"
    assert rapi_more.state_name(3) == "C charging"
    assert rapi_more.state_name(0xFE) == "sleeping"
    assert rapi_more.state_name(0xFF) == "disabled"
    assert rapi_more.state_name(6) == "fault: GFCI"
    for s in range(256):
        assert isinstance(rapi_more.state_name(s), str) and rapi_more.state_name(s)
    assert (rapi.VF_EV_CONNECTED, rapi.VF_CHARGING_ON, rapi.VF_HARD_FAULT) == (0x100, 0x40, 2)


# --- $FP ---------------------------------------------------------------------

def lcd_apply(grid, line):
    """Run a built $FP line through the controller's tokenizer and LcdPrint."""
    assert controller_accepts(line)
    body = line[:line.index(b"^")]
    toks = body[1:].split(b" ")
    if len(toks) > 1 and toks[-1][:1] == b":":
        toks.pop()
    assert toks[0] == b"FP" and len(toks) >= 4
    x, y = int(toks[1]), int(toks[2])
    text = b" ".join(toks[3:])
    assert y in (0, 1) and x + len(text) <= 16
    for i, b in enumerate(text):
        grid[y][x + i] = b


def expected_cells(text, row, col):
    cells = {}
    for ch in text:
        if row > 1:
            break
        o = ord(ch)
        cells[(row, col)] = o if 32 <= o <= 126 and ch not in "$^*" else ord("?")
        col += 1
        if col == 16:
            row, col = row + 1, 0
    return cells


@settings(max_examples=300)
@given(st.text(max_size=40) | st.text(alphabet=" ab:$\u00e9\r", max_size=40),
       st.integers(0, 1), st.integers(0, 15), st.integers(1, 255))
def test_fp_commands_fit_and_render(text, row, col, seq):
    grid = [[None] * 16, [None] * 16]
    for cmd, args in rapi_more.fp_commands(text, row, col):
        line = build(cmd, args, seq)        # raises if over 31 bytes / 10 tokens
        assert len(line) <= 32 and line.count(b" ") <= 9
        lcd_apply(grid, line)
    want = expected_cells(text, row, col)
    for r in range(2):
        for c in range(16):
            got = grid[r][c]
            if (r, c) not in want:
                assert got is None
            elif want[(r, c)] == 32:
                assert got in (0x20, 0xFE)
            else:
                assert got == want[(r, c)]


def test_fp_word_spaces_are_real_spaces():
    cmds = rapi_more.fp_commands("Charging 16A 3kW")
    assert len(cmds) == 1
    assert build(*cmds[0], seq=0x42) == build("FP", [0, 0, "Charging", "16A", "3kW"], 0x42)
    cmds = rapi_more.fp_commands("a b c d e f g", 1, 2)   # 6 spaces: one becomes the blank byte
    line = build(*cmds[0], seq=1)
    assert line.count(b" ") == 9 and b"\xfe" in line


def test_fp_wraps_to_second_row_and_truncates():
    cmds = rapi_more.fp_commands("0123456789ABCDEFghijklmnopqrstuvXYZ", 0, 0)
    assert [(a[0], a[1]) for _, a in cmds] == [(0, 0), (0, 1)]
    assert cmds[1][1][2] == b"ghijklmnopqrstuv"
    assert rapi_more.fp_commands("abc", 1, 14) == [("FP", [14, 1, b"ab"])]
    with pytest.raises(ValueError):
        rapi_more.fp_commands("x", 2, 0)
    with pytest.raises(ValueError):
        rapi_more.fp_commands("x", 0, 16)


def test_fp_sanitizes():
    (cmd, args), = rapi_more.fp_commands("a$b^c*d\re\u00e9f")
    assert args == [0, 0, b"a?b?c?d?e?f"]


def test_erase_commands():
    cmds = rapi_more.erase_commands()
    assert cmds == [("FP", [0, 0, b"\xfe" * 16]), ("FP", [0, 1, b"\xfe" * 16])]
    grid = [[None] * 16, [None] * 16]
    for c in cmds:
        line = build(*c, seq=0xFF)
        assert len(line) == 32
        lcd_apply(grid, line)
    assert grid == [[0xFE] * 16, [0xFE] * 16]


# --- round trip ----------------------------------------------------------------

_tok = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                      blacklist_characters="$^*:"), max_size=12)


@given(st.sampled_from([OK, NK, AT, AB, AN, WF]), st.lists(_tok, max_size=11),
       st.integers(0, 255))
def test_build_parse_round_trip(kind, args, seq):
    try:
        line = build(kind, args, seq)
    except ValueError:
        ntok = 1 + len(args) + (1 if seq else 0)
        length = 3 + sum(1 + len(a) for a in args) + (4 if seq else 0) + 3
        assert ntok > 10 or length > 31
        return
    assert line.endswith(b"\r") and len(line) <= 32
    assert parse_line(line[:-1]) == (kind, list(args), seq)


@given(st.binary(max_size=40))
def test_parse_line_never_crashes(data):
    try:
        r = parse_line(b"$" + data)
    except ChecksumError:
        return
    assert r is None or (r[0] in (OK, NK, AT, AB, AN, WF) and isinstance(r[1], list))


def test_old_controllers_state_report_is_parsed():
    # RAPI < 5.0.0 reported state changes as `$ST ss` (hex), before `$AT` existed.
    from dinamics.rapi import ST
    assert parse_line(b"$ST 03^" + b"%02X" % xor_checksum(b"$ST 03")) == (ST, ["03"], 0)
