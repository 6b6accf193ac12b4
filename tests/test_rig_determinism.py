"""The rig measures the firmware, not the PC: in virtual time a run gives the same bytes at the same
virtual ms whatever the kernel and the CPU load do (hil/null_modem.py, synchronous mode).

A pty hands bytes to the other side asynchronously (a kernel worker pushes them later); on a busy
machine later still. The old rig moved whatever had arrived when it looked, so a reading or a
reply could reach its reader one link tick later, and the command tape changed from run to run.
These tests slow the "kernel" down on purpose (every write reaches the pty a few ms late, in a
background thread) or load the CPU, and compare the emulator's log with a plain run."""
import os
import queue
import subprocess
import sys
import threading
import time

import pytest
import serial

import hil.world as world_mod
from hil.checks import Result
from hil.rigs import WorldRig
from hil.scenario_scripts import start_charging
from hil.ev_model import EvModel
from hil.host_port import open_serial
from hil.null_modem import NullModem
from hil.world import World


# --- a slow kernel ---------------------------------------------------------------------------------
class _Late:
    """Runs writes `delay_s` after they were asked for, in order, on one background thread."""

    def __init__(self, delay_s):
        self.delay_s = delay_s
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def later(self, fn, data):
        self.q.put((time.monotonic() + self.delay_s, fn, bytes(data)))

    def _loop(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            due, fn, data = item
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            fn(data)

    def stop(self):
        self.q.put(None)
        self.t.join(5)


class _SlowPort:
    """A pyserial port whose written bytes reach the pty `delay_s` late (write returns at once)."""

    def __init__(self, ser, late):
        self.ser = ser
        self.late = late

    def write(self, data):
        self.late.later(self.ser.write, data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self.ser, name)


@pytest.fixture
def slow_kernel(monkeypatch):
    """Every write into a pty (by the firmware, the emulator, the CT injector and the modem itself)
    lands 3 ms late."""
    late = _Late(0.003)
    monkeypatch.setattr(world_mod, "open_serial", lambda path: _SlowPort(open_serial(path), late))

    def put(self, fd, data):
        late.later(lambda d: NullModem._put_now(fd, d), data)

    # NullModem._put (new rig) is the modem's write into the other end; the old rig had none
    monkeypatch.setattr(NullModem, "_put_now", staticmethod(_write_all), raising=False)
    monkeypatch.setattr(NullModem, "_put", put, raising=False)
    yield late
    late.stop()


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            time.sleep(0.0005)
        except OSError:  # the pty was closed under a late write
            return


@pytest.fixture
def cpu_hog():
    """Two busy processes (both cores of the test machine), bounded to 60 s, killed at the end."""
    code = "import time\nprint('go', flush=True)\nt=time.monotonic()+60\nwhile time.monotonic()<t: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
             for _ in range(2)]
    for p in procs:
        assert p.stdout.readline() == b"go\n"  # busy from here on
    yield procs
    for p in procs:
        p.kill()
        p.wait()


# --- a short scenario ------------------------------------------------------------------------------
def _session():
    """Link-up, CT data, a car, three load steps (one over the breaker) in ~25 virtual s.
    Returns what the rig measures: the emulator's log (virtual ms, rx/tx, line) and the tape's
    commands, plus the modem counters."""
    rig = WorldRig()
    res = Result("determinism", "host")
    try:
        start_charging(rig, res, EvModel(max_amps=32, phases=1, response_s=5.0),
                          {"cte": 1, "breaker": 25, "c_limit": 32}, (2.0, 0.0, 0.0),
                          settle_ms=8000)
        steps = []
        for i, amps in enumerate((14.3, 3.1, 9.7)):
            steps.append(rig.set_house((amps, 0.0, 0.0), "step%d" % i))
            rig.run_for(2500 + 130 * i)
        modems = (rig.world.modem, rig.world.ct_modem)
        return {"log": list(rig.emu.log), "log_total": rig.emu.log_total,
                "commands": list(rig.tape.commands(0, rig.now_ms())), "steps": steps,
                "stalls": [getattr(mo, "stalls", 0) for mo in modems],
                "failures": list(res.failures)}
    finally:
        rig.close()


@pytest.fixture(scope="module")
def plain():
    return _session()


