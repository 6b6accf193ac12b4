"""VM shim: CircuitPython has a traceback module (adafruit_httpserver imports print_exception);
the MicroPython unix and wasm ports do not."""
import sys


def print_exception(exc, value=None, tb=None, limit=None, file=None, chain=True):
    sys.print_exception(value if value is not None and not isinstance(value, type) else exc)
