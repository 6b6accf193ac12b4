"""`python -m hil scenario NAME`: run one HIL scenario (or `all`) and print its figures.

Default: the firmware on this PC (host port) against the OpenEVSE emulator and the CT injector over
pseudo-terminal pairs, on the virtual clock: deterministic, a few seconds per scenario.

--bench: the same scenario against a real unit in real time. The rig plays the OpenEVSE controller
on --evse-port (a USB serial adapter wired to the unit's EVSE UART) and the house + the car's draw
on --ct-port (the unit's second USB serial port, usb_cdc.data, with DINAMICS_HIL = 1 in its
settings.toml). With --broker HOST:PORT and --serial SN the rig sets the unit's settings over MQTT
and watches it; without them, set the printed settings on the unit yourself first.
broker_gone needs a broker the rig can kill: --own-broker PORT starts mosquitto on this PC
(0.0.0.0:PORT); point the unit's set_mqtt_host/set_mqtt_port at this PC.
--host-unit runs the bench path against the firmware on this PC in real time (no hardware).
--link lora (with --loss, --sf): the host run as a LoRa-linked install: the bridge at the charger
and the unit talk over a simulated radio medium (docs/lora.md).

Figures are printed one `name: value` a line; `FAILED: …` lines list broken assertions; the exit
status is 0 when every scenario passed (or was skipped), 1 otherwise. Progress goes to stderr: a
line per finished scenario with `all`, and every 30 s (wall clock) while a scenario runs."""
import sys
import tempfile
import threading


def add_parser(sub):
    from hil.scenarios import NAMES

    p = sub.add_parser("scenario", help="run a HIL scenario and print its figures",
                       description=__doc__)
    p.add_argument("name", nargs="?", help="one of: %s, or all" % ", ".join(NAMES))
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="scenario parameter, e.g. breaker=20 or minutes=10 (repeatable)")
    p.add_argument("--bench", action="store_true", help="run against a unit on real serial ports")
    p.add_argument("--evse-port", metavar="PATH", help="bench: serial port wired to the unit's EVSE UART")
    p.add_argument("--ct-port", metavar="PATH", help="bench: the unit's HIL CT feed (usb_cdc.data)")
    p.add_argument("--broker", metavar="HOST:PORT", help="bench: the unit's MQTT broker (watch, set)")
    p.add_argument("--serial", metavar="SN", help="bench: the unit's serial (topic Dinamics/<SN>/)")
    p.add_argument("--own-broker", type=int, metavar="PORT",
                   help="bench: start mosquitto on 0.0.0.0:PORT (the unit must use it); "
                        "needed by broker_gone")
    p.add_argument("--host-unit", action="store_true",
                   help="bench mode against the firmware on this PC (real time, pty pairs)")
    p.add_argument("--baud", type=int, default=115200)
    from hil.bench import add_link_args

    add_link_args(p)
    return p


def parse_params(items):
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ValueError("--param %r: expected KEY=VALUE" % item)
        try:
            val = int(v)
        except ValueError:
            try:
                val = float(v)
            except ValueError:
                val = v
        out[k.strip()] = val
    return out


