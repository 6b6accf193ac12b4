"""The rig's command line: `python -m hil unit` and `python -m hil demo` start, do their job and
exit cleanly (status 0) on SIGTERM / SIGINT."""
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from hil.null_modem import NullModem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(args):
    p = subprocess.Popen([sys.executable, "-m", "hil"] + args, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = queue.Queue()

    def reader():
        for line in p.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    return p, lines


def wait_for(lines, text, timeout=20):
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no %r within %ss; got:\n%s" % (text, timeout, "".join(seen)))
        if line is None:
            raise AssertionError("exited before %r; got:\n%s" % (text, "".join(seen)))
        seen.append(line)
        if text in line:
            return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_unit_runs_against_a_port_and_stops_on_signal(tmp_path, sig):
    modem = NullModem().start()
    try:
        unit_path, _ = modem.paths
        p, lines = start(["unit", "--evse-port", unit_path, "--state-dir", str(tmp_path)])
        wait_for(lines, "dinamics starting")
        p.send_signal(sig)
        assert p.wait(timeout=10) == 0
        assert os.path.isdir(tmp_path)
    finally:
        modem.close()


def test_demo_shows_the_session_and_stops_on_sigint():
    p, lines = start(["demo", "--seconds", "60"])
    seen = wait_for(lines, "link up: OK", timeout=30)
    seen += wait_for(lines, "EVSE state C charging", timeout=30)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=15) == 0
    text = "".join(seen)
    assert "plugging in a car" in text


@pytest.mark.parametrize("argv", [
    ["unit", "--evse-port", "/dev/nonexistent"],
    ["unit", "--evse-port", "/dev/null", "--broker", "nohost:abc"],
    ["unit", "--evse-port", "/dev/null", "--serial", "bad/serial"],
    ["unit"],
    ["evse", "--port", "/dev/nonexistent"],
    ["ct", "--port", "/dev/nonexistent", "--profile", "oven"],
    ["scenario", "oven", "--bench"],
    ["nosuch"],
])
def test_bad_arguments_and_missing_ports_give_one_line_and_exit_2(argv):
    p = subprocess.run([sys.executable, "-m", "hil"] + argv, cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = [x for x in (p.stdout + p.stderr).splitlines() if x.strip()]
    assert len(lines) == 1 and "error:" in lines[0], lines
