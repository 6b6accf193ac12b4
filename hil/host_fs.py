"""Host filesystem ports for dinamics.store: a state directory, and a power-cut simulator for tests.

Same protocol as dinamics.store.FlashFs: read(name) -> bytes or None; write(name, data).
"""

import os
import sys

try:
    from dinamics.store import StoreError
except ImportError:  # hil/__init__ normally puts device/ first on sys.path
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device"))
    from dinamics.store import StoreError


class DirFs:
    """Files in a state directory. Writes are plain open/write/flush/fsync in place (NOT an atomic
    rename): the two-slot scheme of SlotStore is what makes settings survive a torn write."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)

    def _file(self, name):
        return os.path.join(self.path, name)

    def read(self, name):
        try:
            with open(self._file(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        path = self._file(name)
        try:
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise StoreError("cannot write %s: %s" % (path, e)) from e
        try:  # make a newly created directory entry durable too (best effort, POSIX only)
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


class PowerCut(Exception):
    """Raised by CuttingFs when a simulated power cut stops a write (the device 'reboots')."""


class CuttingFs:
    """In-memory fs (`files`: name -> bytes) that can tear the next write or flip stored bytes.

    cut_next(n, keep_old=True): the next write stores only its first n bytes, then raises PowerCut.
      keep_old=True  -> old bytes beyond n stay in place (flash sectors not yet rewritten);
      keep_old=False -> the file is truncated to n bytes.
      n >= len(data) -> the whole write lands, then the power goes (still raises PowerCut).
    flip(name, index, mask=0xFF): XOR one stored byte (bit rot / partly programmed cell).
    flip_next(index, mask=0xFF): the next write lands completely but with that byte flipped.
    `writes` logs the names written (including cut ones).
    """

    def __init__(self, files=None):
        self.files = dict(files or {})
        self.writes = []
        self._cut = None
        self._flip = None

    def copy(self):
        return CuttingFs(self.files)

    def read(self, name):
        return self.files.get(name)

    def cut_next(self, n, keep_old=True):
        self._cut = (int(n), bool(keep_old))

    def flip_next(self, index, mask=0xFF):
        self._flip = (int(index), mask)

    def flip(self, name, index, mask=0xFF):
        b = bytearray(self.files[name])
        b[index] ^= mask
        self.files[name] = bytes(b)

    def write(self, name, data):
        data = bytes(data)
        self.writes.append(name)
        cut, self._cut = self._cut, None
        flip, self._flip = self._flip, None
        if flip is not None:
            b = bytearray(data)
            b[flip[0]] ^= flip[1]
            data = bytes(b)
        if cut is None:
            self.files[name] = data
            return
        n, keep_old = cut
        new = data[:n]
        if keep_old:
            new += self.files.get(name, b"")[len(new):]
        self.files[name] = new
        raise PowerCut("power cut after %d of %d bytes of %s" % (min(n, len(data)), len(data), name))