class HostUnit:
    """The firmware on this PC in real time on its own thread, joined by started null modems:
    what a bench unit is, without the hardware (exercises BenchRig end to end)."""

    def __init__(self, serial=None, broker=None):
        from dinamics.app import App
        from dinamics.clock import BoardClock
        from hil.host_port import Console, HostPort
        from hil.null_modem import NullModem

        self.evse_modem = NullModem().start()
        self.ct_modem = NullModem().start()
        unit_evse, self.evse_path = self.evse_modem.paths
        unit_ct, self.ct_path = self.ct_modem.paths
        clock = BoardClock()
        self.console = Console(clock, out=None, keep=5000)
        kw = {}
        if broker is not None:
            kw = {"mqtt": True, "serial": serial}
        self.port = HostPort(unit_evse, tempfile.mkdtemp(prefix="dinamics-hostunit-"), clock=clock,
                             console=self.console, ct_stream=unit_ct, **kw)
        self.app = App(self.port)
        self._todo = []
        self._lock = threading.Lock()
        self._stop = False
        if broker is not None:
            self.configure({"serial": serial, "mqtt_port": broker[1], "mqtt_host": broker[0]})
        self.thread = threading.Thread(target=self._loop, name="host-unit", daemon=True)
        self.thread.start()

    def configure(self, values):
        """Settings as an installer would set them (applied on the unit's own thread)."""
        with self._lock:
            self._todo.extend(values.items())

    def _loop(self):
        import time

        sched = self.app.sched
        sched.log(20, "dinamics starting (host unit)")
        while not self._stop:
            with self._lock:
                todo, self._todo = self._todo, []
            for name, value in todo:
                self.app.settings_actor.set(name, str(value), "rig")
            sched.run_once()
            time.sleep(0.0005)

    def close(self):
        self._stop = True
        self.thread.join(5)
        if self.app.mqtt is not None:
            self.app.mqtt.close()
        for s in (self.port.evse_uart, self.port.ct_stream):
            try:
                if s is not None:
                    s.close()
            except Exception:
                pass
        self.evse_modem.close()
        self.ct_modem.close()


def make_bench_rig(args, out):
    from hil.bench_rig import BenchRig
    from hil.rigs import Broker
    from hil.unit_cli import parse_broker

    broker = None
    unit = None
    mqtt = parse_broker(args.broker) if args.broker else None
    if args.own_broker:
        broker = Broker(port=args.own_broker, bind="0.0.0.0").start()
        mqtt = ("127.0.0.1", args.own_broker)
    serial = args.serial
    if args.host_unit:
        serial = serial or "HILBENCH1"
        unit = HostUnit(serial=serial, broker=mqtt)
        evse, ct = unit.evse_path, unit.ct_path
    else:
        if not args.evse_port or not args.ct_port:
            from hil.cli import fail

            fail("python -m hil scenario", "--bench needs --evse-port and --ct-port (or --host-unit)")
        evse, ct = args.evse_port, args.ct_port
    rig = BenchRig(evse, ct, baud=args.baud, mqtt=mqtt, serial_number=serial, broker=broker,
                      out=out, configure=unit.configure if unit is not None else None)
    return rig, unit, broker


def run(args, out=None):
    from hil import scenarios as sc
    from hil.progress import Progress

    out = out or sys.stdout
    if args.list or not args.name:
        for name in sc.NAMES:
            spec = sc.SCENARIOS[name]
            print("%-12s %s" % (name, spec.text), file=out)
        return 0
    names = list(sc.NAMES) if args.name == "all" else [args.name]
    for n in names:
        if n not in sc.SCENARIOS:
            print("scenario: unknown %r (one of %s, all)" % (n, ", ".join(sc.NAMES)), file=sys.stderr)
            return 2
    try:
        params = parse_params(args.param)
    except ValueError as e:
        print("scenario: %s" % e, file=sys.stderr)
        return 2
    rc = 0
    overall = Progress("scenario")
    for i, n in enumerate(names):
        progress = Progress("scenario %s" % n)  # stderr: stdout stays figures only
        if args.bench or args.host_unit:
            rig, unit, broker = make_bench_rig(args, out)
            try:
                res = sc.run(n, rig=rig, params=params, progress=progress,
                             mode="bench (real time%s)" % (", firmware on this PC"
                                                           if args.host_unit else ""))
            finally:
                rig.close()
                if unit is not None:
                    unit.close()
                if broker is not None:
                    broker.close()
        else:
            from hil.bench import link_kwargs

            link = link_kwargs(args)
            res = sc.run(n, params=params, progress=progress, **({"link": link} if link else {}))
        for line in res.lines():
            print(line, file=out)
        out.flush()
        if not res.passed and not res.skipped:
            rc = 1
        if len(names) > 1:
            overall.line("%d/%d %s %s" % (i + 1, len(names), n, "skipped" if res.skipped
                                           else "pass" if res.passed else "FAIL"))
        if len(names) > 1:
            print("", file=out)
    return rc
