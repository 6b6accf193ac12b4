"""CT measurement math: RMS of a whole-cycle ADC window, calibration, plausibility flags.

Pure: no board modules, no I/O. Use from the ct_meter actor:
    rate = sample_rate_for(nominal_rate, mains_hz, cycles)   # once, when settings change
    n = window_samples(rate, mains_hz, cycles)
    buf = array('H', bytes(2 * n))                             # once, reused
    ... per capture, one CT at a time: got = adc.readinto(buf); amps = ct[i].update(buf, got)
    ct[i].amps, ct[i].flags (CT_OK = 0), ct[i].mean / lo / hi for diagnostics
The HIL feed decoder (dinamics.ct_feed) runs raw sample blocks through the same code.

Samples are 16-bit "scaled" counts as analogbufio delivers them on the ESP32-S3: the raw 12-bit
conversion times 65535 // 4095, so 0 .. 65535 spans 0 .. ADC full scale (about 3.1 V at 12 dB).

RMS: the DC bias (the CT's mid-rail reference) is removed as the mean of the same window. Over a
whole number of mains cycles the AC part averages to zero, so this is exact, unlike EmonLib's
slow IIR offset tracker (which drifts after a step and starts from a wrong guess). The window is
whole cycles up to half a sample (see window_samples); mains frequency drift of a few 0.1 %
changes the reading by far less than the 1 % we aim for.

Two implementations, same results (within float rounding):
- `ulab.numpy` when importable (full CircuitPython builds): C loops, no per-sample work in Python.
- a tight pure-Python loop otherwise (and on CPython in the tests). It squares integer deviations
  from an integer mean and accumulates them in a small int below 2**29 (small ints on the board
  are 31-bit and never allocate), flushing into a float. Floats on the board are 30-bit (22-bit
  mantissa): the flushes cost at most ~1e-4 relative, far below the ADC's own errors.
"""

import math

try:
    from ulab import numpy as _np
except ImportError:  # CPython, or a CircuitPython build without ulab
    _np = None

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

ADC_MAX = 65535  # scaled count of a full-scale conversion
ADC_FULL_SCALE_V = 3.1  # ESP32-S3 ADC1, 12 dB attenuation: about 3.1 V reads as 65535
BIAS_V = 1.55  # CT reference: mid-range, so a clamp's +/-1.41 V peak (1 V rms) fits both ways

# Calibration, in the seed's units (the "set_calibration" value): 277 = a 50 A / 1 V clamp.
# The seed handed value / 10 (27.7) to EmonLib as ICAL, and EmonLib computed
#   Irms = ICAL * (3.3 V / ADC_COUNTS) * rms_counts
# with ADC_COUNTS and the real ADC range (6 dB attenuation, about 1.8 V full scale) not matching its
# 3.3 V assumption, so ICAL was "amps per volt bent by the ADC's scaling": 27.7 ~ 50 * 1.83 / 3.3.
# We calibrate in physical units instead: amps per volt at the ADC pin, from the same setting
# value, linearly, so that the numbers installers already know keep their meaning:
#   amps_per_volt = calibration * 50 / 277       277 -> 50.0 A/V, 544 -> 98.2 A/V (~ a 100 A/1 V
# clamp; the seed's 544 was 1.8 % short of exactly 100, keep it or set 554 for 100.0 A/V).
# A setting tuned against a clamp meter (e.g. 283) scales the reading proportionally, as before.
_CAL_REF = const(277)  # setting value ...
CAL_REF_A_PER_V = 50.0  # ... that means this many amps per volt at the ADC pin
CAL_OFF = 5  # seed: a calibration <= 5 switches the CTs off

# Plausibility flags (bit mask; the ct.reading message carries one per CT).
CT_OK = 0
CT_SATURATED = 1  # a live waveform hit a rail: it is clipped, the reading is too low
CT_DISCONNECTED = 2  # the mean (bias) is far from mid-rail: no bias network / CT, pin pulled away
CT_STUCK = 4  # no variation at all in the window: ADC not converting, or a dead input
CT_NO_DATA = 8  # no reading: CT not fitted/disabled, short capture, "-" on the HIL feed

