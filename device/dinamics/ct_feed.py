"""HIL CT feed: decoder for the line protocol a test rig writes instead of real CT clamps.

On a board in HIL mode the rig writes to `usb_cdc.data` (timeout 0); on the host to a pyserial
port. Encoder: hil/ct_feed_writer.py.

Protocol: ASCII lines ending in LF (a CR before it is ignored), fields separated by spaces.
  R <seq> <a1> <a2> <a3>[*hh]        RMS amps per CT
      seq   0..65535, wrapping (lets the receiver see lost or repeated lines; ct_meter takes a
            line repeating the previous seq as not fresh)
      a1-3  amps, optional "-" sign (export; the rig only sends one when the installer enabled
            negative amperage), 1-3 integer digits, optionally "." and 1-2 decimals:
            "12", "-3.5", "0.07". A lone "-" means "no data on this CT".
  S <ch> <rate_hz> <base64>[*hh]     a raw sample block for one CT
      ch       1..3
      rate_hz  sample rate, 100..200000 (a rig should pick it with ct_math.sample_rate_for)
      base64   little-endian uint16 samples, 16-bit scaled ADC counts as analogbufio delivers
               them; at least ct_math.MIN_SAMPLES, at most max_samples. The block is cut to the
               largest whole number of mains cycles it holds, then analysed by ct_math with the
               channel's calibration, like a real capture.
  *hh  optional checksum: XOR of all bytes before the "*", two hex digits. The writer always
       sends it; lines typed by hand in a terminal may leave it out.
  Empty lines and lines starting with "#" are ignored (not errors).

Robustness: the decoder never raises on input. A malformed line (bad field, bad checksum, too long)
counts in `errors` and is dropped; the next LF resynchronises. A line longer than `max_line` is
discarded while it arrives (the buffer never grows beyond max_line). Decoded readings wait in a
short queue; when it is full the OLDEST is dropped (`dropped`): fresh data matters most.

pop() -> (seq, (a1, a2, a3), (f1, f2, f3)) or None
  a_i   float amps, or None where there is no data (its flag is ct_math.CT_NO_DATA)
  f_i   ct_math flags; an R line gives CT_OK or CT_NO_DATA
  An S line yields seq None and data only for its own channel (the others None / CT_NO_DATA),
  just as the board captures one CT after another.
"""

import sys
from array import array

from binascii import a2b_base64

from dinamics import ct_math

SEQ_MOD = 65536
RATE_MIN = 100
RATE_MAX = 200000

_BIG_ENDIAN = getattr(sys, "byteorder", "little") == "big"


def _uint(tok, max_digits):
    """Decimal digits -> int, or -1 (no sign, no spaces, 1..max_digits digits)."""
    if not tok or len(tok) > max_digits:
        return -1
    v = 0
    for c in tok:
        if c < 48 or c > 57:
            return -1
        v = v * 10 + c - 48
    return v


def _centiamps(tok):
    """'-12.34' -> -1234; '-' -> None; malformed -> False."""
    if tok == b"-":
        return None
    neg = tok[:1] == b"-"
    if neg:
        tok = tok[1:]
    dot = tok.find(b".")
    if dot < 0:
        whole = _uint(tok, 3)
        frac = 0
    else:
        whole = _uint(tok[:dot], 3)
        ftok = tok[dot + 1:]
        frac = _uint(ftok, 2)
        if len(ftok) == 1:
            frac *= 10
    if whole < 0 or frac < 0:
        return False
    v = whole * 100 + frac
    return -v if neg else v


def _hex2(tok):
    if len(tok) != 2:
        return -1
    v = 0
    for c in tok:
        if 48 <= c <= 57:
            d = c - 48
        elif 65 <= c <= 70:
            d = c - 55
        elif 97 <= c <= 102:
            d = c - 87
        else:
            return -1
        v = v * 16 + d
    return v


def checksum(data):
    """XOR of the bytes (the value sent after '*')."""
    x = 0
    for c in data:
        x ^= c
    return x


