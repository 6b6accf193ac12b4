"""`python -m hil evse`: an emulated OpenEVSE controller (8.2.x, RAPI 5.2.1) on a serial port.

By default it boots, stalls and answers with the timings measured on a real 8.2.3 (2.2 s of boot
silence, `$AB` 1.65 s later, ~1.2 s without answers at B->C, ~0.3 s at A<->B, 14-315 ms per reply)
and prints the V6 build's `relayCloseMs`/`relayHoldPwm` lines; --dialect picks another controller.
Point --port at a USB serial adapter wired to the board's UART, or at one end of a pty pair.
Traffic is printed as readable, timestamped lines. Ctrl-C (SIGINT) or SIGTERM stops it cleanly."""
import sys
import time

from hil.signals import catch_stop


def add_parser(subparsers):
    p = subparsers.add_parser(
        "evse", help="emulate an OpenEVSE controller (RAPI) on a serial port",
        description=__doc__)
    p.add_argument("--port", required=True, metavar="PATH", help="serial device, e.g. /dev/ttyUSB0")
    p.add_argument("--build", choices=("stock", "full"), default="stock",
                   help="stock: PlatformIO 8.2.3 command set; full: adds S3 G3 SH GH S2 T0")
    p.add_argument("--plug", action="store_true", help="start with a car plugged in")
    p.add_argument("--ev-max", type=float, default=32, metavar="A",
                   help="most the car draws per phase (default 32 A)")
    p.add_argument("--phases", type=int, choices=(1, 3), default=1, help="car phases (1 or 3)")
    p.add_argument("--dialect", choices=("openevse", "emulator", "old"), default="openevse",
                   help="openevse: a real 8.2.3 (default); emulator: jeremypoulter/"
                        "OpenEVSE_Emulator (no ids, $GG with 4 fields, $GU Wh Ws, ...); "
                        "old: a pre-id RAPI 2.x controller ($GS decimal, 2 fields)")
    p.add_argument("--debug-text", dest="debug_text", action="store_true", default=None,
                   help="print the V6 build's non-RAPI lines (relayCloseMs: ...; default with "
                        "--dialect openevse)")
    p.add_argument("--no-debug-text", dest="debug_text", action="store_false",
                   help="do not print them")
    p.add_argument("--no-latency", action="store_true",
                   help="answer at once instead of after a measured-like main-loop delay")
    p.add_argument("--no-stalls", action="store_true",
                   help="no RAPI stalls at B->C (~1.2 s) and A<->B (~0.3 s)")
    p.add_argument("--seed", type=int, default=None, help="seed of the loop delays and stalls")
    p.add_argument("--blank-eeprom", action="store_true",
                   help="first boot with a blank EEPROM (3.15 s of silence instead of 2.2 s)")
    p.add_argument("--auto-svc-level", action="store_true",
                   help="auto L1/L2 build (a car plugged in at power-up starts on L1)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    p.set_defaults(func=run)
    return p


def _fmt(t0_wall, ms, kind, text):
    wall = time.strftime("%H:%M:%S", time.localtime(t0_wall + ms / 1000.0))
    arrow = {"rx": "<-", "tx": "->", "drop": "xx", "dbg": "..", "echo": "==", "lost": "x<",
             "ovf": "x<"}.get(kind, "  ")
    return "%s.%03d %9.3f %s %-4s %s" % (wall, int(t0_wall * 1000 + ms) % 1000, ms / 1000.0,
                                         arrow, kind, text)


def run(args, out=None):
    import serial

    from hil.ev_model import EvModel
    from hil.evse_emulator import OpenEvseEmulator

    out = out or sys.stdout
    try:
        ser = serial.Serial(args.port, args.baud, timeout=0)
    except (serial.SerialException, OSError, ValueError) as e:
        print("python -m hil evse: error: cannot open %s: %s" % (args.port, e), file=sys.stderr)
        return 2

    stop, restore_signals = catch_stop()

    t0 = time.monotonic()
    t0_wall = time.time()

    def now_ms():
        return int((time.monotonic() - t0) * 1000)

    ev = EvModel(max_amps=args.ev_max, phases=args.phases) if args.plug else None
    try:
        kw = dict(build=args.build, ev=ev, debug_text=args.debug_text, dialect=args.dialect,
                  blank_eeprom=args.blank_eeprom, auto_svc_level=args.auto_svc_level)
        if args.no_latency:
            kw["latency"] = False
        if args.no_stalls:
            kw["stalls"] = False
        if args.seed is not None:
            kw["seed"] = args.seed
        emu = OpenEvseEmulator(ser, now_ms, **kw)
        print("evse: %s %s (RAPI %s, %s build, dialect %s) on %s at %d baud%s; Ctrl-C to stop"
              % ("OpenEVSE" if args.dialect == "openevse" else "RAPI controller",
                 emu.version, emu.rapi_version, args.build, args.dialect, args.port, args.baud,
                 ", car plugged in (%g A, %d phase%s)" % (args.ev_max, args.phases,
                                                          "s" if args.phases == 3 else "")
                 if ev else ""), file=out)
        printed = 0
        while not stop:
            emu.poll()
            new = emu.log_total - printed
            if new > 0:
                for ms, kind, text in emu.log[-min(new, len(emu.log)):]:
                    if kind == "echo":
                        text = repr(text)
                    print(_fmt(t0_wall, ms, kind, text), file=out)
                printed = emu.log_total
                out.flush()
            time.sleep(0.002)
    except KeyboardInterrupt:
        pass
    finally:
        restore_signals()
        try:
            ser.close()
        except Exception:
            pass
    print("evse: stopped", file=out)
    return 0
