"""Allocations per idle scheduler pass of the full App (tests/test_idle_allocations.py runs it).

Runs unchanged on CPython and on the MicroPython unix VM (.venv/bin/micropython):
    python tests/idle_alloc_probe.py DEVICE_DIR [SHIM_DIR] [PASSES]
It builds the App the board builds (no CT feed, no network: a board without broker or CT) on a
virtual clock, with a UART on which the controller never answers, runs 120 s of virtual time
(start-up, the link probes, the settle), then freezes the clock where no timer is due and runs
PASSES idle passes (nothing arrives, nothing is due). Prints one line "IDLE {json}".

MicroPython: gc.mem_alloc() delta with the GC disabled = every byte allocated in those passes
(the unix VM is 64-bit: SHIM_DIR's time.monotonic_ns returns values above 2**62, so that, as on
the 32-bit board where it passes 2**30 one second after boot, each call makes a long int).
CPython: tracemalloc; every int above 256 is a heap object there (the pass counter, ticks), so the
figures are the bytes still held after the passes (leaks) and the largest transient peak.
"""
import gc
import sys

DEVICE = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] != "-":
    sys.path.insert(0, sys.argv[2])
PASSES = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
MICRO = sys.implementation.name != "cpython"
if MICRO:
    sys.path.insert(0, DEVICE)
else:
    sys.path.append(DEVICE)  # last: device/code.py must not shadow the standard library's `code`
_PERIOD = 1 << 29


class Clock:
    """The virtual clock (as hil/clock.py): starts 65 s before the tick wrap."""

    def __init__(self):
        self.ms = 0
        self.start = _PERIOD - 65000

    def now(self):
        return (self.start + self.ms) % _PERIOD

    def idle(self, ms):
        pass

    def epoch(self):
        return 0


class Fs:
    def __init__(self):
        self.files = {}

    def read(self, name):
        return self.files.get(name)

    def write(self, name, data):
        self.files[name] = bytes(data)


class QuietUart:
    """A controller that never answers: nothing to read, writes accepted."""
    in_waiting = 0
    timeout = 0

    def read(self, n=None):
        return None

    def readinto(self, buf):
        return None

    def write(self, data):
        return len(data)


class Port:
    def __init__(self):
        self.clock = Clock()
        self.fs = Fs()
        self.evse_uart = QuietUart()
        self.lines = 0

    def console(self, level, text):
        self.lines += 1

    def fatal(self, actor):
        pass


def idle_pass(sched, clock):
    """One turn of Scheduler.run_forever() (its sleep is the clock's idle(), measured apart)."""
    sched.run_once()
    if not sched.pending():
        sched.next_due_ms(clock.now())


def main():
    from dinamics.app import App

    port = Port()
    app = App(port)
    sched = app.sched
    for _ in range(12000):  # 120 s of virtual time in 10 ms passes
        port.clock.ms += 10
        sched.run_once()
    while sched.pending() or sched.next_due_ms(port.clock.now()) == 0:
        port.clock.ms += 1
        sched.run_once()
    for _ in range(20):
        sched.run_once()
    delivered = sched.delivered
    out = {"vm": sys.implementation.name, "passes": PASSES, "timers": len(sched._timers)}
    if MICRO:
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        for _ in range(PASSES):
            idle_pass(sched, port.clock)
        a1 = gc.mem_alloc()
        gc.enable()
        out["alloc_bytes"] = a1 - a0
        # The board clock's sleep (the loop's only wait): 200 naps of 1 ms.
        from dinamics.clock import BoardClock

        board = BoardClock()
        board.idle(1)
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        for _ in range(200):
            board.idle(1)
        a1 = gc.mem_alloc()
        gc.enable()
        out["board_idle_200_bytes"] = a1 - a0
        # The same quiet unit with time passing (10 ms a pass): its timers fire, the link probes.
        t0 = sched.delivered
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        for _ in range(PASSES):
            port.clock.ms += 10
            sched.run_once()
        a1 = gc.mem_alloc()
        gc.enable()
        out["ticking_alloc_bytes"] = a1 - a0
        out["ticking_delivered"] = sched.delivered - t0
    else:
        import tracemalloc

        gc.collect()
        tracemalloc.start()
        held0 = tracemalloc.get_traced_memory()[0]
        peak = 0
        for _ in range(PASSES):
            tracemalloc.reset_peak()
            cur, _ = tracemalloc.get_traced_memory()
            idle_pass(sched, port.clock)
            peak = max(peak, tracemalloc.get_traced_memory()[1] - cur)
        gc.collect()
        held1 = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out["held_bytes"] = held1 - held0
        out["peak_transient_bytes"] = peak
    out["delivered"] = sched.delivered - delivered - out.get("ticking_delivered", 0)
    out["passes_total"] = sched.passes
    import json

    print("IDLE " + json.dumps(out))


main()