class CtFeedDecoder:
    def __init__(self, calibrations=(277, 277, 277), mains_hz=50, max_samples=4096, queue_len=8,
                 full_scale_v=ct_math.ADC_FULL_SCALE_V, noise_floor_a=ct_math.NOISE_FLOOR_A):
        self.mains_hz = mains_hz
        self.max_samples = max_samples
        # longest line: "S c rrrrrr " + base64 of max_samples * 2 bytes + "*hh\r"
        self.max_line = 16 + ((2 * max_samples + 2) // 3) * 4 + 4
        self.queue_len = queue_len
        self.channels = [ct_math.CtChannel(277, full_scale_v, noise_floor_a) for _ in range(3)]
        self.set_calibrations(calibrations)
        self._buf = bytearray()
        self._skip = False  # discarding the rest of an over-long line
        self._queue = []
        self.lines = 0  # good lines decoded
        self.errors = 0  # malformed lines (including over-long ones)
        self.overflows = 0  # over-long lines
        self.dropped = 0  # readings pushed out of a full queue
        self.last_seq = None
        self.last_rate = 0  # rate_hz of the last S block

    def set_calibrations(self, calibrations):
        for i in range(3):
            self.channels[i].set_calibration(calibrations[i])

    def pending(self):
        return len(self._queue)

    def pop(self):
        if self._queue:
            return self._queue.pop(0)
        return None

    def read_from(self, port, max_bytes=512):
        """Non-blocking read of what `port` has (usb_cdc.data with timeout 0, or pyserial), at
        most max_bytes per call to keep a scheduler pass short. Returns bytes fed."""
        try:
            n = port.in_waiting
        except (AttributeError, OSError):
            n = max_bytes
        if not n:
            return 0
        data = port.read(n if n < max_bytes else max_bytes)
        if not data:
            return 0
        self.feed(data)
        return len(data)

    def feed(self, data):
        """Take any chunk of bytes (None, b"" and partial lines are fine)."""
        if not data:
            return
        if not isinstance(data, bytes):
            try:
                data = bytes(data)  # bytearray / memoryview from readinto
            except TypeError:  # a str: a caller bug, but never raise from here
                self.errors += 1
                return
        start = 0
        end = len(data)
        while start < end:
            nl = data.find(b"\n", start)
            stop = end if nl < 0 else nl
            if self._skip:
                pass
            elif len(self._buf) + stop - start > self.max_line:
                self._buf = bytearray()
                self._skip = True
                self.errors += 1
                self.overflows += 1
            elif nl >= 0 and not self._buf:
                self._line(data[start:stop])  # the common case: a whole line in one chunk
                start = nl + 1
                continue
            else:
                self._buf.extend(data[start:stop])
            if nl < 0:
                return
            if self._skip:
                self._skip = False
            else:
                line = bytes(self._buf)
                self._buf = bytearray()
                self._line(line)
            start = nl + 1

    # --- one line -------------------------------------------------------------------------------
    def _line(self, line):
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line or line[:1] == b"#":
            return
        try:
            ok = self._parse(line)
        except Exception:  # never raise on input (MemoryError for a huge block included)
            ok = False
        if ok:
            self.lines += 1
        else:
            self.errors += 1

    def _parse(self, line):
        star = line.find(b"*")
        if star >= 0:
            if _hex2(line[star + 1:]) != checksum(line[:star]):
                return False
            line = line[:star]
        parts = line.split(b" ")
        if len(parts) != 5 and len(parts) != 4:
            return False
        tag = parts[0]
        if tag == b"R" and len(parts) == 5:
            return self._rms(parts)
        if tag == b"S" and len(parts) == 4:
            return self._samples(parts)
        return False

    def _rms(self, parts):
        seq = _uint(parts[1], 5)
        if seq < 0 or seq >= SEQ_MOD:
            return False
        amps = [None, None, None]
        flags = [ct_math.CT_NO_DATA, ct_math.CT_NO_DATA, ct_math.CT_NO_DATA]
        for i in range(3):
            c = _centiamps(parts[2 + i])
            if c is False:
                return False
            if c is not None:
                amps[i] = c / 100
                flags[i] = ct_math.CT_OK
        self.last_seq = seq
        self._push((seq, tuple(amps), tuple(flags)))
        return True

    def _samples(self, parts):
        ch = _uint(parts[1], 1)
        rate = _uint(parts[2], 6)
        b64 = parts[3]
        if ch < 1 or ch > 3 or rate < RATE_MIN or rate > RATE_MAX:
            return False
        if len(b64) % 4 or len(b64) > ((2 * self.max_samples + 2) // 3) * 4:
            return False
        raw = a2b_base64(b64)
        n = len(raw) >> 1
        if len(raw) & 1 or n < ct_math.MIN_SAMPLES or n > self.max_samples:
            return False
        buf = array("H", raw)
        raw = None
        if _BIG_ENDIAN:
            buf.byteswap()
        # cut to whole mains cycles so that the mean is the bias (see ct_math)
        cycles = n * self.mains_hz // rate
        if cycles >= 1:
            w = ct_math.window_samples(rate, self.mains_hz, cycles)
            if w < n:
                n = w
        chan = self.channels[ch - 1]
        amps = chan.update(buf, n)
        a = [None, None, None]
        f = [ct_math.CT_NO_DATA, ct_math.CT_NO_DATA, ct_math.CT_NO_DATA]
        f[ch - 1] = chan.flags
        if chan.flags != ct_math.CT_NO_DATA:
            a[ch - 1] = amps
        self.last_rate = rate
        self._push((None, tuple(a), tuple(f)))
        return True

    def _push(self, reading):
        if len(self._queue) >= self.queue_len:
            self._queue.pop(0)
            self.dropped += 1
        self._queue.append(reading)
