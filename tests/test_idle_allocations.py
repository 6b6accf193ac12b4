"""An idle scheduler pass of the full App allocates nothing (issue 9 item 5).

tests/idle_alloc_probe.py builds the App a board builds (no broker, no CT, a controller that never
answers) on a virtual clock, settles it, freezes the clock where no timer is due and runs 1000
idle passes (each one turn of run_forever: run_once, pending, next_due_ms). On the MicroPython unix VM (.venv/bin/micropython) the figure is gc.mem_alloc() with
the GC disabled, i.e. every byte allocated; on CPython, where every int above 256 is a heap object,
it is tracemalloc's bytes still held afterwards (a leak check) and the largest transient peak.

Figures (MicroPython VM, 64-bit; 'ticking': 1000 passes with 10 ms of virtual time each, so
timers fire and the link probes; 'sleep': 200 x BoardClock.idle(1)):
                                                   idle (1000)   ticking (1000)   sleep (200)
    before (monotonic_ns pass timing, list inboxes)   192000 B        195424 B        6400 B
    after  (ticks_ms, ring inboxes, float naps)            0 B          3424 B           0 B
Print them (after):  .venv/bin/python tests/test_idle_allocations.py
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEVICE = os.path.join(ROOT, "device")
PROBE = os.path.join(HERE, "idle_alloc_probe.py")
SHIMS = os.path.join(HERE, "idle_alloc_shims")
PASSES = 1000


def _parse(stdout):
    for line in stdout.splitlines():
        if line.startswith("IDLE "):
            return json.loads(line[5:])
    return None


def micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else shutil.which("micropython")


def measure_micropython(tmp_dir, passes=PASSES):
    """gc.mem_alloc() figures on the MicroPython unix VM; None when the VM is not installed."""
    exe = micropython()
    if exe is None:
        return None
    import adafruit_ticks

    lib = os.path.join(str(tmp_dir), "lib")
    os.makedirs(lib, exist_ok=True)
    shutil.copy(adafruit_ticks.__file__, lib)  # not the venv's site-packages: CPython-only there
    shutil.copy(os.path.join(SHIMS, "time.py"), lib)
    r = subprocess.run([exe, PROBE, DEVICE, lib, str(passes)], capture_output=True, text=True,
                       timeout=300, cwd=str(tmp_dir))
    res = _parse(r.stdout)
    assert res is not None, r.stdout[-2000:] + r.stderr[-2000:]
    return res


def measure_cpython(passes=PASSES):
    r = subprocess.run([sys.executable, PROBE, DEVICE, "-", str(passes)], capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    res = _parse(r.stdout)
    assert res is not None, r.stdout[-2000:] + r.stderr[-2000:]
    return res


def test_idle_pass_allocates_nothing_on_the_micropython_vm(tmp_path):
    res = measure_micropython(tmp_path)
    if res is None:
        pytest.skip("no MicroPython unix VM (.venv/bin/micropython)")
    assert res["delivered"] == 0 and res["timers"] >= 1, res  # idle: nothing delivered, timers armed
    assert res["alloc_bytes"] == 0, res
    assert res["board_idle_200_bytes"] == 0, res  # the loop's sleep makes no float either


def test_idle_passes_hold_nothing_on_cpython():
    res = measure_cpython()
    assert res["delivered"] == 0, res
    # A few boxed ints (the pass counter, a tick) may differ in size between start and end; a
    # leak of even one object per pass would be thousands of bytes.
    assert res["held_bytes"] <= 64, res
    assert res["peak_transient_bytes"] <= 256, res  # a handful of boxed ints, no list/tuple churn


if __name__ == "__main__":
    import tempfile

    print("cpython    ", measure_cpython())
    print("micropython", measure_micropython(tempfile.mkdtemp(prefix="idle-alloc-")))
