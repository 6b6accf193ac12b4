"""RAPI dialects for hil/evse_emulator.py: what other controllers answer on the same wire.

`OpenEvseEmulator(..., dialect=NAME)` / `python -m hil evse --dialect NAME`. The physics (pilot,
relay, car, debounce, faults) is the emulator's in every dialect; a dialect changes the command
table, the reply formats, sequence ids, the async lines, the boot lines and the timing defaults.

* `openevse` (default): a real OpenEVSE 8.2.3 (RAPI 5.2.1), as measured (rapi.md §8).
  `$GV` -> `$OK 8.2.3 5.2.1`. Sequence ids echoed. Everything in rapi.md §1-§5.

* `emulator`: jeremypoulter/OpenEVSE_Emulator (read at src/emulator/rapi.py 20985d5,
  src/emulator/evse.py 048359e, src/main.py 0a3fbe4, config.json 03dff3e; rapi.md §6 item 18).
  `$GV` -> `$OK 8.2.1 5.0.1` (its config.json / EVSEStateMachine defaults). It answers at once
  (no loop delay, no stalls, no debug text) and sends only `$AB 00 8.2.1` when it starts (no
  `$AT 00`, no silence); `$FR` gets `$OK` and does not reboot. Parsing: the line is cut at the
  last `^`, 0xFE becomes a space, it is split on whitespace, the command is upper-cased (`$gs`
  works, `$GVX` is NK). Checksums are NOT checked (a bad one is answered as if valid; `*XX` is
  not understood, so `$SL A*24` is NK). Sequence ids are NOT parsed or echoed: ` :SS` stays an
  argument (so a bare `$SY :41` pulse is `$NK`, `$GS :41` is answered without the id).
  Replies: `$OK`/`$NK` + fields + uppercase `^XX` + CR.
    GS  `STATE elapsed PILOT VFLAGS`: state/pilot `%02X`, vflags `%04X`, all UPPERCASE; vflags
        are its own: 0x0100 EV connected (pilot B/C), 0x0040 charging (C), plus its error flags
    GG  `mA mV state errflags` (4 fields, state and error flags in decimal)
    GU  `Wh Ws` (session energy: Wh first, then Wh*3600)
    GC  `6 80 32 amps` (min, its hw max 80, its pilot capacity 32, the current setting)
    GE  `amps errflags` (decimal)    GF `gfi nognd stuck` (decimal)    GP `ds mcp 0 0` (0.1 C)
    GA  `1.0 0`   GI `OpenEVSE03AB12CD`   GT `0`   GH `0`
    SC  `$SC a [V|M]` -> `$OK a` or `$NK a` (clamped to 6..32; always with the value, never an
        `$AT`); `M` sets the maximum once. `V` changes nothing (no EEPROM).
    SY  pulse -> `$OK i a 0` (always OK: it never supervises, never falls back);
        `$SY 165` -> bare `$OK`; `$SY i a` -> `$OK i a 0`; anything else bare `$NK`
    SL  1/2/A -> `$OK` (L1 120 V, L2 240 V)    SE 0/1 -> `$OK` (echo: `$CMD$arg...^XX` CR)
    ST, SH, F0, F1 -> `$OK` (nothing happens)  FE `$OK` (NK in a fault)  FD -> state FF, FS -> FE,
    both `$OK` with no `$AT`    FP `x y text` (0..15, 0..1) `$OK`    FB 0..7 `$OK`
    anything else (G0 GY GD G5 S0 S1 SA SK SV FF T0 Z0 ...) -> `$NK`
  Async: `$AT STATE PILOT amps VFLAGS` (uppercase hex, its vflags) only when the EVSE state
  (A/B/C or a fault) changes: never for a capacity change, `$FD`, `$FS`, `$FE`.

* `old`: a pre-id OpenEVSE (RAPI < 3.0, e.g. D4.1.0 with RAPI 2.0.1, the pair rapi.md names;
  representative, not captured). `$GV` -> `$OK D4.1.0 2.0.1`. Same line parser and checksums
  as today, but no sequence ids (` :SS` is an extra argument, never echoed).
    GS  `state elapsed`: 2 fields, state in DECIMAL (254 sleeping, 255 disabled)
    GC  `min max` (2 fields)    SC -> bare `$OK` / `$NK` (no value)    SE 0/1 echo (RAPI <= 4)
    G0 GY SY FF F0 F1 GD GI G5 S5 SV SB S2 T0 Z0 -> `$NK` (they came later)
  Async: `$ST ss` (hex state) on a state change instead of `$AT`; no `$AB` and no `$AT 00` at
  boot (boot timing as the AVR: same silence and POST), no V6 debug text.
"""

ST_UNKNOWN, ST_A, ST_B, ST_C = 0x00, 0x01, 0x02, 0x03
ST_SLEEPING, ST_DISABLED = 0xFE, 0xFF


