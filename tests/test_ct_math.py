"""CT measurement math (dinamics.ct_math), the HIL CT feed decoder (dinamics.ct_feed) and its
encoder / waveform generator (hil.ct_feed_writer).

Accuracy reference: the true RMS of the synthetic current, computed from the generator's
un-quantised signal (hil.ct_feed_writer.true_rms, checked against closed forms below)."""

import math
import os
import statistics
import sys
from array import array

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from dinamics import ct_feed, ct_math  # noqa: E402
from dinamics.ct_math import (  # noqa: E402
    CT_DISCONNECTED, CT_NO_DATA, CT_OK, CT_SATURATED, CT_STUCK)
from hil import ct_feed_writer as w  # noqa: E402


@pytest.fixture(autouse=True)
def pure_backend():
    """The tests run the pure-Python path (ulab does not exist on CPython)."""
    saved = ct_math._np
    ct_math.set_backend(None)
    yield
    ct_math.set_backend(saved)


def measure(samples, cal, n=None):
    buf = array("H", samples)
    rms, mean, lo, hi = ct_math.analyse(buf, n)
    return rms * ct_math.amps_per_count(cal), ct_math.plausibility(mean, lo, hi, rms)


def clipped(samples):
    return min(samples) == 0 or max(samples) == 65535


# --- window -----------------------------------------------------------------------------------

def test_window_samples():
    assert ct_math.window_samples(5000, 50, 4) == 400
    assert ct_math.window_samples(6000, 60, 5) == 500
    assert ct_math.window_samples(20000, 50, 10) == 4000
    assert ct_math.window_samples(7000, 60, 4) == 467  # 466.67 -> nearest
    assert ct_math.window_samples(1001, 50, 1) == 20  # 20.02
    assert ct_math.window_samples(1025, 50, 1) == 21  # 20.5: half rounds up
    assert ct_math.window_samples(1025.0, 50.0, 1) == 21
    assert ct_math.window_samples(7000.0, 59.9, 4) == round(7000 * 4 / 59.9)
    for bad in ((0, 50, 4), (5000, 0, 4), (5000, 50, 0)):
        with pytest.raises(ValueError):
            ct_math.window_samples(*bad)


@pytest.mark.parametrize("nominal,mains,cycles", [
    (5000, 50, 4), (5000, 60, 4), (5000, 50, 5), (7000, 60, 4), (10000, 50, 10),
    (20000, 60, 10), (6000, 50, 2), (611, 50, 3), (83333, 60, 20)])
def test_sample_rate_for_interleaves_cycles(nominal, mains, cycles):
    rate = ct_math.sample_rate_for(nominal, mains, cycles)
    assert isinstance(rate, int) and abs(rate / nominal - 1) < 0.01
    n = ct_math.window_samples(rate, mains, cycles)
    assert n % cycles == 1  # successive cycles sampled at shifted instants
    assert abs(n * mains / rate - cycles) < 0.5 * mains / rate  # whole cycles within 1/2 sample
    assert ct_math.sample_rate_for(5000, 50, 1) == 5000


def test_locked_sampling_misses_steps_interleaved_does_not():
    """Why sample_rate_for exists: at exactly 100 samples per cycle a 90 degree phase cut that
    fires right on a sample is counted whole every cycle (~2 % high)."""
    ref = w.phase_cut_rms(40, 90)
    locked = w.sine(40, 50, 5000, 400, 544, phase_cut_deg=90, adc_bits=16)
    assert measure(locked, 544)[0] / ref - 1 > 0.015
    rate = ct_math.sample_rate_for(5000, 50, 4)
    n = ct_math.window_samples(rate, 50, 4)
    planned = w.sine(40, 50, rate, n, 544, phase_cut_deg=90, adc_bits=16)
    assert measure(planned, 544)[0] == pytest.approx(ref, rel=0.002)


# --- analyse: exact arithmetic ------------------------------------------------------------------

def test_analyse_square_wave_exact():
    buf = array("H", [30000, 35000] * 100)
    rms, mean, lo, hi = ct_math.analyse(buf, len(buf))
    assert rms == 2500.0 and mean == 32500.0 and (lo, hi) == (30000, 35000)
    assert ct_math.rms_counts(buf) == 2500.0


