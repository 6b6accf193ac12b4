"""VM shim: CircuitPython's re, whose match objects have groups() (adafruit_httpserver's routes
call it); the unix port's have group(n) only. Everything else is the interpreter's own re."""
from _builtin import builtin

_re = builtin("re")


class _Match:
    def __init__(self, m):
        self._m = m

    def group(self, *n):
        return self._m.group(*n)

    def groups(self):
        out = []
        i = 1
        while True:
            try:
                out.append(self._m.group(i))
            except IndexError:
                return tuple(out)
            i += 1

    def __getattr__(self, name):
        return getattr(self._m, name)


class _Pattern:
    def __init__(self, p):
        self._p = p

    def match(self, s):
        m = self._p.match(s)
        return None if m is None else _Match(m)

    def search(self, s):
        m = self._p.search(s)
        return None if m is None else _Match(m)

    def __getattr__(self, name):
        return getattr(self._p, name)


def compile(pattern, flags=0):  # noqa: A001 - re's own name
    return _Pattern(_re.compile(pattern, flags) if flags else _re.compile(pattern))


def match(pattern, s):
    return compile(pattern).match(s)


def search(pattern, s):
    return compile(pattern).search(s)


sub = _re.sub
split = getattr(_re, "split", None)
