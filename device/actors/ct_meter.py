"""ct_meter: house mains current per phase from up to 3 CT clamps -> `ct.reading`.

Board mode (`port.ct_adc`): the fitted CTs (set_cte) are captured one after another, ONE mains
cycle per poll(), because analogbufio's readinto() blocks until its buffer is full: a scheduler
pass never blocks longer than one cycle (20 ms at 50 Hz, 16.7 ms at 60 Hz) plus the analysis.
Per CT the statistics of `ct_cycles` consecutive cycles are combined (count, mean, variance,
min, max) and the CT is finished after ct_cycles polls; when every fitted CT is finished one
reading is posted, and from then on one after each CT (the fresh CT updated, the others keeping
their last values): with 3 CTs and 5 cycles a reading every ~100 ms, each CT refreshed every
~300 ms.

    port.ct_adc surface (implemented by dinamics.board_port.AdcCapture):
      channels      sequence of CT indices (0 = CT1 .. 2 = CT3) that have an ADC1 pin
      sample_rate   int, the sampling rate in Hz that capture() really uses
      capture(ch, buf) -> int
                    fill buf (array('H'), 16-bit scaled counts as analogbufio delivers them) with
                    consecutive samples of CT `ch`, blocking until done; return the number of
                    samples captured (readinto's return value; fewer than len(buf) = short)
      full_scale_v, bias_v   optional floats (default ct_math.ADC_FULL_SCALE_V / BIAS_V)

The window of one poll is window_samples(sample_rate, mains_hz, 1) samples: a whole mains cycle
to within half a sample. Combining the cycles: with n_i samples, mean m_i and variance v_i per
cycle, the window's variance is (sum n_i v_i + sum n_i (m_i - m)^2) / N -- the second sum is kept
relative to the first cycle's mean, so nothing cancels catastrophically in single-precision
floats. The DC bias is the window's mean (exact over whole cycles); RMS and plausibility come
from dinamics.ct_math (ulab where present), calibration from the `calibration` setting.

HIL mode (`port.ct_stream`: usb_cdc.data with timeout 0 on a board, a pyserial port on the host):
bytes go to dinamics.ct_feed.CtFeedDecoder. An `R` line is a whole reading; `S` blocks (one CT
each, analysed like a capture) are collected until every fitted CT has a fresh value. Readings
can also be injected in-process with inject() and the decoder's tuple (seq, (a1, a2, a3),
(f1, f2, f3)) (a None amp = no data).
A reading whose seq equals the previous one's is NOT fresh: a feed that keeps repeating one line
(a stuck rig, a replayed buffer) posts nothing, counts `repeats` and logs once per run of
repeats, so the balancer's stale_ms fallback triggers as if the feed had stopped.

Output, m.CT_READING: (t_ms, amps, valid, flags)
  t_ms   tick when the reading was complete
  amps   3 floats, A rms per CT, 0.0 where not valid. Negative (export) only passes through with
         set_neg_amp 1; otherwise the magnitude (a clamp cannot tell direction anyway).
  valid  bit n set = CT n+1 is fitted and its reading is plausible
  flags  3 ints, ct_math flags: CT_NO_DATA (not fitted, no data, short capture, ADC error),
         CT_STUCK, CT_SATURATED, CT_DISCONNECTED; an implausible CT has its valid bit cleared.
         HIL R values beyond what the clamp can deliver to the ADC (calibration) are SATURATED.
set_cte 0 = no CT: board mode posts an all-invalid reading once a second.
"""

import math
from array import array

from adafruit_ticks import ticks_diff

from dinamics import ct_math
from dinamics import messages as m
from dinamics.mailbox import Actor

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_CTE_BITS = {0: 0, 1: 1, 2: 2, 3: 4, 12: 3, 13: 5, 23: 6, 123: 7}
_EMPTY_PERIOD_MS = const(1000)
_READ_MAX = const(1024)  # HIL bytes per poll
_NO = (ct_math.CT_NO_DATA, ct_math.CT_NO_DATA, ct_math.CT_NO_DATA)