class Dialect:
    name = "openevse"
    version = "8.2.3"
    rapi_version = "5.2.1"
    debug_text = True           # the V6 build's `relayCloseMs: 100` / `relayHoldPwm: 255`
    voltage_mv = 230000
    latency = True
    stalls = True
    fast_boot = False
    boot_at00 = True
    boot_ab = True
    echo_ids = True
    exact_names = False
    saved_amps = None           # None: the factory default (24 A on L2)
    temperatures = (282, -2560, -2560)
    tokenize = None             # None: the real rapi_proc.cpp parser
    commands = None             # None: the real command table
    send_state = None           # None: the real `$AT` rules

    def echo(self, emu, tokens):
        pass


# ==============================================================================================
# jeremypoulter/OpenEVSE_Emulator
# ==============================================================================================
ERR_BITS = {"gfci": 0x01, "stuck_relay": 0x02, "no_ground": 0x04, "over_temp": 0x10}


def _err(emu):
    v = 0
    for k in emu.faults:
        v |= ERR_BITS.get(k, 0)
    return v


def _pilot(emu):
    """What its EV simulator shows on the pilot: the level the controller last read."""
    if emu.ev is None:
        return ST_A
    return emu._level or ST_B


def _state(emu):
    st = emu._state
    return _pilot(emu) if st == ST_UNKNOWN else st


def _vflags(emu):
    v = _err(emu)
    if _pilot(emu) in (ST_B, ST_C):
        v |= 0x0100
    if emu._state == ST_C:
        v |= 0x0040
    return v


def _int(b):
    return int(b.decode("latin-1"))


def _params(tk):
    return tk[1:]


def e_gs(emu, tk, n, now):
    return (0, b"%02X %d %02X %04X" % (_state(emu), emu._elapsed_total(now), _pilot(emu),
                                       _vflags(emu)))


def e_gg(emu, tk, n, now):
    return (0, b"%d %d %d %d" % (emu._measured_ma(now), emu._voltage, _state(emu), _err(emu)))


def e_gu(emu, tk, n, now):
    wh = emu.session_ws // 3600
    return (0, b"%d %d" % (wh, wh * 3600))


def e_gc(emu, tk, n, now):
    return (0, b"6 80 32 %d" % emu._capacity)


def e_ge(emu, tk, n, now):
    return (0, b"%d %d" % (emu._capacity, _err(emu)))


def e_gf(emu, tk, n, now):
    return (0, b"%d %d %d" % emu.fault_counters)


def e_gp(emu, tk, n, now):
    return (0, b"%d %d 0 0" % (emu.temperatures[0], emu.temperatures[1]))


def e_gv(emu, tk, n, now):
    return (0, emu.version.encode() + b" " + emu.rapi_version.encode())


def _const(text):
    return lambda emu, tk, n, now: (0, text)


def e_sc(emu, tk, n, now):
    p = _params(tk)
    if not p:
        return (1, None)
    try:
        amps = _int(p[0])
    except ValueError:
        return (1, None)
    mode = p[1].upper() if len(p) > 1 else None
    if mode == b"M":
        if emu._dl_max_locked:
            return (1, b"%d" % emu._dl_max_conf)
        emu._dl_max_conf = max(6, min(80, amps))
        emu._dl_max_locked = True
        if emu._capacity > emu._dl_max_conf:
            _set_cap(emu, emu._dl_max_conf, now)
        return (0, b"%d" % emu._dl_max_conf)
    a = max(6, min(min(emu._dl_max_conf, 80), amps))
    _set_cap(emu, a, now)
    return (0 if a == amps else 1, b"%d" % a)


def _set_cap(emu, a, now):
    emu._capacity = a
    emu._sync_ev(now)


def e_sl(emu, tk, n, now):
    p = _params(tk)
    if not p:
        return (1, None)
    lvl = p[0]
    if lvl == b"1":
        emu._voltage = 120000
    elif lvl == b"2":
        emu._voltage = 240000
    elif lvl not in (b"A", b"a"):
        return (1, None)
    return (0, None)


def e_se(emu, tk, n, now):
    p = _params(tk)
    try:
        emu._dialect_echo = _int(p[0]) != 0
    except (ValueError, IndexError):
        return (1, None)
    return (0, None)


def e_sy(emu, tk, n, now):
    p = _params(tk)
    iv, amps = emu._dl_hb
    if not p:
        return (0, b"%d %d 0" % (iv, amps))           # it never misses a pulse
    try:
        first = _int(p[0])
        if first == 0xA5:
            return (0, None)                          # bare $OK
        if len(p) >= 2:
            emu._dl_hb = (first, _int(p[1]))
            return (0, b"%d %d 0" % emu._dl_hb)
    except ValueError:
        pass
    return (1, None)


def e_fe(emu, tk, n, now):
    if _err(emu):
        return (1, None)
    emu._enable(now)
    return (0, None)


def e_fd(emu, tk, n, now):
    emu._disable(now)
    return (0, None)


def e_fs(emu, tk, n, now):
    emu._sleep(now)
    return (0, None)


def e_fr(emu, tk, n, now):
    emu._energy_nws = 0                               # reset(): session only, no reboot
    return (0, None)


