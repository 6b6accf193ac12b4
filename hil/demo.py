"""`python -m hil demo`: the firmware on this PC, an emulated OpenEVSE with a car behind it,
joined by a pseudo-terminal pair; readable, timestamped log lines of what happens."""
import signal


def add_parser(sub):
    p = sub.add_parser("demo", help="run firmware + emulated EVSE + car, with readable logs")
    p.add_argument("--seconds", type=float, default=40.0, help="how long to run (default 40)")
    return p


def run(args):
    from hil.ev_model import EvModel
    from hil.world import World

    seconds = max(12.0, args.seconds)
    w = World(virtual=False, out=__import__("sys").stdout)
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    say = lambda text: w.console(20, "demo " + text)  # noqa: E731
    say("unit on %s, EVSE emulator on %s (pyserial over a pty pair)" % w.modem.paths)
    # Faster polls than the seed's defaults so a short demo shows current and energy moving.
    for name, value in (("timer7", 2000), ("timer9", 3000), ("c_limit", 16)):
        w.set(name, value)
    plug_at, unplug_at = 4000, int(seconds * 1000) - 4000
    plugged = unplugged = False
    try:
        while not stop and w.ms() < seconds * 1000:
            w.step(5)
            if not plugged and w.ms() >= plug_at:
                plugged = True
                say("plugging in a car (32 A max, 1 phase, follows the pilot after 5 s)")
                w.emu.plug(EvModel(max_amps=32, phases=1))
            if not unplugged and w.ms() >= unplug_at:
                unplugged = True
                say("unplugging the car")
                w.emu.unplug()
    finally:
        st = w.app.rapi.stats
        if st["rtt_count"]:
            say("RAPI round trips: %d, mean %.1f ms, worst %d ms; worst scheduler pass %.1f ms"
                % (st["rtt_count"], st["rtt_sum"] / st["rtt_count"], st["rtt_worst"],
                   w.sched.worst_pass_us / 1000))
        w.close()
    return 0
