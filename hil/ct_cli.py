"""`python -m hil ct`: play a house load profile into a unit's HIL CT feed on a serial port.

Every --period-ms (default 300, what a board needs to measure 3 CTs over 5 mains cycles) one
`R <seq> <a1> <a2> <a3>*hh` line goes out with the RMS of the load over that window, exactly what
the scenarios' CT injector sends (hil/house.py, hil/ct_feed_writer.py). Real time.

Point --port at the unit's second USB serial port (usb_cdc.data; the unit runs with DINAMICS_HIL = 1
in settings.toml), or at one end of a pty pair. The load is the house only: to add a car's draw,
give --car A (constant, per phase of --car-phases) or run a whole scenario (`python -m hil
scenario NAME --bench`), which plays the emulated car's real draw into the feed.

Profiles: --steps "0:5,3,2;10000:20,3,2" (ms: A per phase; one value = L1 only), --trace FILE
(CSV ms,l1,l2,l3), or --profile NAME (see --list). --loop repeats it; otherwise the last value
holds. One line per load change is printed; Ctrl-C (SIGINT) or SIGTERM stops it with exit 0."""
import sys
import time

from hil.signals import catch_stop


def add_parser(sub):
    p = sub.add_parser("ct", help="play a house load profile into a unit's HIL CT feed",
                       description=__doc__)
    p.add_argument("--port", metavar="PATH", help="serial device of the unit's CT feed")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--steps", metavar="SPEC", help='e.g. "0:5,3,2;10000:20,3,2"')
    src.add_argument("--trace", metavar="FILE", help="CSV file: ms,l1,l2,l3")
    src.add_argument("--profile", metavar="NAME", help="a named profile (see --list)")
    p.add_argument("--list", action="store_true", help="list the named profiles and exit")
    p.add_argument("--loop", action="store_true", help="repeat the steps/trace (named profiles "
                                                       "loop by themselves)")
    p.add_argument("--period-ms", type=int, default=300, help="one R line every N ms (default 300)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")
    p.add_argument("--car", type=float, default=0.0, metavar="A",
                   help="add a constant car draw of A amps (default 0)")
    p.add_argument("--car-phases", default="1", metavar="PHASES",
                   help="phases the --car draw is on, e.g. 1 or 123 (default 1)")
    p.add_argument("--no-data", default="", metavar="CTS",
                   help='CTs that send "-" (no data), e.g. 3 or 23: a 1- or 2-CT install')
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    p.add_argument("--quiet", action="store_true", help="print only the start and stop lines")
    return p


def build_profile(args):
    from hil import profiles

    if args.steps:
        return profiles.parse_steps(args.steps)
    if args.trace:
        return profiles.load_trace(args.trace, loop=args.loop)
    return profiles.named(args.profile or "idle")


def _phase_set(text, what):
    out = set()
    for ch in text or "":
        if ch not in "123":
            raise ValueError("%s: digits 1-3, got %r" % (what, text))
        out.add(int(ch) - 1)
    return out


def run(args, out=None):
    from hil import profiles
    from hil.ct_feed_writer import CtFeedWriter
    from hil.house import CtInjector

    out = out or sys.stdout
    if args.list:
        for name, text in profiles.describe():
            print("%-12s %s" % (name, text), file=out)
        return 0
    if not args.port:
        print("ct: --port is required", file=sys.stderr)
        return 2
    try:
        prof = build_profile(args)
        if args.steps and args.loop:
            prof = profiles.Profile(prof.steps, prof.steps[-1][0] + max(1, args.period_ms),
                                    prof.name, prof.description)
        car_on = _phase_set(args.car_phases, "--car-phases")
        no_data = _phase_set(args.no_data, "--no-data")
    except (ValueError, OSError) as e:
        print("ct: %s" % e, file=sys.stderr)
        return 2
    if args.period_ms < 20:
        print("ct: --period-ms must be at least 20", file=sys.stderr)
        return 2

    import serial

    try:
        ser = serial.Serial(args.port, args.baud, timeout=0, write_timeout=0.5)
    except (serial.SerialException, OSError, ValueError) as e:
        print("python -m hil ct: error: cannot open %s: %s" % (args.port, e), file=sys.stderr)
        return 2

    stop, restore_signals = catch_stop()

    class _House:  # the profile, looping if it loops
        def amps(self, t):
            return prof.amps(t)

    car = tuple(args.car if i in car_on else 0.0 for i in range(3))
    fitted = tuple(0 if i in no_data else 1 for i in range(3))
    writer = CtFeedWriter(ser)
    inj = CtInjector(writer, _House(), lambda t: car, period_ms=args.period_ms, fitted=fitted)
    t0 = time.monotonic()

    def now_ms():
        return int((time.monotonic() - t0) * 1000)

    print("ct: %s on %s, one R line every %d ms%s; Ctrl-C to stop"
          % (prof.description or prof.name, args.port, args.period_ms,
             ", car %g A on L%s" % (args.car, "".join(str(i + 1) for i in sorted(car_on)))
             if args.car else ""), file=out, flush=True)
    last = None
    rc = 0
    try:
        while not stop:
            now = now_ms()
            if args.duration is not None and now >= args.duration * 1000:
                break
            a = prof.amps(now)
            if a != last and not args.quiet:
                print("%9.3f load %s A" % (now / 1000, " ".join("%.2f" % x for x in a)),
                      file=out, flush=True)
            last = a
            try:
                inj.poll(now)
            except serial.SerialTimeoutException:
                pass  # nobody reading (the unit is not there): keep the timing, drop the line
            except (serial.SerialException, OSError) as e:
                print("ct: port error: %s" % e, file=sys.stderr)
                rc = 1
                break
            time.sleep(0.005)
    except KeyboardInterrupt:
        pass
    finally:
        restore_signals()
        try:
            ser.close()
        except Exception:
            pass
    print("ct: stopped after %.1f s, %d lines sent" % (now_ms() / 1000, inj.sent), file=out,
          flush=True)
    return rc