def test_plain_run_is_a_real_session(plain):
    assert not plain["failures"]
    rx = [t for _, k, t in plain["log"] if k == "rx"]
    assert any(t.startswith("$SC") for t in rx), "no $SC on the wire"
    assert any(t.startswith("$GG") for t in rx)
    assert plain["stalls"] == [0, 0]
    # the 14.3 A step puts the house + the car at 22 A over the 25 A breaker: cut within 700 ms
    t_step, pilot = plain["steps"][0]
    assert pilot == 22
    assert any(cmd == "SC" and t_step < ms <= t_step + 700 and int(args[0]) <= 11
               for ms, cmd, args in plain["commands"])


def test_same_tape_twice(plain):
    again = _session()
    assert again["log"] == plain["log"]
    assert again["commands"] == plain["commands"]


def test_slow_kernel_changes_nothing(plain, slow_kernel):
    slow = _session()
    assert slow["stalls"] == [0, 0]
    assert slow["log"] == plain["log"]
    assert slow["commands"] == plain["commands"]


def test_busy_cpu_changes_nothing(plain, cpu_hog):
    busy = _session()
    assert all(p.poll() is None for p in cpu_hog), "the hog ended before the run"
    assert busy["stalls"] == [0, 0]
    assert busy["log"] == plain["log"]


# --- the modem itself ------------------------------------------------------------------------------
def _pair(sync=True, **kw):
    modem = NullModem(sync=sync, **kw)
    a, b = (modem.attach(i, open_serial(p)) for i, p in enumerate(modem.paths))
    return modem, a, b


def _close(modem, *ports):
    for p in ports:
        p.close()
    modem.close()


def test_pump_returns_with_every_byte_visible_to_the_reader():
    modem, a, b = _pair()
    try:
        for i in range(200):
            a.write(b"x" * (1 + i % 50))
            b.write(b"$OK\r")
            want_b = sum(1 + j % 50 for j in range(i + 1)) - modem.consumed[1]
            modem.pump()
            # no waiting here: the reader sees everything the moment pump() returns
            assert b.in_waiting == want_b
            assert a.in_waiting == 4
            assert a.read(4) == b"$OK\r"
            if i % 3 == 0:
                b.read(b.in_waiting)
        assert modem.taken == modem.written and modem.stalls == 0
    finally:
        _close(modem, a, b)


def test_cut_drops_and_waits_for_nothing():
    modem, a, b = _pair()
    try:
        modem.cut = True
        a.write(b"lost line\r")
        modem.pump()
        assert b.in_waiting == 0 and modem.dropped == 10 and modem.taken[0] == 10
        modem.cut = False
        a.write(b"$GS\r")
        modem.pump()
        assert b.read(100) == b"$GS\r"
    finally:
        _close(modem, a, b)


def test_bytes_that_never_come_cost_one_bounded_wait():
    modem, a, b = _pair(bound_s=0.2)
    try:
        modem.written[0] += 5  # counted, never written: a lost write
        t = time.monotonic()
        modem.pump()
        assert 0.2 <= time.monotonic() - t < 2.0
        assert modem.stalls == 1
        a.write(b"ok\r")
        t = time.monotonic()
        modem.pump()
        assert time.monotonic() - t < 0.2 and modem.stalls == 1
        assert b.read(10) == b"ok\r"
    finally:
        _close(modem, a, b)


def test_write_timeout_still_counts_the_bytes():
    modem = NullModem(sync=True)

    class Timeout:
        def write(self, data):
            raise serial.SerialTimeoutException("Write timeout")

    try:
        port = modem.attach(0, Timeout())
        with pytest.raises(serial.SerialTimeoutException):
            port.write(b"abc")
        assert modem.written[0] == 3
    finally:
        modem.close()


def test_real_time_world_keeps_plain_ports_and_a_free_running_modem():
    w = World(virtual=False, out=None, ct=True)
    try:
        assert not w.modem.sync and not w.ct_modem.sync
        assert isinstance(w.evse_serial, serial.Serial)
        assert isinstance(w.port.evse_uart, serial.Serial)
        assert isinstance(w.ct_serial, serial.Serial) and isinstance(w.port.ct_stream, serial.Serial)
        assert w.run_until(lambda: w.app.rapi.up, 5000), "real-time link never came up"
    finally:
        w.close()