# Why 16: one 12-bit step in scaled counts. Raw 0 scales to 0..15 and raw 4095 to 65535, so
# "below 16" / "above 65519" means the converter sat at its end stop for that sample.
_RAIL_MARGIN_COUNTS = const(16)
# Why 0.5 V: a healthy bias is 1.55-1.65 V (divider from the 3.3 V rail, 1 % resistors, supply
# +/-5 %) read through the S3's uncalibrated ADC (gain/offset error ~ +/-5 %): within ~0.3 V of
# 1.55 V. A broken bias network or an unplugged input pulled by a pull-up/-down sits near 0 V or
# near 3.1 V. 0.5 V leaves room on both sides. (A CT unplugged from a jack that keeps the bias
# network reads exactly like 0 A: no measurement can tell those apart.)
BIAS_TOLERANCE_V = 0.5
# Why lo == hi: a live ESP32 ADC shows a few LSB of noise even with no current; hundreds of
# identical conversions mean the converter is not converting, or the pin sits hard at a rail
# (which clips the noise away). Synthetic rig data for an idle CT must therefore add some noise.
_STUCK_SPAN_COUNTS = const(0)

NOISE_FLOOR_A = 0.05  # readings below this report 0 (ADC noise, not current)
MIN_SAMPLES = 8  # fewer samples than this is not a measurement

_ACC_FLUSH = 1 << 29  # keep the pure loop's accumulator a small int (board small ints: 31 bits)


def window_samples(sample_rate_hz, mains_hz, cycles):
    """Samples covering `cycles` mains cycles, rounded to the NEAREST whole sample (half rounds
    up): the window is off by at most half a sample, i.e. 0.5 / (rate / mains_hz) of a cycle
    (0.5 % of one cycle at 5 kHz / 50 Hz), which moves the RMS by well under 0.1 %. Pick the rate
    with sample_rate_for (not a whole number of samples per cycle, on purpose). Use the ADC's
    actual rate if it differs from the requested one."""
    if sample_rate_hz <= 0 or mains_hz <= 0 or cycles < 1:
        raise ValueError("rate, mains_hz > 0 and cycles >= 1")
    if isinstance(sample_rate_hz, int) and isinstance(mains_hz, int) and isinstance(cycles, int):
        n = (2 * sample_rate_hz * cycles + mains_hz) // (2 * mains_hz)  # exact integer rounding
    else:
        n = int(sample_rate_hz * cycles / mains_hz + 0.5)
    return n if n > 0 else 1


def sample_rate_for(nominal_hz, mains_hz, cycles):
    """An integer sample rate near nominal_hz whose window (window_samples) holds n samples with
    n = 1 (mod cycles): successive cycles are then sampled at phases shifted by about 1/cycles of
    a sample, so the window sees the waveform on a grid `cycles` times finer than one cycle's
    (equivalent-time sampling). That matters for waveforms with steps (phase-cut dimmers, SMPS
    inrush): with a whole number of samples per cycle every cycle samples the same instants,
    and a step that falls right on a sample is counted whole or not at all (e.g. 2 % RMS error
    for a 90 degree cut at 100 samples per cycle). Smooth waveforms do not care."""
    if cycles < 2:
        return int(nominal_hz + 0.5)
    spc = int(nominal_hz / mains_hz + 0.5)  # whole samples per cycle near nominal
    n = cycles * spc + 1
    return (2 * n * mains_hz + cycles) // (2 * cycles)  # nearest integer rate for n samples


def set_backend(np_module):
    """Use `np_module` (ulab.numpy, or None for the pure loop). For tests and benchmarks."""
    global _np
    _np = np_module


def backend():
    return "pure" if _np is None else "ulab"


def _window(buf, n):
    if n == len(buf):
        return buf
    try:
        return memoryview(buf)[:n]  # no copy (array('H') on the board)
    except TypeError:
        return buf[:n]  # a list (tests, host tools)


def _analyse_pure(buf, n):
    w = _window(buf, n)
    s = 0
    lo = ADC_MAX + 1
    hi = -1
    for v in w:
        s += v
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    m0 = (s + (n >> 1)) // n  # integer mean: deviations and their squares stay integers
    acc = 0
    tot = 0.0
    for v in w:
        d = v - m0
        acc += d * d
        if acc > _ACC_FLUSH:
            tot += acc
            acc = 0
    tot += acc
    # sum((x - mean)^2) = sum((x - m0)^2) - n * (mean - m0)^2, exactly
    frac = (s - m0 * n) / n
    var = tot / n - frac * frac
    if var < 0.0:
        var = 0.0
    return math.sqrt(var), s / n, lo, hi