def test_analyse_uses_only_window_and_accepts_lists():
    data = [30000, 35000] * 50 + [0, 65535] * 10
    assert ct_math.analyse(array("H", data), 100) == (2500.0, 32500.0, 30000, 35000)
    assert ct_math.analyse(data, 100) == (2500.0, 32500.0, 30000, 35000)
    with pytest.raises(ValueError):
        ct_math.analyse(data, 0)
    with pytest.raises(ValueError):
        ct_math.analyse(data, len(data) + 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 65535), min_size=1, max_size=400))
def test_analyse_matches_float_reference(values):
    rms, mean, lo, hi = ct_math.analyse(array("H", values), len(values))
    assert (lo, hi) == (min(values), max(values))
    assert mean == pytest.approx(statistics.fmean(values), rel=1e-12, abs=1e-9)
    assert rms == pytest.approx(statistics.pstdev(values), rel=1e-9, abs=1e-6)


def test_analyse_rail_to_rail_exercises_big_squares():
    # deviations of 32767 square to ~2**30: the accumulator flushes every sample
    values = [0, 65535] * 500
    rms, mean, lo, hi = ct_math.analyse(array("H", values))
    assert rms == pytest.approx(65535 / 2, rel=1e-12)
    values = [0] * 999 + [65535]  # mean far from the spike: one square > 2**31
    assert ct_math.analyse(values)[0] == pytest.approx(statistics.pstdev(values), rel=1e-12)


def test_ulab_style_backend_gives_same_result():
    """The ulab path, with numpy standing in for ulab.numpy (same calls), where numpy exists."""
    np = pytest.importorskip("numpy")
    data = array("H", w.sine(23.0, 50, 5000, 450, 277, harmonics=((3, 0.2),), noise_counts=40,
                             seed=3))
    pure = ct_math.analyse(data, 400)
    ct_math.set_backend(np)
    assert ct_math.backend() == "ulab"
    fast = ct_math.analyse(data, 400)
    assert fast[0] == pytest.approx(pure[0], rel=1e-6)
    assert fast[1] == pytest.approx(pure[1], rel=1e-9)
    assert fast[2:] == pure[2:]
    assert ct_math.analyse(list(data), 400)[0] == pytest.approx(pure[0], rel=1e-9)  # list: loop


# --- reference values ---------------------------------------------------------------------------

def test_true_rms_reference_matches_closed_forms():
    assert w.true_rms(10.0) == pytest.approx(10.0, rel=1e-9)
    assert w.true_rms(10.0, ((3, 0.2),)) == pytest.approx(10.0 * math.sqrt(1.04), rel=1e-9)
    assert w.true_rms(10.0, ((3, 0.3, 180), (5, 0.1, 45))) == pytest.approx(
        10.0 * math.sqrt(1 + 0.09 + 0.01), rel=1e-9)
    for cut in (30, 45, 90, 135):
        assert w.true_rms(10.0, phase_cut_deg=cut) == pytest.approx(
            w.phase_cut_rms(10.0, cut), rel=1e-4)
    assert w.phase_cut_rms(10.0, 90) == pytest.approx(10.0 / math.sqrt(2), rel=1e-12)


# --- accuracy sweep -----------------------------------------------------------------------------

AMPS = {277: (2, 3.3, 6, 10, 16, 25, 32, 40, 50), 544: (2, 5, 10, 25, 40, 60, 80)}
VARIANTS = (
    ("pure", {}),
    ("phase37", {"phase": 37}),
    ("h3", {"harmonics": ((3, 0.2),)}),
    ("h3h5", {"harmonics": ((3, 0.3, 180), (5, 0.1, 45))}),
    ("dc+", {"dc_offset_v": 0.12}),
    ("dc-", {"dc_offset_v": -0.12}),
    ("noise", {"noise_counts": 16, "seed": 7}),  # 1 LSB rms of the 12-bit ADC
    ("cut45", {"phase_cut_deg": 45}),
    ("cut90", {"phase_cut_deg": 90}),
    ("cut135", {"phase_cut_deg": 135}),
    ("cut90mid", {"phase_cut_deg": 90, "phase": 1.8}),  # step half a sample later
    ("cut120", {"phase_cut_deg": 120, "phase": 0.7}),
    ("mix", {"harmonics": ((3, 0.15),), "phase_cut_deg": 60, "noise_counts": 16, "seed": 11,
             "dc_offset_v": 0.05, "phase": 200}),
)
TOLERANCE = 0.01  # 1 % of reading above 2 A
_UNIT_RMS = {}