def e_fp(emu, tk, n, now):
    p = _params(tk)
    if len(p) < 2:
        return (1, None)
    try:
        x, y = _int(p[0]), _int(p[1])
    except ValueError:
        return (1, None)
    if not (0 <= y <= 1 and 0 <= x <= 15):
        return (1, None)
    emu.lcd[(x, y)] = b" ".join(p[2:])
    return (0, None)


def e_fb(emu, tk, n, now):
    p = _params(tk)
    try:
        c = _int(p[0])
    except (ValueError, IndexError):
        return (1, None)
    if not 0 <= c <= 7:
        return (1, None)
    emu.backlight = c
    return (0, None)


def e_tokenize(line):
    """process_command(): cut at the last `^` (checksum never checked), 0xFE -> space, split."""
    line = line.strip()
    if not line.startswith(b"$"):
        return None
    body = line[1:]
    i = body.rfind(b"^")
    if i >= 0:
        body = body[:i]
    parts = body.replace(b"\xfe", b" ").split()
    if not parts:
        return None
    return [parts[0].upper()] + parts[1:]


def e_send_state(emu, force):
    st = emu._state
    if st in (ST_UNKNOWN, ST_SLEEPING, ST_DISABLED):
        return
    last = emu._sent_dialect if emu._sent_dialect is not None else ST_A
    if force or st != last:
        emu._emit(b"AT %02X %02X %d %04X" % (st, _pilot(emu), emu._capacity, _vflags(emu)))
        emu._sent_dialect = st


class EmulatorDialect(Dialect):
    name = "emulator"
    version = "8.2.1"
    rapi_version = "5.0.1"
    debug_text = False
    voltage_mv = 240000
    latency = False
    stalls = False
    fast_boot = True
    boot_at00 = False
    echo_ids = False
    exact_names = True
    saved_amps = 32
    temperatures = (250, 250, 0)
    tokenize = staticmethod(e_tokenize)
    send_state = staticmethod(e_send_state)
    commands = {
        b"GS": e_gs, b"GG": e_gg, b"GP": e_gp, b"GV": e_gv, b"GU": e_gu, b"GC": e_gc,
        b"GE": e_ge, b"GF": e_gf, b"GA": _const(b"1.0 0"), b"GI": _const(b"OpenEVSE03AB12CD"),
        b"GT": _const(b"0"), b"GH": _const(b"0"),
        b"SC": e_sc, b"SL": e_sl, b"SE": e_se, b"ST": _const(None), b"SH": _const(None),
        b"SY": e_sy, b"FE": e_fe, b"FD": e_fd, b"FS": e_fs, b"FR": e_fr,
        b"F1": _const(None), b"F0": _const(None), b"FP": e_fp, b"FB": e_fb,
    }

    def echo(self, emu, tokens):
        line = b"$" + b"$".join(tokens)
        x = 0
        for b in line:
            x ^= b
        line += b"^%02X\r" % x
        emu._write(line, "echo", line.rstrip(b"\r").decode("latin-1"))


# ==============================================================================================
# pre-id OpenEVSE (RAPI 2.x)
# ==============================================================================================
def o_gs(emu, tk, n, now):
    return (0, b"%d %d" % (emu._state, emu._elapsed_total(now)))


def o_gc(emu, tk, n, now):
    hmax = emu._hw_max() if emu._svc_level() == 2 else 24
    return (0, b"6 %d" % hmax)


def o_sc(emu, tk, n, now):
    rc, _ = emu._cmd_sc(tk, n, now)
    return (rc, None)


def o_se(emu, tk, n, now):
    if n != 2:
        return (1, None)
    emu._echo = tk[1][:1] != b"0"
    return (0, None)


def o_send_state(emu, force):
    st = emu._state
    if st == ST_UNKNOWN and not force:
        return
    if force or st != emu._sent_dialect:
        emu._emit(b"ST %02x" % st)
        emu._sent_dialect = st


class OldDialect(Dialect):
    name = "old"
    version = "D4.1.0"
    rapi_version = "2.0.1"
    debug_text = False
    boot_at00 = False
    boot_ab = False
    echo_ids = False
    send_state = staticmethod(o_send_state)
    commands = dict(
        (k, True) for k in (b"FB", b"FD", b"FE", b"FP", b"FR", b"FS", b"S0", b"S1", b"S3",
                            b"SA", b"SH", b"SK", b"SL", b"ST", b"G3", b"GA", b"GE", b"GF",
                            b"GG", b"GH", b"GP", b"GT", b"GU", b"GV"))
    commands.update({b"GS": o_gs, b"GC": o_gc, b"SC": o_sc, b"SE": o_se})


DIALECTS = {"openevse": Dialect, "emulator": EmulatorDialect, "old": OldDialect}


def get_dialect(name):
    try:
        return DIALECTS[name]()
    except KeyError:
        raise ValueError("unknown dialect %r (one of %s)" % (name, ", ".join(sorted(DIALECTS))))
