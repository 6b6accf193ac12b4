"""Power-safe settings store: two slots (A/B) on a filesystem, sequence number + CRC32.

Filesystem port (duck-typed), implemented by `FlashFs` here and `hil.host_fs.DirFs` on the host:
  fs.read(name)        -> bytes, or None when missing/unreadable
  fs.write(name, data) -> None; may be cut by a power loss at ANY byte (slot left truncated,
                          part new/part old, or with flipped bytes); raises StoreError on failure.

Record layout (big endian), one per slot file `base + ".a"` / `base + ".b"`:
  b"DNS1" | u32 seq | u16 body length | u32 CRC32(magic+seq+length+body) | JSON body (a dict)

`save()` always writes the slot that does NOT hold the newest valid record, so the last good
record is never touched; a torn write only destroys the older copy. `load()` takes the valid
record with the newer sequence number. Sequence numbers are u32 compared with serial-number
arithmetic (RFC 1982): a is newer than b when (a - b) mod 2**32 is in 1 .. 2**31-1. The two slots
only ever differ by a small amount, so the 0xFFFFFFFF -> 0 wrap is handled exactly (0 is newer
than 0xFFFFFFFF). A record whose trailing bytes exceed its length is accepted (the CRC covers it).
"""

import binascii
import errno
import json
import os
import struct

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

MAGIC = b"DNS1"
_HDR = ">4sIHI"  # magic, seq, body length, crc
HDR_SIZE = 14  # struct.calcsize(_HDR)
_CRC_AT = const(10)  # the CRC field follows magic + seq + length
_SEQ_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_MAX_BODY = const(4096)
_EROFS = getattr(errno, "EROFS", 30)


class StoreError(Exception):
    pass


def seq_newer(a, b):
    """True when sequence number a is newer than b (u32 serial-number arithmetic)."""
    d = (a - b) & _SEQ_MASK
    if d == _HALF:  # ambiguous: never happens with two slots; decide deterministically
        return a > b
    return 0 < d < _HALF


class FlashFs:
    """Plain files under `root` on the board (CIRCUITPY must be remounted writable in boot.py)."""

    def __init__(self, root="/"):
        self.root = root if root.endswith("/") else root + "/"

    def read(self, name):
        try:
            with open(self.root + name, "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        path = self.root + name
        try:
            with open(path, "wb") as f:
                n = f.write(data)
                f.flush()
                if hasattr(os, "fsync"):
                    os.fsync(f.fileno())  # CPython: this file only
            if not hasattr(os, "fsync") and hasattr(os, "sync"):
                os.sync()  # CircuitPython: flush the filesystem cache to flash
        except OSError as e:
            code = e.args[0] if e.args else None
            if code == _EROFS:
                raise StoreError(
                    "read-only filesystem writing %s: USB drive mounted? "
                    '(boot.py must storage.remount("/", readonly=False))' % path
                )
            raise StoreError("cannot write %s: %s" % (path, e))
        if n is not None and n != len(data):
            raise StoreError("short write %s: %d of %d bytes" % (path, n, len(data)))


class SlotStore:
    """Two-slot settings store over a filesystem port.

    load() -> dict or None; save(d) -> seq; erase() -> seq (an empty-dict record).
    `seq`/`slot` describe the newest valid record known (slot 0 = ".a", 1 = ".b", None = none).
    `stats`: loads, saves, corrupt_slots_seen (slots present but invalid, counted by load()).
    """

    def __init__(self, fs, base="settings", max_body=_MAX_BODY):
        self.fs = fs
        self.names = (base + ".a", base + ".b")
        self.max_body = min(max_body, 0xFFFF)
        self.seq = 0
        self.slot = None
        self.stats = {"loads": 0, "saves": 0, "corrupt_slots_seen": 0}
        self.corrupt = []  # slot files load() found present but invalid (to be reported once)

    # --- record codec --------------------------------------------------------------------------
    def _parse(self, data):
        """-> (seq, dict), None for a missing slot, False for a corrupt one."""
        if data is None:
            return None
        if len(data) < HDR_SIZE:
            return False
        magic, seq, n, crc = struct.unpack_from(_HDR, data, 0)
        if magic != MAGIC or n > self.max_body or len(data) < HDR_SIZE + n:
            return False
        mv = memoryview(data)
        c = binascii.crc32(mv[HDR_SIZE : HDR_SIZE + n], binascii.crc32(mv[:_CRC_AT]))
        if (c & _SEQ_MASK) != crc:
            return False
        try:
            obj = json.loads(str(data[HDR_SIZE : HDR_SIZE + n], "utf-8"))
        except ValueError:
            return False
        if not isinstance(obj, dict):
            return False
        return seq, obj

    def _encode(self, d):
        if not isinstance(d, dict):
            raise StoreError("settings must be a dict")
        try:
            try:
                s = json.dumps(d, separators=(",", ":"))
            except TypeError:  # no `separators` support, or a value JSON cannot encode
                s = json.dumps(d)
        except (TypeError, ValueError) as e:
            raise StoreError("settings not JSON-serialisable: %s" % e)
        body = s.encode("utf-8")
        if len(body) > self.max_body:
            raise StoreError("settings too large: %d > %d bytes" % (len(body), self.max_body))
        return body

    def _scan(self, count):
        """Read both slots -> (slot, seq, dict) of the newest valid record, or (None, 0, None)."""
        best_slot, best_seq, best = None, 0, None
        for i in (0, 1):
            r = self._parse(self.fs.read(self.names[i]))
            if r is False:
                if count:
                    self.stats["corrupt_slots_seen"] += 1
                    self.corrupt.append(self.names[i])
                continue
            if r is None:
                continue
            if best_slot is None or seq_newer(r[0], best_seq):
                best_slot, best_seq, best = i, r[0], r[1]
            r = None
        return best_slot, best_seq, best

    # --- API -----------------------------------------------------------------------------------
    def load(self):
        """The newest valid settings dict, or None when neither slot holds a valid record."""
        self.stats["loads"] += 1
        slot, seq, d = self._scan(True)
        self.slot = slot
        if slot is not None:
            self.seq = seq
        return d

    def save(self, d):
        """Write d with seq+1 to the slot not holding the newest valid record; return the seq.

        The slots are re-read first, so a record that went bad since load() is never trusted as
        the one to keep. On StoreError (or a power cut) the previous record is still intact.
        """
        body = self._encode(d)
        slot, seq, _ = self._scan(False)
        if slot is None:
            seq = self.seq  # nothing valid on flash: continue from what we last knew
        seq = (seq + 1) & _SEQ_MASK
        target = 1 if slot == 0 else 0
        n = len(body)
        rec = bytearray(HDR_SIZE + n)
        struct.pack_into(">4sIH", rec, 0, MAGIC, seq, n)
        rec[HDR_SIZE:] = body
        body = None
        mv = memoryview(rec)
        crc = binascii.crc32(mv[HDR_SIZE:], binascii.crc32(mv[:_CRC_AT])) & _SEQ_MASK
        struct.pack_into(">I", rec, _CRC_AT, crc)
        self.fs.write(self.names[target], rec)
        self.slot = target
        self.seq = seq
        self.stats["saves"] += 1
        return seq

    def erase(self):
        """Forget all settings (delete_settings): safely write an empty-dict record."""
        return self.save({})