def unit_rms(name, kw):
    """True RMS per amp of fundamental (the waveform scales linearly): computed once."""
    if name not in _UNIT_RMS:
        _UNIT_RMS[name] = w.true_rms(1.0, kw.get("harmonics", ()), kw.get("phase_cut_deg"))
    return _UNIT_RMS[name]


def sweep(cal, mains, nominal_rate, cycles):
    """Returns (worst relative error, cases checked); asserts flags on the way. The rate is the
    one the firmware picks near the nominal one (ct_math.sample_rate_for)."""
    rate = ct_math.sample_rate_for(nominal_rate, mains, cycles)
    n = ct_math.window_samples(rate, mains, cycles)
    worst = 0.0
    checked = 0
    for amps in AMPS[cal]:
        for name, kw in VARIANTS:
            ref = amps * unit_rms(name, kw)
            samples = w.sine(amps, mains, rate, n, cal, **kw)
            got, flags = measure(samples, cal)
            if clipped(samples):
                assert flags & CT_SATURATED, (amps, name)
                continue
            assert flags == CT_OK, (amps, name, flags)
            if ref < 2.0:
                continue
            err = abs(got / ref - 1.0)
            assert err <= TOLERANCE, (cal, mains, rate, cycles, amps, name, got, ref)
            worst = max(worst, err)
            checked += 1
    return worst, checked


@pytest.mark.parametrize("cycles", (4, 10))
@pytest.mark.parametrize("rate", (5000, 7000, 10000, 20000))
@pytest.mark.parametrize("mains", (50, 60))
@pytest.mark.parametrize("cal", (277, 544))
def test_accuracy_within_one_percent(cal, mains, rate, cycles):
    worst, checked = sweep(cal, mains, rate, cycles)
    assert checked >= 5 * len(AMPS[cal])  # most cases are in range and above 2 A


@pytest.mark.parametrize("actual_hz", (49.8, 50.2))
def test_mains_frequency_drift(actual_hz):
    # the window is computed for 50 Hz, the grid runs at actual_hz
    n = ct_math.window_samples(5000, 50, 4)
    for amps in (2, 10, 40):
        samples = w.sine(amps, actual_hz, 5000, n, 277, harmonics=((3, 0.2),))
        got, flags = measure(samples, 277)
        assert flags == CT_OK
        assert got == pytest.approx(w.true_rms(amps, ((3, 0.2),)), rel=TOLERANCE)


@pytest.mark.parametrize("seed", range(6))
def test_adc_noise_three_lsb(seed):
    """3 LSB rms of ADC noise (48 scaled counts): still within 1 % from 2 A on a 50 A/V clamp and
    from 5 A on a 100 A/V one (noise adds in quadrature; the 5 kHz, 4-cycle window is short)."""
    rate = ct_math.sample_rate_for(5000, 50, 4)
    n = ct_math.window_samples(rate, 50, 4)
    for cal, amps in ((277, 2), (277, 10), (544, 5), (544, 30)):
        samples = w.sine(amps, 50, rate, n, cal, noise_counts=48, seed=seed)
        got, flags = measure(samples, cal)
        assert flags == CT_OK and got == pytest.approx(amps, rel=TOLERANCE)


# --- calibration --------------------------------------------------------------------------------

