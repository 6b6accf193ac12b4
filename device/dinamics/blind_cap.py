"""The blind cap: the pilot is held at a safe current while the unit is blind.

A long blocking call (a WiFi join: net.blocking, up to 6.5 s) stops every pass: no CT reading is
read and no `$SC` can go out, so a load step that lands then would be cut only after the call,
past the reaction budget (docs/balancer.md). Anything longer than BLIND_OK_MS (what the budget
tolerates on top of the normal reaction: a 3 s scan or DNS lookup passes with only the `$SY`
pulse) is therefore announced to the balancer first: it cuts the charging car to the current the
controller itself falls back to when the unit falls silent (hb_amps), before the call starts, and
holds that cap until the call is surely over plus timer13 (the readings made since come in). Then
the balancer raises by its normal rules: there is no restore of the old value.

The call starts when rapi_link answers the hold, or at the latest GRANT_MS after it was announced
(the wifi actor's HOLD_WAIT_MS: it goes ahead without an answer); it lasts at most `ms`. So the cap
ends GRANT_MS + ms + timer13 after the announcement: a bound, from ticks passed in (no clock of
its own), that a slow controller reply cannot shorten.

Ticks in, no clock, no I/O.
"""

from adafruit_ticks import ticks_add, ticks_diff

BLIND_OK_MS = 4000  # a blocking call up to this long needs no cut (a 3 s scan, an NTP DNS lookup)
GRANT_MS = 1500  # the latest a blocking call starts after its announcement (wifi.HOLD_WAIT_MS)


class BlindCap:
    def __init__(self):
        self.reset()

    def reset(self):
        self.amps = None  # the cap in force (None: none)
        self.until = None  # tick it ends

    def begin(self, now, ms, amps, timer13):
        """A blocking call of up to `ms` comes: cap at `amps` until it is surely over (a cap in
        force is lengthened, never raised)."""
        end = ticks_add(now, GRANT_MS + ms + timer13)
        if self.until is None or ticks_diff(end, self.until) > 0:
            self.until = end
        if self.amps is None or amps < self.amps:
            self.amps = amps

    def cap(self, now):
        """The cap in force at `now` (None: none; an expired cap is dropped here)."""
        if self.until is not None and ticks_diff(now, self.until) >= 0:
            self.reset()
        return self.amps

    def clip(self, now, amps):
        """`amps`, but not above the cap in force."""
        c = self.cap(now)
        return amps if c is None or amps <= c else c
