"""VM shim (MicroPython unix): CircuitPython's time has monotonic_ns/monotonic; the unix port has
neither. Everything else is the interpreter's own time module. DINAMICS_VM_RUN_S (set by the
runner) ends the run: the first sleep after the deadline raises SystemExit, which no supervision
boundary catches (they catch Exception), so code.py's run_forever() unwinds to the runner."""
from _builtin import builtin

_t = builtin("time")
ticks_ms = _t.ticks_ms
ticks_us = _t.ticks_us
ticks_add = _t.ticks_add
ticks_diff = _t.ticks_diff
time = _t.time
time_ns = _t.time_ns
localtime = _t.localtime
mktime = _t.mktime
sleep_ms = _t.sleep_ms
_T0 = _t.time_ns()
deadline_ns = None


def monotonic_ns():
    return _t.time_ns() - _T0


def monotonic():
    return (_t.time_ns() - _T0) / 1e9


def sleep(s):
    if deadline_ns is not None and monotonic_ns() >= deadline_ns:
        raise SystemExit(0)
    _t.sleep(s)
