"""Runs INSIDE the MicroPython unix VM (not CPython): boots the firmware as a board would.

The drive directory (DINAMICS_VM_DRIVE, laid out as CIRCUITPY: boot.py, code.py, dinamics/,
actors/, lib/, plus the host shims in .vm/) is mounted at "/" and the host's /dev at "/dev", so
the firmware's FlashFs("/") writes its settings slots into the drive. boot.py then code.py run
unchanged. DINAMICS_VM_RUN_S ends the run (see .vm/time.py); the runner then prints one line
"VM-END {json}" with the scheduler's stats and the heap, and exits 0. Anything raised out of the
firmware prints its traceback and exits 1."""
import gc
import os
import sys

drive = os.getenv("DINAMICS_VM_DRIVE")
os.umount("/")
os.mount(os.VfsPosix(drive), "/")
os.mount(os.VfsPosix("/dev"), "/dev")
sys.path[:] = ["/.vm", "/", "/lib", ".frozen"]

import time  # noqa: E402  (the shim, from /.vm)

run_s = os.getenv("DINAMICS_VM_RUN_S")
if run_s:
    time.deadline_ns = int(float(run_s) * 1e9)


def _run(name, ns):
    with open("/" + name) as f:
        src = f.read()
    exec(compile(src, name, "exec"), ns)


ns = {"__name__": "__main__"}
status = 0
try:
    _run("boot.py", {"__name__": "__main__"})
    _run("code.py", ns)
except SystemExit as e:
    status = e.args[0] if e.args else 0
except BaseException as e:  # noqa: BLE001 - report anything the firmware let escape
    print("VM-CRASH %s: %s" % (type(e).__name__, e))
    sys.print_exception(e)
    status = 1
app = ns.get("app")
gc.collect()
out = {"status": status, "mem_alloc": gc.mem_alloc(), "mem_free": gc.mem_free()}
if app is not None:
    out.update(app.sched.stats())
    out["actors"] = [a.name for a in app.sched.actors]
    out["mqtt_connected"] = bool(getattr(app.mqtt, "connected", False)) if app.mqtt else False
    ct = getattr(app, "ct", None)
    if ct is not None:
        out["ct_readings"] = ct.readings
        dec = getattr(ct, "decoder", None)
        out["ct_feed_errors"] = getattr(dec, "errors", None)
    import microcontroller

    out["wd_feeds"] = microcontroller.watchdog.feeds
import json  # noqa: E402

print("VM-END " + json.dumps(out))
sys.exit(1 if status not in (0, None) else 0)
