"""`python -m hil unit`: the firmware on the host against a controller on a serial port."""
import os
import signal
import tempfile


def add_parser(sub):
    p = sub.add_parser("unit", help="run the firmware on this PC against an EVSE on a serial port")
    p.add_argument("--evse-port", required=True, help="serial device of the OpenEVSE controller")
    p.add_argument("--state-dir", default=None, help="where settings persist (default: a temp dir)")
    return p


def stop_on_signals(stop):
    def handler(signum, frame):
        stop()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run(args):
    from dinamics.app import App
    from hil.host_port import HostPort

    state_dir = args.state_dir or tempfile.mkdtemp(prefix="dinamics-")
    os.makedirs(state_dir, exist_ok=True)
    port = HostPort(args.evse_port, state_dir)
    app = App(port)
    stop_on_signals(app.sched.stop)
    app.run_forever()
    port.console(20, "unit stopped")
    return 0
