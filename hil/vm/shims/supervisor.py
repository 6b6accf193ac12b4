"""VM shim: supervisor.ticks_ms(), 29-bit wrapping ms as on a board (adafruit_ticks prefers it)."""
import time

_OFFSET = (1 << 29) - 60000  # start 60 s before the wrap, as CircuitPython's ticks do after boot


def ticks_ms():
    return (time.ticks_ms() + _OFFSET) & ((1 << 29) - 1)


runtime = None
