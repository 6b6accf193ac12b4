"""`python -m hil rtt`: RAPI round-trip time over a real pseudo-terminal pair, in real time.

The firmware runs its own scheduler loop (`run_forever`, as on a board); the emulator and the
null-modem cable each run in their own thread, like separate hardware. A probe actor posts `$GS`
requests one after another and times request → reply with perf_counter."""
import statistics
import threading
import time


TAG = "rtt"  # rapi.request tag of the probe's $GS
T_GO = "go"  # the probe's timer: start asking


def add_parser(sub):
    p = sub.add_parser("rtt", help="measure the RAPI round trip over a pty pair (real time)")
    p.add_argument("--count", type=int, default=300)
    return p


def measure(count=300):
    from dinamics import messages as m
    from dinamics.app import App
    from dinamics.clock import BoardClock
    from dinamics.mailbox import Actor
    from hil.evse_emulator import OpenEvseEmulator
    from hil.host_port import Console, HostPort, open_serial
    from hil.null_modem import NullModem
    import tempfile

    modem = NullModem().start()
    unit_path, evse_path = modem.paths
    t0 = time.monotonic()
    emu = OpenEvseEmulator(open_serial(evse_path), lambda: int((time.monotonic() - t0) * 1000))
    stop = threading.Event()

    def run_emulator():
        while not stop.is_set():
            emu.poll()
            time.sleep(0.0005)

    threading.Thread(target=run_emulator, daemon=True).start()
    clock = BoardClock()
    port = HostPort(unit_path, tempfile.mkdtemp(prefix="dinamics-rtt-"), clock=clock,
                    console=Console(clock, out=None))
    app = App(port)
    samples = []

    class Probe(Actor):
        name = "probe"
        subscribes = (m.LINK_STATUS,)  # rapi.reply is sent to it: it asked

        def ask(self):
            self.t = time.perf_counter()
            self.post(m.RAPI_REQUEST, (self, TAG, "GS", None))

        def handle(self, kind, payload):
            if kind == m.LINK_STATUS and payload[0]:
                self.after(1500, T_GO)  # let the link-up re-sync burst finish
            elif kind == m.TIMER:
                self.ask()
            elif kind == m.RAPI_REPLY and payload[0] == TAG:
                if payload[1]:
                    samples.append((time.perf_counter() - self.t) * 1000)
                if len(samples) >= count:
                    app.sched.stop()
                else:
                    self.ask()

    app.sched.add(Probe())
    timer = threading.Timer(60, app.sched.stop)
    timer.start()
    app.sched.run_forever(idle_ms=1)
    timer.cancel()
    stop.set()
    modem.close()
    return samples, app


def run(args):
    samples, app = measure(args.count)
    if not samples:
        print("rtt_samples: 0")
        return 1
    q = statistics.quantiles(samples, n=100)
    print("rtt_samples: %d" % len(samples))
    print("rtt_p50_ms: %.2f" % statistics.median(samples))
    print("rtt_p99_ms: %.2f" % q[98])
    print("rtt_max_ms: %.2f" % max(samples))
    print("worst_scheduler_pass_ms: %.2f" % (app.sched.worst_pass_us / 1000))
    return 0
