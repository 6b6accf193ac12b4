"""ct_meter actor: board mode through a fake `port.ct_adc` fed with synthetic CT waveforms
(hil.ct_feed_writer.sine), and HIL mode through a fake byte stream (R lines and S blocks).
Virtual clock, no I/O. Reference for accuracy: the generator's true RMS."""
import random

import pytest

from dinamics import ct_math
from dinamics import messages as m
from dinamics.ct_math import CT_DISCONNECTED, CT_NO_DATA, CT_OK, CT_SATURATED, CT_STUCK
from dinamics.mailbox import Actor, Scheduler
from dinamics.settings import Settings
from actors.ct_meter import CtMeter
from hil import ct_feed_writer as w
from hil.clock import VirtualClock


@pytest.fixture(autouse=True)
def pure_backend():
    saved = ct_math._np
    ct_math.set_backend(None)
    yield
    ct_math.set_backend(saved)


class FakeAdc:
    """Stands in for board_port.AdcCapture: each capture() is a fresh stretch of a clamp's
    waveform that starts at an arbitrary mains phase (captures are not synchronised to mains)."""

    def __init__(self, amps=(10.0, 0.0, 0.0), rate=10000, mains_hz=50, calibration=277,
                 channels=(0, 1, 2), seed=1, noise_counts=20, **wave):
        self.amps = list(amps)
        self.sample_rate = rate
        self.mains_hz = mains_hz
        self.calibration = calibration
        self.channels = list(channels)
        self.rng = random.Random(seed)
        self.noise_counts = noise_counts
        self.wave = dict(wave)
        self.per_channel = {}  # ch -> dict overriding wave kwargs
        self.calls = []
        self.short = None  # return this count instead of len(buf)
        self.fail = False
        self.constant = {}  # ch -> fixed sample value (stuck input)

    def capture(self, ch, buf):
        if self.fail:
            raise OSError("ADC busy")
        n = len(buf)
        if ch in self.constant:
            samples = [self.constant[ch]] * n
        else:
            kw = dict(self.wave)
            kw.update(self.per_channel.get(ch, {}))
            samples = w.sine(self.amps[ch], self.mains_hz, self.sample_rate, n, self.calibration,
                             phase=self.rng.uniform(0, 360), noise_counts=self.noise_counts,
                             seed=self.rng.randrange(1 << 30), **kw)
        for i in range(n):
            buf[i] = samples[i]
        self.calls.append((ch, n))
        return n if self.short is None else self.short