def test_calibration_conversion():
    assert ct_math.amps_per_volt(277) == pytest.approx(50.0, rel=1e-12)
    assert ct_math.amps_per_volt(544) == pytest.approx(98.19, abs=0.01)
    assert ct_math.amps_per_volt(554) == pytest.approx(100.0, rel=1e-12)
    assert ct_math.amps_per_count(277) == pytest.approx(50.0 * 3.1 / 65535, rel=1e-12)
    assert ct_math.amps_per_count(277, 3.3) == pytest.approx(50.0 * 3.3 / 65535, rel=1e-12)
    for cal in (100, 277, 544, 2000):  # the writer restates the same conversion independently
        assert w.amps_per_volt(cal) == pytest.approx(ct_math.amps_per_volt(cal), rel=1e-12)


def test_277_vs_544_clamps():
    n = ct_math.window_samples(5000, 50, 5)
    # a 100 A/V clamp (544) carrying 40 A gives half the volts of a 50 A/V one
    on544 = w.sine(40, 50, 5000, n, 544, noise_counts=16, seed=1)
    on277 = w.sine(40, 50, 5000, n, 277, noise_counts=16, seed=1)
    assert measure(on544, 544)[0] == pytest.approx(40, rel=TOLERANCE)
    assert measure(on277, 277)[0] == pytest.approx(40, rel=TOLERANCE)
    # the wrong setting scales the reading by the ratio of the settings
    assert measure(on544, 277)[0] == pytest.approx(40 * 277 / 544, rel=TOLERANCE)
    # 80 A fits a 100 A clamp but clips a 50 A one
    big = w.sine(80, 50, 5000, n, 544)
    assert measure(big, 544) == (pytest.approx(80, rel=TOLERANCE), CT_OK)
    assert measure(w.sine(80, 50, 5000, n, 277), 277)[1] & CT_SATURATED


# --- plausibility -------------------------------------------------------------------------------

def flags_of(samples):
    return measure(samples, 277)[1]


def test_plausibility_ok_and_saturated():
    n = 400
    assert flags_of(w.sine(20, 50, 5000, n, 277, noise_counts=20, seed=2)) == CT_OK
    f = flags_of(w.sine(60, 50, 5000, n, 277))  # 60 A peak 1.70 V > 1.55 V headroom
    assert f == CT_SATURATED
    f = flags_of(w.sine(20, 50, 5000, n, 277, dc_offset_v=1.2))  # pushed into the top rail
    assert f & CT_SATURATED


def test_plausibility_stuck_and_disconnected():
    assert flags_of([32768] * 400) == CT_STUCK  # dead ADC at mid-rail: stuck, bias fine
    assert flags_of([0] * 400) == CT_STUCK | CT_DISCONNECTED  # flat at a rail: not "saturated"
    assert flags_of([65535] * 400) == CT_STUCK | CT_DISCONNECTED
    floating = w.sine(0, 50, 5000, 400, 277, bias_v=0.02, noise_counts=40, seed=5)
    assert flags_of(floating) & CT_DISCONNECTED
    assert flags_of(w.sine(5, 50, 5000, 400, 277, bias_v=0.9, noise_counts=16, seed=5)) == \
        CT_DISCONNECTED
    assert flags_of(w.sine(5, 50, 5000, 400, 277, bias_v=2.3, noise_counts=16, seed=5)) == \
        CT_DISCONNECTED
    assert flags_of(w.sine(5, 50, 5000, 400, 277, bias_v=1.25, noise_counts=16, seed=5)) == CT_OK
    assert flags_of(w.sine(5, 50, 5000, 400, 277, bias_v=1.65, noise_counts=16, seed=5)) == CT_OK


def test_plausibility_thresholds():
    per_v = 65535 / 3.1
    mid = 1.55 * per_v
    p = ct_math.plausibility
    assert p(mid, 30000, 35000, 100.0) == CT_OK
    assert p(mid, 30000, 30000, 0.0) == CT_STUCK
    assert p(mid, 15, 35000, 100.0) == CT_SATURATED
    assert p(mid, 16, 35000, 100.0) == CT_OK
    assert p(mid, 100, 65520, 100.0) == CT_SATURATED
    assert p(mid, 100, 65519, 100.0) == CT_OK
    tol = ct_math.BIAS_TOLERANCE_V
    assert p((1.55 + tol - 0.01) * per_v, 30000, 35000, 100.0) == CT_OK
    assert p((1.55 + tol + 0.01) * per_v, 30000, 35000, 100.0) == CT_DISCONNECTED
    assert p((1.55 - tol + 0.01) * per_v, 30000, 35000, 100.0) == CT_OK
    assert p((1.55 - tol - 0.01) * per_v, 30000, 35000, 100.0) == CT_DISCONNECTED
    # another ADC range / bias
    assert p(1.65 * 65535 / 3.3, 30000, 35000, 100.0, 3.3, 1.65) == CT_OK


