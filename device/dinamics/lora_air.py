"""Time on air of an SX127x LoRa frame and the rolling airtime ledger per band (docs/lora.md).

Time on air (SX1276 datasheet 4.1.1.6, Semtech AN1200.13), in microseconds:
  Tsym = 2^SF / BW;  preamble = (npre + 4.25) Tsym
  payload symbols = 8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) / (4 (SF - 2 DE))) (CR + 4), 0)
with DE (low data rate optimisation) on when Tsym >= 16 ms, as the RFM9x libraries and
RadioHead set it; explicit header (IH 0), CRC on, coding rate 4/5 by default.
"""
try:
    from micropython import const
except ImportError:
    def const(expr):
        return expr

from adafruit_ticks import ticks_add, ticks_diff

_BUCKETS = const(60)

# band setting -> (window ms, airtime allowed in the window ms, longest frame ms or 0)
# 868: EU868 868.0-868.6 MHz, 1 % duty cycle (36 s per hour)
# 869: EU868 869.4-869.65 MHz, 10 % (360 s per hour, up to 500 mW)
# 915: US915, at most 400 ms on one channel in any 20 s, and 400 ms per frame
BANDS = {868: (3600000, 36000, 0), 869: (3600000, 360000, 0), 915: (20000, 400, 400)}
RESERVE_PCT = const(10)  # the last 10 % of the budget: safety traffic only


def airtime_us(pl, sf=7, bw_khz=125, cr=5, preamble=8, crc=True, explicit=True):
    """pl: bytes in the LoRa payload (everything the radio sends after the PHY header)."""
    tsym = (1 << sf) * 1000 // bw_khz  # exact for 125/250/500 kHz
    de = 1 if tsym >= 16000 else 0
    num = 8 * pl - 4 * sf + 28 + (16 if crc else 0) - (0 if explicit else 20)
    den = 4 * (sf - 2 * de)
    n = 8 + max(-(-num // den) * cr, 0)
    return (4 * preamble + 17) * tsym // 4 + n * tsym


class Ledger:
    """Airtime spent in a rolling window (the band's: an hour, or 20 s on US915) in buckets of
    window/60; `allow(ms, safety)` says whether a frame may go now."""

    def __init__(self, band=868):
        self.set_band(band)

    def set_band(self, band):
        self.band = band
        self.window, self.budget, self.dwell = BANDS[band]
        self.step = self.window // _BUCKETS
        self.buckets = [0] * _BUCKETS
        self.at = None  # tick of the current bucket's start
        self.i = 0
        self.used = 0
        self.total_us = 0  # since boot
        self.frames = 0
        self.refused = 0
        self.refused_safety = 0
        self.peak_us = 0  # the most ever used in one window

    def _roll(self, now):
        if self.at is None:
            self.at = now
            return
        gone = ticks_diff(now, self.at) // self.step
        if gone <= 0:
            return
        b = self.buckets
        for _ in range(min(gone, _BUCKETS)):
            self.i = (self.i + 1) % _BUCKETS
            self.used -= b[self.i]
            b[self.i] = 0
        self.at = ticks_add(self.at, gone * self.step) if gone < _BUCKETS else now

    def used_ms(self, now):
        self._roll(now)
        return self.used // 1000

    def allow(self, now, us, safety):
        """True when a frame of `us` fits: anything below the reserve, safety traffic up to the
        budget itself, never beyond it (nor a frame longer than the dwell limit)."""
        self._roll(now)
        if self.dwell and us > self.dwell * 1000:
            ok = False
        else:
            room = self.budget * 1000 - self.used
            if not safety:
                room -= self.budget * 10 * RESERVE_PCT
            ok = us <= room
        if not ok:
            self.refused += 1
            if safety:
                self.refused_safety += 1
        return ok

    def spend(self, now, us):
        self._roll(now)
        self.buckets[self.i] += us
        self.used += us
        if self.used > self.peak_us:
            self.peak_us = self.used
        self.total_us += us
        self.frames += 1

    def pct_x100(self, now):
        """Share of the window's time on air, in hundredths of a percent."""
        return self.used_ms(now) * 10000 // self.window
