"""MicroPython unix VM shim for tests/idle_alloc_probe.py: the interpreter's time plus
CircuitPython's monotonic_ns/monotonic. monotonic_ns is offset above 2**62 so that on this 64-bit
VM it is a long int, as it is on the 32-bit board one second after boot."""
import sys

_saved = sys.path[:]
sys.modules.pop("time", None)
sys.path[:] = [".frozen"]
try:
    _t = __import__("time")
finally:
    sys.path[:] = _saved
    sys.modules["time"] = sys.modules.get("time") or _t

ticks_ms = _t.ticks_ms
ticks_add = _t.ticks_add
ticks_diff = _t.ticks_diff
time = _t.time
time_ns = _t.time_ns
sleep = _t.sleep
localtime = _t.localtime
_BIG = 1 << 62


def monotonic_ns():
    return _BIG + _t.ticks_us() * 1000


def monotonic():
    return _t.ticks_us() / 1e6
