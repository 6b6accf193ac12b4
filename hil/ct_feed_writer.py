"""Encoder side of the HIL CT feed, and synthetic CT waveforms for the tests and the rig. Host only.

The protocol is described in device/dinamics/ct_feed.py (the decoder). In short:
    R <seq> <a1> <a2> <a3>*hh\\n        RMS amps per CT, "-" = no data on that CT
    S <ch> <rate_hz> <base64>*hh\\n     raw little-endian uint16 samples of one CT
where *hh is the XOR of the bytes before "*" in two hex digits.

`sine()` makes the 16-bit counts an ESP32-S3 ADC (via analogbufio) would deliver for a voltage-
output clamp biased at mid-rail, carrying a given current. The calibration conversion is restated
here on purpose (not imported from the device) so that tests catch a change on either side.
"""

import binascii
import math
import random
import sys
from array import array

SEQ_MOD = 65536
ADC_MAX = 65535
MAX_AMPS = 999.99


def amps_per_volt(calibration):
    """Seed calibration value -> amps per volt at the ADC pin: 277 is a 50 A / 1 V clamp."""
    return calibration * 50.0 / 277.0


def checksum(data):
    x = 0
    for c in data:
        x ^= c
    return x


def _finish(body, with_checksum):
    if with_checksum:
        body += b"*%02X" % checksum(body)
    return body + b"\n"


def format_amps(a):
    """None -> '-'; otherwise at most 2 decimals, trailing zeros dropped: 12.5, -3, 0.07."""
    if a is None:
        return "-"
    if not math.isfinite(a) or abs(a) > MAX_AMPS + 0.004:
        raise ValueError("amps out of range: %r" % (a,))
    s = "%.2f" % a
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s == "-0":
        s = "0"
    return s


def encode_rms(seq, amps3, checksum=True):
    """One R line (bytes, LF-terminated). seq wraps at 65536; amps None = no data."""
    if len(amps3) != 3:
        raise ValueError("three amps values")
    body = "R %d %s %s %s" % ((seq % SEQ_MOD,) + tuple(format_amps(a) for a in amps3))
    return _finish(body.encode("ascii"), checksum)


def encode_samples(ch, rate_hz, samples, checksum=True):
    """One S line (bytes, LF-terminated) for CT `ch` (1..3): samples are ints 0..65535."""
    if ch not in (1, 2, 3):
        raise ValueError("ch must be 1..3")
    if not 100 <= int(rate_hz) <= 200000:
        raise ValueError("rate_hz out of range")
    buf = array("H", samples)  # raises on values outside 0..65535
    if sys.byteorder == "big":
        buf.byteswap()
    b64 = binascii.b2a_base64(buf.tobytes(), newline=False)
    return _finish(b"S %d %d " % (ch, int(rate_hz)) + b64, checksum)


class CtFeedWriter:
    """Writes feed lines to a port (pyserial object, or anything with write(bytes))."""

    def __init__(self, port, checksum=True):
        self.port = port
        self.checksum = checksum
        self.seq = 0

    def send_rms(self, amps3):
        line = encode_rms(self.seq, amps3, self.checksum)
        self.seq = (self.seq + 1) % SEQ_MOD
        self.port.write(line)
        return line

    def send_samples(self, ch, rate_hz, samples):
        line = encode_samples(ch, rate_hz, samples, self.checksum)
        self.port.write(line)
        return line


# --- synthetic waveforms ---------------------------------------------------------------------

def _harmonic(h):
    order, rel = h[0], h[1]
    ph = h[2] if len(h) > 2 else 0.0
    return order, rel, math.radians(ph)


def current_at(theta, amps_rms, harmonics=(), phase_cut_deg=None):
    """Instantaneous current (A) at mains angle theta (radians, 0 = rising zero crossing).
    amps_rms is the RMS of the fundamental; harmonics are (order, amplitude relative to the
    fundamental[, phase_deg]); phase_cut_deg is a leading-edge dimmer's firing angle: the current
    is zero for that many degrees after each zero crossing of the half cycle."""
    if phase_cut_deg is not None:
        if (theta % math.pi) < math.radians(phase_cut_deg):
            return 0.0
    peak = amps_rms * math.sqrt(2.0)
    i = math.sin(theta)
    for h in harmonics:
        order, rel, ph = _harmonic(h)
        i += rel * math.sin(order * theta + ph)
    return peak * i


def true_rms(amps_rms, harmonics=(), phase_cut_deg=None, points=36000):
    """RMS of current_at() over one whole cycle (midpoint rule; the waveform is periodic, so this
    is exact up to ~1/points at a phase-cut step). Independent of frequency and phase."""
    acc = 0.0
    step = 2.0 * math.pi / points
    for k in range(points):
        i = current_at((k + 0.5) * step, amps_rms, harmonics, phase_cut_deg)
        acc += i * i
    return math.sqrt(acc / points)


def phase_cut_rms(amps_rms, phase_cut_deg):
    """Closed form for a cut pure sine: Irms = I1 * sqrt(1 - a/pi + sin(2a)/(2 pi))."""
    a = math.radians(phase_cut_deg)
    return amps_rms * math.sqrt(1.0 - a / math.pi + math.sin(2.0 * a) / (2.0 * math.pi))


def sine(amps_rms, mains_hz, rate_hz, n, calibration, bias_v=1.55, full_scale_v=3.1, phase=0,
         harmonics=(), dc_offset_v=0.0, noise_counts=0, seed=None, phase_cut_deg=None,
         adc_bits=12):
    """n ADC samples (list of ints 0..65535) of a voltage-output clamp carrying the current
    current_at(2 pi mains_hz t + phase), sampled at rate_hz from t = 0.
      calibration   seed value (277 = 50 A/V) for the clamp's A per V
      bias_v        the CT's mid-rail reference; dc_offset_v is added to it (bias error)
      phase         degrees
      noise_counts  standard deviation of Gaussian ADC noise, in 16-bit counts (seeded by seed)
      adc_bits      12: quantise like the S3 (raw 0..4095) and scale like analogbufio
                    (raw * 65535 // 4095); 16: plain 16-bit quantisation
    Values beyond the ADC range are clipped to 0 / 65535, as the converter does."""
    a_per_v = amps_per_volt(calibration)
    rng = random.Random(seed)
    top = (1 << adc_bits) - 1
    w = 2.0 * math.pi * mains_hz / rate_hz
    ph = math.radians(phase)
    v0 = bias_v + dc_offset_v
    noise_frac = noise_counts / ADC_MAX
    out = []
    for k in range(n):
        v = v0 + current_at(w * k + ph, amps_rms, harmonics, phase_cut_deg) / a_per_v
        x = v / full_scale_v
        if noise_counts:
            x += rng.gauss(0.0, noise_frac)
        raw = int(math.floor(x * top + 0.5))
        if raw < 0:
            raw = 0
        elif raw > top:
            raw = top
        out.append(raw * ADC_MAX // top)
    return out
