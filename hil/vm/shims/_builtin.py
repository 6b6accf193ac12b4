"""VM shim helper: import the interpreter's own module `name`, bypassing the shim of that name."""
import sys


def builtin(name):
    saved = sys.path[:]
    mod = sys.modules.pop(name, None)
    sys.path[:] = [".frozen"]  # frozen modules (ssl) live there
    try:
        return __import__(name)
    finally:
        sys.path[:] = saved
        if mod is not None:
            sys.modules[name] = mod
