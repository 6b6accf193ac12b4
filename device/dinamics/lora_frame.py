"""LoRa frames: HMAC-SHA256 authentication, frame counters and the replay window (docs/lora.md).

Frame (no RadioHead header: the radio adapter writes the FIFO itself):
  byte 0      flags: bits 0-1 type (1 DATA, 2 ACK, 3 RESYNC), bit 2 the ack field is there,
              bit 3 please ack, bit 7 the sender's role (0 unit, 1 bridge)
  bytes 1-4   the sender's frame counter, u32 big endian, never reused (persisted in blocks)
  [1 byte]    the low 8 bits of the peer counter this frame acknowledges (only with bit 2; the
              sender has at most a few frames waiting, with consecutive counters: unambiguous)
  body        DATA: RAPI lines, each ending in CR; RESYNC: u32 "send above this"
  last 8      tag: HMAC-SHA256(key, everything before it), first 8 bytes

CircuitPython has hashlib.sha256 but no hmac module: HMAC (RFC 2104) is built here over hashlib
(tests/test_lora.py checks it against CPython's hmac).
"""
import hashlib
import struct

try:
    from micropython import const
except ImportError:
    def const(expr):
        return expr

DATA = const(1)
ACK = const(2)
RESYNC = const(3)
F_ACK = const(4)
F_AREQ = const(8)
F_BRIDGE = const(0x80)
TAG = const(8)
WINDOW = const(32)  # the replay window: counters up to 31 below the highest seen, once each
BLOCK = const(256)  # counters reserved per flash write
MAX_FRAME = const(200)


def hmac_sha256(key, msg):
    """RFC 2104 HMAC over hashlib.sha256 (one-shot; see Auth for the per-key pads)."""
    return Auth(key).mac(msg)


class Auth:
    """Keyed MAC with the pads computed once per key."""

    def __init__(self, key):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        k = bytearray(64)
        k[:len(key)] = key
        self._ipad = bytes([b ^ 0x36 for b in k])
        self._opad = bytes([b ^ 0x5C for b in k])

    def mac(self, msg):
        h = hashlib.sha256(self._ipad)
        h.update(msg)
        inner = h.digest()
        h = hashlib.sha256(self._opad)
        h.update(inner)
        return h.digest()

    def tag(self, msg):
        return self.mac(msg)[:TAG]

    def check(self, frame):
        """True when the last TAG bytes are the tag of the rest (compared in constant time)."""
        n = len(frame) - TAG
        if n < 5:
            return False
        want = self.mac(memoryview(frame)[:n])
        d = 0
        for i in range(TAG):
            d |= want[i] ^ frame[n + i]
        return d == 0


def key_from_hex(text):
    """The shared key from the `lora_key` setting (32-64 hex digits); None when unusable."""
    try:
        k = bytes.fromhex(text)
    except ValueError:
        return None
    return k if 16 <= len(k) <= 32 else None


def encode(auth, kind, bridge, counter, ack=None, body=b"", areq=False):
    flags = kind | (F_BRIDGE if bridge else 0) | (F_AREQ if areq else 0)
    if ack is not None:
        head = struct.pack(">BIB", flags | F_ACK, counter, ack & 0xFF)
    else:
        head = struct.pack(">BI", flags, counter)
    msg = head + body
    return msg + auth.tag(msg)


def decode(auth, frame, from_bridge):
    """(kind, counter, ack or None, body, areq) of an authentic frame from the peer, else None."""
    if len(frame) < 5 + TAG or len(frame) > MAX_FRAME or not auth.check(frame):
        return None
    flags = frame[0]
    if bool(flags & F_BRIDGE) != from_bridge:
        return None  # our own frame played back to us
    kind = flags & 3
    counter = struct.unpack_from(">I", frame, 1)[0]
    at = 5
    ack = None
    if flags & F_ACK:
        if len(frame) < 6 + TAG:
            return None
        ack = frame[5]
        at = 6
    return kind, counter, ack, bytes(frame[at:len(frame) - TAG]), bool(flags & F_AREQ)


class Replay:
    """Highest counter seen and a bitmap of the WINDOW below it; `floor`: nothing at or below
    it is accepted (set at boot from the persisted mark)."""

    def __init__(self, floor=0):
        self.top = floor
        self.floor = floor
        self.bits = 0

    def fresh(self, c):
        """0 new, 1 a repeat or too old, 2 at or below the floor (after our reboot)."""
        if c <= self.floor:
            return 2
        if c > self.top:
            return 0
        d = self.top - c
        if d >= WINDOW or self.bits & (1 << d):
            return 1
        return 0

    def mark(self, c):
        if c > self.top:
            s = c - self.top
            self.bits = ((self.bits << s) | 1) & 0xFFFFFFFF if s < WINDOW else 1
            self.top = c
        else:
            self.bits |= 1 << (self.top - c)


class Counters:
    """The own counter and the peer's mark, persisted in blocks through a SlotStore, so a counter
    is never used twice and a frame heard before a reboot is never accepted again."""

    def __init__(self, store):
        self.store = store
        d = store.load() or {}
        self.tx_mark = int(d.get("tx", 0))
        self.rx_mark = int(d.get("rx", 0))
        self.tx = self.tx_mark  # the next counter goes above every one used before the reboot
        self.writes = 0
        self._save(self.tx_mark + BLOCK, self.rx_mark)
        self.rx_floor = self.rx_mark + BLOCK if d else 0

    def _save(self, tx, rx):
        self.store.save({"tx": tx, "rx": rx})
        self.tx_mark = tx
        self.rx_mark = rx
        self.writes += 1

    def next(self):
        self.tx += 1
        if self.tx >= self.tx_mark:
            self._save(self.tx + BLOCK, self.rx_mark)
        return self.tx

    def jump(self, above):
        """RESYNC from the peer: continue above `above`."""
        if above >= self.tx:
            self.tx = above
            self._save(self.tx + BLOCK, self.rx_mark)

    def heard(self, c):
        """Call before accepting peer counter c (its mark is durable first)."""
        if c >= self.rx_mark + BLOCK:
            self._save(self.tx_mark, c)