class _Window:
    """Statistics of one CT over several one-cycle captures."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.n = 0
        self.var_sum = 0.0  # sum n_i * v_i
        self.ref = 0.0  # mean of the first cycle
        self.d1 = 0.0  # sum n_i * (m_i - ref)
        self.d2 = 0.0  # sum n_i * (m_i - ref)^2
        self.lo = ct_math.ADC_MAX + 1
        self.hi = -1
        self.bad = False
        self.cycles = 0

    def add(self, rms, mean, lo, hi, n):
        if self.n == 0:
            self.ref = mean
        d = mean - self.ref
        self.var_sum += n * rms * rms
        self.d1 += n * d
        self.d2 += n * d * d
        self.n += n
        if lo < self.lo:
            self.lo = lo
        if hi > self.hi:
            self.hi = hi

    def result(self):
        """(rms_counts, mean, lo, hi) of the whole window."""
        n = self.n
        var = (self.var_sum + self.d2 - self.d1 * self.d1 / n) / n
        if var < 0.0:
            var = 0.0
        return math.sqrt(var), self.ref + self.d1 / n, self.lo, self.hi


class CtMeter(Actor):
    name = "ct_meter"
    subscribes = (m.SETTING_CHANGED,)
    inbox_size = 8
    polls = True

    def __init__(self, settings, port):
        super().__init__()
        self.settings = settings
        self.stream = getattr(port, "ct_stream", None)
        self.adc = None if self.stream is not None else getattr(port, "ct_adc", None)
        self.readings = 0
        self.captures = 0
        self.short_captures = 0
        self.adc_errors = 0
        self.max_poll_samples = 0  # most samples captured in one poll() (test hook)
        self.last_poll_samples = 0
        self.decoder = None
        self.buf = None
        self._win = _Window()
        self._amps = [0.0, 0.0, 0.0]
        self._flags = [ct_math.CT_NO_DATA] * 3
        self._got = 0
        self._last_empty = None
        self._adc_error_logged = False
        self.repeats = 0  # R lines / injected readings with the previous seq: not fresh
        self._last_seq = None
        self._repeat_logged = False
        self._configure()

    # --- configuration -----------------------------------------------------------------------
    def _configure(self):
        s = self.settings
        self.fitted = _CTE_BITS.get(s.get("cte"), 0)
        cal = s.get("calibration")
        hz = s.get("mains_hz")
        self.cycles = s.get("ct_cycles")
        self.neg = bool(s.get("neg_amp"))
        self.order = []
        self._idx = 0
        self._primed = False
        self._got = 0
        self._win.clear()
        if self.stream is not None:
            if self.decoder is None:
                from dinamics import ct_feed  # HIL mode only: a board on its ADCs never loads it

                self.decoder = ct_feed.CtFeedDecoder((cal, cal, cal), hz)
            else:
                self.decoder.set_calibrations((cal, cal, cal))
                self.decoder.mains_hz = hz
            fs = ct_math.ADC_FULL_SCALE_V
            bias = ct_math.BIAS_V
        else:
            fs = getattr(self.adc, "full_scale_v", ct_math.ADC_FULL_SCALE_V)
            bias = getattr(self.adc, "bias_v", ct_math.BIAS_V)
            chans = self.adc.channels if self.adc is not None else ()
            for i in range(3):
                if self.fitted & (1 << i) and i in chans:
                    self.order.append(i)
            if self.adc is not None:
                rate = self.adc.sample_rate
                n = ct_math.window_samples(rate, hz, 1)
                if self.buf is None or len(self.buf) != n:
                    self.buf = None  # free the old one first
                    self.buf = array("H", [0] * n)
                self.n = n
        self.full_scale_v = fs
        self.bias_v = bias
        self.amps_per_count = ct_math.amps_per_count(cal, fs) if cal > ct_math.CAL_OFF else 0.0
        # the largest RMS a clamp can put on the ADC without clipping (HIL plausibility)
        swing = bias if bias < fs - bias else fs - bias
        self.max_amps = ct_math.amps_per_volt(cal) * swing / math.sqrt(2.0)

    def handle(self, kind, payload):
        if kind == m.SETTING_CHANGED:
            for name in payload:
                if name in ("cte", "calibration", "mains_hz", "ct_cycles", "neg_amp"):
                    self._configure()
                    break

    def inject(self, sample):
        """A decoded HIL reading (seq, (a1, a2, a3), (f1, f2, f3)) as if the feed had sent it."""
        self._decoded(sample)

    # --- the loop ----------------------------------------------------------------------------
    def poll(self, budget_ms):
        if self.stream is not None:
            self._poll_stream()
        elif self.adc is not None:
            self._poll_adc()

    def _poll_adc(self):
        self.last_poll_samples = 0
        if not self.order or self.amps_per_count == 0.0:
            now = self.now()
            if self._last_empty is None or ticks_diff(now, self._last_empty) >= _EMPTY_PERIOD_MS:
                self._last_empty = now
                self._emit(now, (0.0, 0.0, 0.0), 0, _NO)
            return
        ch = self.order[self._idx]
        w = self._win
        try:
            got = self.adc.capture(ch, self.buf)
        except (OSError, RuntimeError, ValueError) as e:
            got = 0
            self.adc_errors += 1
            if not self._adc_error_logged:
                self._adc_error_logged = True
                self.log(m.ERROR_LEVEL, "CT%d capture failed: %s" % (ch + 1, e))
        self.captures += 1
        if got is None:
            got = 0
        self.last_poll_samples = got
        if got > self.max_poll_samples:
            self.max_poll_samples = got
        if got < self.n:
            self.short_captures += 1
            w.bad = True  # a partial cycle would bias the mean: the whole window is void
        elif not w.bad:
            rms, mean, lo, hi = ct_math.analyse(self.buf, self.n)
            w.add(rms, mean, lo, hi, self.n)
        w.cycles += 1
        if w.cycles < self.cycles:
            return
        # this CT is done
        if w.bad or w.n == 0:
            amps, flags = 0.0, ct_math.CT_NO_DATA
        else:
            rms, mean, lo, hi = w.result()
            flags = ct_math.plausibility(mean, lo, hi, rms, self.full_scale_v, self.bias_v)
            amps = rms * self.amps_per_count
            if amps < ct_math.NOISE_FLOOR_A:
                amps = 0.0
        self._amps[ch] = amps
        self._flags[ch] = flags
        w.clear()
        self._idx += 1
        if self._idx >= len(self.order):
            self._idx = 0
            self._primed = True
        if self._primed:
            # Post after every CT, not once per round: a step on a phase reaches the balancer
            # one CT window after it is measured instead of up to a whole round later.
            self._finish_adc()

    def _finish_adc(self):
        present = 0
        for i in self.order:
            present |= 1 << i
        self._post(present)

    def _post(self, present):
        """Post the current values: a CT not fitted (or without an ADC pin) reads NO_DATA, an
        implausible one 0 A with its flag; `valid` marks the plausible fitted ones."""
        valid = 0
        a = self._amps
        f = self._flags
        for i in range(3):
            if not (self.fitted & present & (1 << i)):
                a[i] = 0.0
                f[i] = ct_math.CT_NO_DATA
            elif f[i] == ct_math.CT_OK:
                valid |= 1 << i
            else:
                a[i] = 0.0
        self._emit(self.now(), (a[0], a[1], a[2]), valid, (f[0], f[1], f[2]))

    def _poll_stream(self):
        dec = self.decoder
        try:
            dec.read_from(self.stream, _READ_MAX)
        except (OSError, ValueError) as e:
            if not self._adc_error_logged:
                self._adc_error_logged = True
                self.log(m.ERROR_LEVEL, "CT feed read failed: %s" % e)
            return
        r = dec.pop()
        while r is not None:
            self._decoded(r)
            r = dec.pop()

    def _decoded(self, r):
        """One decoder result (seq, amps3, flags3): an R line (seq given, all CTs) or an S block
        (seq None, one CT)."""
        seq, amps, flags = r
        whole = seq is not None
        if whole:
            if seq == self._last_seq:
                self.repeats += 1
                if not self._repeat_logged:
                    self._repeat_logged = True
                    self.log(m.WARNING, "CT feed repeats seq %d: not fresh" % seq)
                return
            self._last_seq = seq
            self._repeat_logged = False
            self._got = 0
        for i in range(3):
            bit = 1 << i
            if not (self.fitted & bit):
                continue
            a = amps[i]
            f = flags[i]
            if a is None or f == ct_math.CT_NO_DATA:
                if whole:
                    self._amps[i] = 0.0
                    self._flags[i] = ct_math.CT_NO_DATA
                    self._got |= bit
                continue
            if not self.neg and a < 0.0:
                a = -a
            if f == ct_math.CT_OK and (a > self.max_amps or a < -self.max_amps):
                f = ct_math.CT_SATURATED  # more than the clamp can deliver to the ADC
            self._amps[i] = a
            self._flags[i] = f
            self._got |= bit
        if self.fitted and (self._got & self.fitted) != self.fitted:
            return  # S blocks: wait for the other fitted CTs
        self._got = 0
        self._post(7)

    def _emit(self, t, amps, valid, flags):
        self.readings += 1
        self.last = (t, amps, valid, flags)
        self.post(m.CT_READING, self.last)