# --- CtChannel ----------------------------------------------------------------------------------

def test_channel_update_and_noise_floor():
    n = ct_math.window_samples(6000, 50, 5)
    buf = array("H", bytes(2 * n))
    ch = ct_math.CtChannel(277)
    assert ch.flags == CT_NO_DATA and ch.amps == 0.0 and ch.enabled
    buf[:] = array("H", w.sine(12.5, 50, 6000, n, 277, noise_counts=16, seed=4))
    assert ch.update(buf, n) == pytest.approx(12.5, rel=TOLERANCE)
    assert ch.ok and ch.readings == 1 and ch.n == n and ch.lo < ch.mean < ch.hi
    # tiny current below the noise floor reads 0 (still a valid window)
    buf[:] = array("H", w.sine(0.02, 50, 6000, n, 277, noise_counts=8, seed=4, adc_bits=16))
    assert ch.update(buf, n) == 0.0 and ch.flags == CT_OK
    # recalibration scales
    buf[:] = array("H", w.sine(30, 50, 6000, n, 544, noise_counts=16, seed=4))
    ch.set_calibration(544)
    assert ch.update(buf) == pytest.approx(30, rel=TOLERANCE)


def test_channel_no_data_cases():
    buf = array("H", w.sine(10, 50, 5000, 400, 277, noise_counts=16, seed=1))
    off = ct_math.CtChannel(0)
    assert not off.enabled and off.update(buf, 400) == 0.0 and off.flags == CT_NO_DATA
    assert ct_math.CtChannel(5).update(buf, 400) == 0.0  # seed: <= 5 means off
    ch = ct_math.CtChannel(277)
    assert ch.update(buf, 3) == 0.0 and ch.flags == CT_NO_DATA  # short capture
    assert ch.update(buf, 401) == 0.0 and ch.flags == CT_NO_DATA  # more than the buffer
    assert ch.update(buf, 400) > 9.9 and ch.ok


# --- feed encoder -------------------------------------------------------------------------------

def test_encode_rms_format():
    assert w.encode_rms(5, (1.5, None, -3.25), checksum=False) == b"R 5 1.5 - -3.25\n"
    assert w.encode_rms(65537, (0.0, 12.0, 0.004), checksum=False) == b"R 1 0 12 0\n"
    assert w.encode_rms(0, (-0.001, 999.99, 0.07), checksum=False) == b"R 0 0 999.99 0.07\n"
    line = w.encode_rms(7, (1, 2, 3))
    body, star, tail = line.rstrip(b"\n").partition(b"*")
    assert star and int(tail, 16) == ct_feed.checksum(body)
    for bad in ((1000.0, 0, 0), (float("nan"), 0, 0)):
        with pytest.raises(ValueError):
            w.encode_rms(1, bad)
    with pytest.raises(ValueError):
        w.encode_rms(1, (1, 2))


def test_encode_samples_format():
    line = w.encode_samples(2, 5000, [1, 2, 65535], checksum=False)
    assert line == b"S 2 5000 AQACAP//\n"  # little-endian 01 00 02 00 ff ff
    for args in ((0, 5000, [1]), (4, 5000, [1]), (1, 50, [1]), (1, 5000, [65536])):
        with pytest.raises((ValueError, OverflowError)):
            w.encode_samples(*args)


class FakePort:
    def __init__(self, data=b""):
        self.data = bytearray(data)
        self.written = bytearray()

    @property
    def in_waiting(self):
        return len(self.data)

    def read(self, n):
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def write(self, b):
        self.written += b
        return len(b)