def analyse(buf, n=None):
    """(rms_counts, mean, lo, hi) of buf[:n]: RMS of the AC part after removing the window's own
    mean (the bias), the mean in counts (float), the lowest and highest sample (ints)."""
    if n is None:
        n = len(buf)
    if n < 1 or n > len(buf):
        raise ValueError("n out of range")
    if _np is not None:
        try:
            a = _np.frombuffer(buf, dtype=_np.uint16, count=n)
        except (TypeError, ValueError):  # not a buffer (a list): use the loop
            a = None
        if a is not None:
            return (float(_np.std(a)), float(_np.mean(a)), int(_np.min(a)), int(_np.max(a)))
    return _analyse_pure(buf, n)


def rms_counts(buf, n=None):
    """RMS of buf[:n] in counts after removing its mean (the DC bias)."""
    return analyse(buf, n)[0]


def amps_per_volt(calibration):
    """Amps at the clamp per volt at the ADC pin (277 -> 50.0, 544 -> 98.2)."""
    return calibration * CAL_REF_A_PER_V / _CAL_REF


def amps_per_count(calibration, adc_full_scale_v=ADC_FULL_SCALE_V):
    """Amps per scaled ADC count: 65535 counts = adc_full_scale_v volts."""
    return amps_per_volt(calibration) * adc_full_scale_v / ADC_MAX


def plausibility(mean, lo, hi, rms_counts, full_scale_v=ADC_FULL_SCALE_V, bias_v=BIAS_V):
    """Flags (bit mask, CT_OK = 0) for a window with these statistics.
    CT_STUCK: no variation. CT_SATURATED: a varying waveform touched a rail (a flat line at a rail
    is STUCK, and DISCONNECTED by its mean, not SATURATED). CT_DISCONNECTED: bias out of range."""
    flags = CT_OK
    if hi - lo <= _STUCK_SPAN_COUNTS or rms_counts <= 0.0:
        flags |= CT_STUCK
    elif lo < _RAIL_MARGIN_COUNTS or hi > ADC_MAX - _RAIL_MARGIN_COUNTS:
        flags |= CT_SATURATED
    mean_v = mean * full_scale_v / ADC_MAX
    if mean_v < bias_v - BIAS_TOLERANCE_V or mean_v > bias_v + BIAS_TOLERANCE_V:
        flags |= CT_DISCONNECTED
    return flags


class CtChannel:
    """State of one CT: calibration, last reading (amps >= 0, CTs cannot tell direction), flags,
    and the last window's statistics for diagnostics. `update(buf, n)` after each capture."""

    def __init__(self, calibration=_CAL_REF, full_scale_v=ADC_FULL_SCALE_V,
                 noise_floor_a=NOISE_FLOOR_A, bias_v=BIAS_V):
        self.full_scale_v = full_scale_v
        self.noise_floor_a = noise_floor_a
        self.bias_v = bias_v
        self.calibration = 0
        self.amps_per_count = 0.0
        self.amps = 0.0
        self.flags = CT_NO_DATA
        self.rms_counts = 0.0
        self.mean = 0.0
        self.lo = 0
        self.hi = 0
        self.n = 0
        self.readings = 0  # windows analysed
        self.set_calibration(calibration)

    def set_calibration(self, calibration):
        self.calibration = calibration
        if calibration > CAL_OFF:
            self.amps_per_count = amps_per_count(calibration, self.full_scale_v)
        else:
            self.amps_per_count = 0.0

    @property
    def enabled(self):
        return self.calibration > CAL_OFF

    @property
    def ok(self):
        return self.flags == CT_OK

    def no_data(self):
        self.amps = 0.0
        self.flags = CT_NO_DATA
        self.n = 0

    def update(self, buf, n=None):
        """Analyse buf[:n] (n = what readinto returned); store and return the amps (float)."""
        if n is None:
            n = len(buf)
        if not self.enabled or n < MIN_SAMPLES or n > len(buf):
            self.no_data()
            return 0.0
        rms, mean, lo, hi = analyse(buf, n)
        self.rms_counts = rms
        self.mean = mean
        self.lo = lo
        self.hi = hi
        self.n = n
        self.readings += 1
        self.flags = plausibility(mean, lo, hi, rms, self.full_scale_v, self.bias_v)
        amps = rms * self.amps_per_count
        if amps < self.noise_floor_a:
            amps = 0.0
        self.amps = amps
        return amps
