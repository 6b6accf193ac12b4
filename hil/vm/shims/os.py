"""VM shim: CircuitPython's os.getenv reads /settings.toml and returns ints as ints; here the
values come from the process environment and digits are returned as ints, as settings.toml would."""
from _builtin import builtin

_os = builtin("os")
remove = _os.remove
rename = _os.rename
listdir = _os.listdir
stat = _os.stat
mkdir = _os.mkdir
sep = "/"
urandom = getattr(_os, "urandom", None)
uname = getattr(_os, "uname", None)
try:
    _get = _os.getenv
except AttributeError:  # the wasm port has no environment: the host writes _vmenv.py
    from _vmenv import ENV

    _get = ENV.get


def getenv(name, default=None):
    v = _get(name)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        return v


def sync():
    pass