def test_writer_class_sequences():
    port = FakePort()
    wr = w.CtFeedWriter(port)
    wr.send_rms((1, 2, 3))
    wr.send_rms((4, None, 6))
    wr.send_samples(1, 5000, [32768] * 10)
    d = ct_feed.CtFeedDecoder()
    d.feed(bytes(port.written))
    assert d.pop() == (0, (1.0, 2.0, 3.0), (0, 0, 0))
    assert d.pop() == (1, (4.0, None, 6.0), (0, CT_NO_DATA, 0))
    assert d.pop() == (None, (0.0, None, None), (CT_STUCK, CT_NO_DATA, CT_NO_DATA))
    assert d.errors == 0 and d.lines == 3


# --- feed decoder: RMS lines --------------------------------------------------------------------

def test_decode_rms_lines():
    d = ct_feed.CtFeedDecoder()
    d.feed(b"R 1 10 -2.5 -\nR 2 0.07 - 999.99*00\n")  # second: wrong checksum
    assert d.pop() == (1, (10.0, -2.5, None), (CT_OK, CT_OK, CT_NO_DATA))
    assert d.pop() is None and d.errors == 1
    d.feed(w.encode_rms(3, (0.07, None, 999.99)))
    assert d.pop() == (3, (0.07, None, 999.99), (CT_OK, CT_NO_DATA, CT_OK))
    good = b"R 4 1 2 3"
    d.feed(good + b"*%02x\r\n" % ct_feed.checksum(good))  # lower-case hex, CRLF
    assert d.pop() == (4, (1.0, 2.0, 3.0), (0, 0, 0)) and d.last_seq == 4
    d.feed(b"\n\r\n# a comment from the rig\n")
    assert d.pop() is None and d.errors == 1 and d.lines == 3


@pytest.mark.parametrize("line", [
    b"R 1 2 3", b"R 1 2 3 4 5", b"R x 1 2 3", b"R -1 1 2 3", b"R 65536 1 2 3", b"R 1 1.234 2 3",
    b"R 1 1000 2 3", b"R 1 .5 2 3", b"R 1 5. 2 3", b"R 1 --5 2 3", b"R 1 +5 2 3", b"R  1 1 2 3",
    b"R 1 1e2 2 3", b"r 1 1 2 3", b"X 1 2 3 4", b"R 1 1 2 3*", b"R 1 1 2 3*G0", b"R 1 1 2 3*123",
    b"S 1 5000 ", b"S 0 5000 AAAA", b"S 4 5000 AAAA", b"S 1 99 AAAA", b"S 1 200001 AAAA",
    b"S 1 5000 AAA", b"S 1 5000 AAAAAAAAAAAA", b"S 1 5000 AAAA====", b"\xff\xfe", b"S",
])
def test_decode_rejects_malformed(line):
    d = ct_feed.CtFeedDecoder()
    d.feed(line + b"\n")
    assert d.pop() is None and d.errors == 1 and d.lines == 0
    d.feed(b"R 9 1 2 3\n")  # resynchronised
    assert d.pop()[0] == 9


def test_decode_split_chunks_byte_by_byte():
    stream = (w.encode_rms(1, (1.25, 2, 3)) + b"garbage \x00\xff no newline yet"
              + b"...\n" + w.encode_samples(3, 5000, w.sine(8, 50, 5000, 400, 277, seed=1,
                                                              noise_counts=16))
              + w.encode_rms(2, (None, None, -7)))
    d = ct_feed.CtFeedDecoder()
    for i in range(len(stream)):
        d.feed(stream[i:i + 1])
        d.feed(b"")
        d.feed(None)
    r1, r2, r3 = d.pop(), d.pop(), d.pop()
    assert d.pop() is None and d.errors == 1 and d.lines == 3
    assert r1 == (1, (1.25, 2.0, 3.0), (0, 0, 0))
    assert r2[0] is None and r2[1][:2] == (None, None) and r2[2] == (CT_NO_DATA, CT_NO_DATA, 0)
    assert r2[1][2] == pytest.approx(8, rel=TOLERANCE)
    assert r3 == (2, (None, None, -7.0), (CT_NO_DATA, CT_NO_DATA, 0))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=40))