class FakeStream:
    def __init__(self):
        self.buf = bytearray()

    def write(self, data):
        self.buf += data

    @property
    def in_waiting(self):
        return len(self.buf)

    def read(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class Port:
    def __init__(self, ct_adc=None, ct_stream=None):
        self.ct_adc = ct_adc
        self.ct_stream = ct_stream


class Sink(Actor):
    name = "sink"
    subscribes = (m.CT_READING,)
    inbox_size = 64

    def __init__(self):
        super().__init__()
        self.got = []

    def handle(self, kind, payload):
        self.got.append(payload)


class Rig:
    def __init__(self, adc=None, stream=None, **settings):
        self.clock = VirtualClock()
        self.logs = []
        self.s = Scheduler(self.clock, console=lambda lvl, t: self.logs.append(t))
        self.settings = Settings()
        for k, v in settings.items():
            self.settings.apply(k, v)
        self.adc = adc
        self.meter = self.s.add(CtMeter(self.settings, Port(adc, stream)))
        self.sink = self.s.add(Sink())

    def polls(self, n, ms=20):
        for _ in range(n):
            self.clock.advance(ms)
            self.s.run_once()

    def set(self, name, value):
        self.settings.apply(name, value)
        self.s.post(m.SETTING_CHANGED, (name,))
        self.s.run_once()

    def readings(self, count, max_polls=2000):
        start = len(self.sink.got)
        for _ in range(max_polls):
            if len(self.sink.got) - start >= count:
                break
            self.polls(1)
        return self.sink.got[start:start + count]


# --- board mode -------------------------------------------------------------------------------

@pytest.mark.parametrize("hz,rate", [(50, 10000), (60, 10000), (50, 6000), (60, 7000)])
def test_accuracy_within_one_percent_above_two_amps(hz, rate):
    for amps in (2.0, 3.3, 7.5, 16.0, 32.0, 45.0):
        adc = FakeAdc((amps, amps * 0.5 + 1.5, amps * 0.9 + 2.0), rate=rate, mains_hz=hz,
                      seed=int(amps * 10))
        r = Rig(adc, cte=123, mains_hz=hz)
        for t, got, valid, flags in r.readings(3):
            assert valid == 7 and flags == (CT_OK, CT_OK, CT_OK)
            for i in range(3):
                assert abs(got[i] / adc.amps[i] - 1) <= 0.01, (hz, rate, i, got[i], adc.amps[i])


def test_accuracy_with_harmonics_and_phase_cut():
    cases = [dict(harmonics=((3, 0.3, 20), (5, 0.1))), dict(phase_cut_deg=60)]
    for kw in cases:
        adc = FakeAdc((20.0, 10.0, 5.0), seed=3, **kw)
        r = Rig(adc, cte=123)
        ref = [w.true_rms(a, kw.get("harmonics", ()), kw.get("phase_cut_deg")) for a in adc.amps]
        for _t, got, valid, _f in r.readings(4):
            assert valid == 7
            for i in range(3):
                assert abs(got[i] / ref[i] - 1) <= 0.01, (kw, i, got[i], ref[i])


@pytest.mark.parametrize("hz", [50, 60])
def test_one_mains_cycle_per_poll(hz):
    adc = FakeAdc((10.0, 10.0, 10.0), rate=10000, mains_hz=hz)
    r = Rig(adc, cte=123, mains_hz=hz, ct_cycles=5)
    per_cycle = ct_math.window_samples(10000, hz, 1)
    for _ in range(40):
        before = len(adc.calls)
        r.polls(1)
        assert len(adc.calls) - before == 1  # exactly one capture per scheduler pass
        assert r.meter.last_poll_samples == per_cycle
    assert r.meter.max_poll_samples == per_cycle  # never a whole window in one blocking call
    # CT1, CT2, CT3 in turn, 5 cycles each; the first reading after the whole round (15 polls),
    # then one after every CT (5 polls) with that CT refreshed
    assert [c for c, _ in adc.calls[:15]] == [0] * 5 + [1] * 5 + [2] * 5
    assert len(r.sink.got) == 1 + (40 - 15) // 5


def test_ct_cycles_setting_sets_the_window():
    adc = FakeAdc((10.0, 10.0, 10.0))
    r = Rig(adc, cte=12, ct_cycles=3)
    r.polls(6)
    assert len(r.sink.got) == 1 and [c for c, _ in adc.calls] == [0, 0, 0, 1, 1, 1]
    r.set("ct_cycles", 1)
    n = len(adc.calls)
    r.polls(2)
    assert [c for c, _ in adc.calls[n:]] == [0, 1] and len(r.sink.got) == 2


def test_cte_mask_captures_only_fitted_cts():
    adc = FakeAdc((10.0, 20.0, 30.0))
    r = Rig(adc, cte=13)
    t, amps, valid, flags = r.readings(1)[0]
    assert {c for c, _ in adc.calls} == {0, 2}
    assert valid == 0b101
    assert flags[1] == CT_NO_DATA and amps[1] == 0.0
    assert abs(amps[0] - 10) < 0.1 and abs(amps[2] - 30) < 0.3


def test_cte_fitted_but_without_pin_is_no_data():
    adc = FakeAdc((10.0, 20.0, 30.0), channels=(0, 1))
    r = Rig(adc, cte=123)
    _t, amps, valid, flags = r.readings(1)[0]
    assert valid == 0b011 and flags[2] == CT_NO_DATA and amps[2] == 0.0


def test_cte_zero_means_no_ct_and_an_empty_reading_each_second():
    adc = FakeAdc()
    r = Rig(adc, cte=0)
    r.polls(150)  # 3 s
    assert adc.calls == []
    assert 2 <= len(r.sink.got) <= 4
    assert all(g[2] == 0 and g[3] == (CT_NO_DATA,) * 3 for g in r.sink.got)


def test_flags_stuck_saturated_disconnected_clear_the_valid_bit():
    adc = FakeAdc((10.0, 70.0, 10.0), noise_counts=20)  # 70 A > 54.8 A a 277 clamp can show
    adc.per_channel[2] = {"dc_offset_v": 1.2}  # bias pulled to ~2.75 V: no bias network
    r = Rig(adc, cte=123)
    _t, amps, valid, flags = r.readings(1)[0]
    assert flags[0] == CT_OK and valid & 1
    assert flags[1] & CT_SATURATED and not valid & 2 and amps[1] == 0.0
    assert flags[2] & CT_DISCONNECTED and not valid & 4 and amps[2] == 0.0
    adc.constant[0] = 25000  # ADC not converting: the same count every sample
    _t, amps, valid, flags = r.readings(1)[0]
    assert flags[0] & CT_STUCK and not valid & 1


def test_short_capture_and_adc_errors_are_no_data():
    adc = FakeAdc((10.0, 10.0, 10.0))
    r = Rig(adc, cte=123)
    adc.short = 17
    _t, amps, valid, flags = r.readings(1)[0]
    assert valid == 0 and flags == (CT_NO_DATA,) * 3
    assert r.meter.short_captures == 15
    adc.short = None
    adc.fail = True
    # after the first round a reading follows every CT: three readings = every CT once more
    _t, amps, valid, flags = r.readings(3)[-1]
    assert valid == 0 and r.meter.adc_errors == 15
    assert sum("capture failed" in l for l in r.logs) == 1  # logged once
    adc.fail = False
    _t, amps, valid, flags = r.readings(3)[-1]
    assert valid == 7


def test_calibration_setting_scales_readings():
    adc = FakeAdc((20.0, 20.0, 20.0), calibration=544)  # a 100 A clamp
    r = Rig(adc, cte=1)
    wrong = r.readings(1)[0][1][0]
    assert abs(wrong - 20 * 277 / 544) < 0.3
    r.set("calibration", 544)
    right = r.readings(1)[0][1][0]
    assert abs(right / 20 - 1) < 0.01


def test_idle_ct_reads_zero_and_valid():
    adc = FakeAdc((0.0, 0.0, 0.0), noise_counts=15)
    r = Rig(adc, cte=123)
    _t, amps, valid, flags = r.readings(1)[0]
    assert valid == 7 and max(amps) < 0.2


def test_reading_timestamps_are_ticks_and_increase_across_the_wrap():
    adc = FakeAdc((5.0, 5.0, 5.0))
    r = Rig(adc, cte=123)
    r.clock.advance(64000)  # the virtual clock starts 65 s before the 2**29 wrap
    got = r.readings(10)
    from adafruit_ticks import ticks_diff
    for a, b in zip(got, got[1:]):
        assert ticks_diff(b[0], a[0]) > 0
    assert any(g[0] < 100000 for g in got)  # wrapped


# --- HIL mode ---------------------------------------------------------------------------------

def stream_rig(**settings):
    s = FakeStream()
    return Rig(stream=s, **settings), s


def test_stream_rms_lines_become_readings():
    r, s = stream_rig(cte=123)
    s.write(w.encode_rms(1, (12.5, 3, 0.07)))
    r.polls(1)
    t, amps, valid, flags = r.sink.got[-1]
    assert amps == (12.5, 3.0, 0.07) and valid == 7 and flags == (CT_OK,) * 3


def test_stream_negative_amps_only_with_neg_amp():
    r, s = stream_rig(cte=123, neg_amp=0)
    s.write(w.encode_rms(1, (-5, 2, 0)))
    r.polls(1)
    assert r.sink.got[-1][1] == (5.0, 2.0, 0.0)
    r.set("neg_amp", 1)
    s.write(w.encode_rms(2, (-5, 2, 0)))
    r.polls(1)
    assert r.sink.got[-1][1] == (-5.0, 2.0, 0.0)


def test_stream_no_data_unfitted_and_saturated():
    r, s = stream_rig(cte=12)
    s.write(w.encode_rms(1, (None, 60.0, 9)))
    r.polls(1)
    t, amps, valid, flags = r.sink.got[-1]
    assert flags[0] == CT_NO_DATA and flags[1] == CT_SATURATED and flags[2] == CT_NO_DATA
    assert valid == 0 and amps == (0.0, 0.0, 0.0)


def test_stream_sample_blocks_collect_every_fitted_ct():
    r, s = stream_rig(cte=13, mains_hz=60)
    rate = 7000
    n = ct_math.window_samples(rate, 60, 5)
    s.write(w.encode_samples(1, rate, w.sine(16.0, 60, rate, n, 277, noise_counts=20, seed=1)))
    r.polls(3)
    assert r.sink.got == []  # CT3 still missing
    s.write(w.encode_samples(3, rate, w.sine(4.0, 60, rate, n, 277, noise_counts=20, seed=2)))
    r.polls(3)
    t, amps, valid, flags = r.sink.got[-1]
    assert valid == 0b101 and flags[1] == CT_NO_DATA
    assert abs(amps[0] / 16 - 1) < 0.01 and abs(amps[2] / 4 - 1) < 0.01


def test_stream_sample_block_flags_pass_through():
    r, s = stream_rig(cte=1)
    rate = 5000
    s.write(w.encode_samples(1, rate, [30000] * 500))  # stuck
    r.polls(3)
    t, amps, valid, flags = r.sink.got[-1]
    assert flags[0] & CT_STUCK and valid == 0


def test_stream_garbage_is_ignored_and_resyncs():
    r, s = stream_rig(cte=1)
    s.write(b"R 1 xx 2 3\nnoise\x00\xff\n" + w.encode_rms(2, (7, 0, 0)))
    r.polls(2)
    assert [g[1][0] for g in r.sink.got] == [7.0]
    assert r.meter.decoder.errors == 2


def test_inject_puts_in_a_reading():
    r, _s = stream_rig(cte=123)
    r.meter.inject((5, (1.0, 2.0, None), (CT_OK, CT_OK, CT_NO_DATA)))
    r.polls(1)
    t, amps, valid, flags = r.sink.got[-1]
    assert amps == (1.0, 2.0, 0.0) and valid == 0b011


def test_stream_repeating_one_seq_is_not_fresh():
    """Issue 8 C: a feed that repeats the same line must not keep the reading fresh."""
    r, s = stream_rig(cte=123)
    line = w.encode_rms(7, (12.5, 3, 0.07))
    for _ in range(50):  # 5 s of the same line every 100 ms
        s.write(line)
        r.polls(5)
    assert len(r.sink.got) == 1  # only the first one is a reading
    assert r.meter.repeats == 49
    assert sum(1 for t in r.logs if "repeats seq 7" in t) == 1
    s.write(w.encode_rms(8, (1, 2, 3)))
    r.polls(1)
    assert len(r.sink.got) == 2 and r.sink.got[-1][1] == (1.0, 2.0, 3.0)
    s.write(w.encode_rms(8, (1, 2, 3)))
    r.polls(1)
    assert len(r.sink.got) == 2 and sum(1 for t in r.logs if "repeats seq" in t) == 2
    # wrap-around is a new seq, not a repeat
    s.write(w.encode_rms(65535, (1, 2, 3)) + w.encode_rms(0, (1, 2, 3)))
    r.polls(1)
    assert len(r.sink.got) == 4


def test_injected_reading_with_a_repeated_seq_is_not_fresh():
    r, _s = stream_rig(cte=1)
    for _ in range(3):
        r.meter.inject((5, (1.0, None, None), (CT_OK, CT_NO_DATA, CT_NO_DATA)))
        r.polls(1)
    assert len(r.sink.got) == 1 and r.meter.repeats == 2


def test_balancer_goes_stale_while_the_feed_repeats_one_line():
    from actors.balancer import Balancer

    r, s = stream_rig(cte=1, dinamics=1, stale_ms=1000)
    bal = r.s.add(Balancer(r.settings))
    line = w.encode_rms(3, (5.0, 0, 0))
    for _ in range(30):  # 3 s of one repeated line
        s.write(line)
        r.polls(5)
    assert bal.ct.stale and bal.stats["stale"] == 1