def test_decode_random_chunking_same_result(cuts):
    lines = [w.encode_rms(i, (i * 1.5, None if i % 3 == 0 else -i, 0.01 * i)) for i in range(6)]
    stream = b"junk" + b"".join(lines[:3]) + b"#x\n\x00\x01\n" + b"".join(lines[3:])
    d = ct_feed.CtFeedDecoder()
    pos = 0
    for c in cuts * (len(stream) // sum(cuts) + 1):
        d.feed(bytearray(stream[pos:pos + c]))  # bytearray input is fine too
        pos += c
        if pos >= len(stream):
            break
    got = []
    while d.pending():
        got.append(d.pop())
    assert [g[0] for g in got] == [1, 2, 3, 4, 5]  # line 0 was glued to "junk"
    assert d.errors == 2  # "junkR 0 ..." and the binary line


# --- feed decoder: sample blocks ----------------------------------------------------------------

@pytest.mark.parametrize("cal,amps,mains,rate", [
    (277, 16, 50, 5000), (277, 2.5, 60, 7000), (544, 63, 50, 20000), (544, 4, 60, 10000)])
def test_decode_sample_block(cal, amps, mains, rate):
    d = ct_feed.CtFeedDecoder(calibrations=(277, cal, 277), mains_hz=mains)
    n = ct_math.window_samples(rate, mains, 4)
    h = ((3, 0.2), (5, 0.05))
    d.feed(w.encode_samples(2, rate, w.sine(amps, mains, rate, n, cal, harmonics=h,
                                             noise_counts=24, seed=9)))
    seq, a, f = d.pop()
    assert seq is None and a[0] is None and a[2] is None and f == (CT_NO_DATA, CT_OK, CT_NO_DATA)
    assert a[1] == pytest.approx(w.true_rms(amps, h), rel=TOLERANCE)
    assert d.last_rate == rate and d.channels[1].n == n


def test_decode_sample_block_cut_to_whole_cycles():
    d = ct_feed.CtFeedDecoder(mains_hz=50)
    rate = ct_math.sample_rate_for(5000, 50, 4)
    n = 450  # ~4.5 cycles: the extra half cycle would bias the mean
    d.feed(w.encode_samples(1, rate, w.sine(10, 50, rate, n, 277, phase_cut_deg=90)))
    _, a, f = d.pop()
    assert d.channels[0].n == ct_math.window_samples(rate, 50, 4) == 401 and f[0] == CT_OK
    assert a[0] == pytest.approx(w.phase_cut_rms(10, 90), rel=TOLERANCE)
    # fewer samples than one cycle: analysed as they are
    d.feed(w.encode_samples(1, 5000, [30000, 35000] * 20))
    _, a, f = d.pop()
    assert d.channels[0].n == 40 and a[0] == pytest.approx(2500 * ct_math.amps_per_count(277))


def test_decode_sample_block_faults_and_disabled_channel():
    d = ct_feed.CtFeedDecoder(calibrations=(277, 0, 277))
    d.feed(w.encode_samples(1, 5000, [0] * 400))
    assert d.pop() == (None, (0.0, None, None), (CT_STUCK | CT_DISCONNECTED, CT_NO_DATA,
                                                  CT_NO_DATA))
    d.feed(w.encode_samples(3, 5000, w.sine(70, 50, 5000, 400, 277)))
    assert d.pop()[2][2] == CT_SATURATED
    d.feed(w.encode_samples(2, 5000, w.sine(10, 50, 5000, 400, 277, noise_counts=9, seed=1)))
    assert d.pop() == (None, (None, None, None), (CT_NO_DATA, CT_NO_DATA, CT_NO_DATA))
    d.set_calibrations((277, 544, 277))
    d.feed(w.encode_samples(2, 5000, w.sine(10, 50, 5000, 400, 544, noise_counts=9, seed=1)))
    assert d.pop()[1][1] == pytest.approx(10, rel=TOLERANCE)
    assert d.errors == 0


def test_decode_sample_block_limits():
    d = ct_feed.CtFeedDecoder(max_samples=64)
    d.feed(w.encode_samples(1, 5000, [32768, 32800] * 32))  # exactly max_samples
    assert d.pop() is not None and d.errors == 0
    d.feed(w.encode_samples(1, 5000, [32768, 32800] * 33))  # over: too long a line
    d.feed(w.encode_samples(1, 5000, [32768] * 7))  # fewer than MIN_SAMPLES
    d.feed(b"S 1 5000 AAAA\n")  # 3 bytes: not whole uint16 samples
    assert d.pop() is None and d.errors == 3


# --- feed decoder: bounds -----------------------------------------------------------------------

def test_overflow_is_bounded_and_resyncs():
    d = ct_feed.CtFeedDecoder(max_samples=16)
    assert d.max_line < 120
    for _ in range(50):
        d.feed(b"R 1 2 3 4 5 6 7 8 9 ")  # never a newline
        assert len(d._buf) <= d.max_line
    assert d.errors == 1 and d.overflows == 1
    d.feed(b"still the same long line\nR 5 1 2 3\n")
    assert d.pop() == (5, (1.0, 2.0, 3.0), (0, 0, 0))
    d.feed(b"x" * 500 + b"\nR 6 1 2 3\n")  # an over-long line inside one chunk
    assert d.pop()[0] == 6 and d.errors == 2 and d.overflows == 2


def test_feed_odd_inputs_never_raise():
    d = ct_feed.CtFeedDecoder()
    d.feed("R 1 2 3 4\n")  # a str by mistake
    d.feed(memoryview(b"R 2 1 2 3\n"))
    d.feed(bytearray(b""))
    assert d.pop()[0] == 2 and d.pop() is None


def test_queue_keeps_newest():
    d = ct_feed.CtFeedDecoder(queue_len=8)
    d.feed(b"".join(w.encode_rms(i, (i, i, i)) for i in range(20)))
    assert d.pending() == 8 and d.dropped == 12
    assert [d.pop()[0] for _ in range(8)] == list(range(12, 20))
    assert d.pop() is None


def test_read_from_port():
    port = FakePort(w.encode_rms(1, (1, 2, 3)) * 3)
    d = ct_feed.CtFeedDecoder()
    got = d.read_from(port, max_bytes=10)
    assert got == 10 and d.pending() == 0
    while d.read_from(port, max_bytes=10):
        pass
    assert d.pending() == 3 and d.read_from(port) == 0

    class NoneReads:  # CircuitPython read() returns None when nothing arrived
        in_waiting = 5

        def read(self, n):
            return None

    assert d.read_from(NoneReads()) == 0


# --- fuzz ---------------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=12))
def test_fuzz_random_bytes_never_raise(chunks):
    d = ct_feed.CtFeedDecoder(max_samples=32, queue_len=4)
    for c in chunks:
        d.feed(c)
        assert len(d._buf) <= d.max_line
        assert d.pending() <= 4
    while d.pop() is not None:
        pass
    d.feed(b"\nR 1 2 3 4\n")  # always recovers after a newline
    assert d.pop() == (1, (2.0, 3.0, 4.0), (0, 0, 0))


_ALPHABET = b"RS -0123456789.*\n\rABCDEFabcdef+/=xyz"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list(_ALPHABET)), max_size=300))
def test_fuzz_protocol_like_bytes_never_raise(chars):
    d = ct_feed.CtFeedDecoder(max_samples=32)
    d.feed(bytes(chars))
    while True:
        r = d.pop()
        if r is None:
            break
        seq, amps, flags = r
        assert len(amps) == 3 and len(flags) == 3
        for a, f in zip(amps, flags):
            assert (a is None) == (f == CT_NO_DATA)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200000), st.lists(st.one_of(st.none(), st.integers(-99999, 99999)),
                                        min_size=3, max_size=3))
def test_rms_round_trip(seq, centi):
    amps = tuple(None if c is None else c / 100 for c in centi)
    d = ct_feed.CtFeedDecoder()
    d.feed(w.encode_rms(seq, amps))
    got = d.pop()
    assert got[0] == seq % 65536
    for a, g, f in zip(amps, got[1], got[2]):
        if a is None:
            assert g is None and f == CT_NO_DATA
        else:
            assert g == pytest.approx(a, abs=1e-9) and f == CT_OK
