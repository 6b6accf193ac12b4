"""The balancer's pause and its automatic resume (half of the regulation, a mixin):
actors.balancer_regulation.Regulation derives from Resume. A pause (FS) is begun by the
regulation's steps (`_pause_now`: a shortage, stale data, solar) and ends here on its own
(`_maybe_resume`: minimum-off time over, then room on every fresh reading for RESUME_CONFIRM_MS);
the pause itself is held by dinamics.pause.Pause. docs/balancer.md explains the rules.
"""

from adafruit_ticks import ticks_diff

from dinamics import headroom as hr
from dinamics import messages as m
from dinamics.mailbox import Actor


class Resume(Actor):
    def _maybe_resume(self, now, h, mask):
        """Automatic restart after a balancer pause: min_off_ms over (waived for the first solar
        start), then minimum + resume_margin must fit on every fresh reading for
        RESUME_CONFIRM_MS (solar: export >= solar_start as well)."""
        s = self.settings
        solar = s.get("solar")
        c_min = s.get("c_min_limit")
        ok = hr.resume_ok(h, c_min, s.get("resume_margin"))
        export = -hr.max_import(self.ct.amps, mask)
        if ok and solar:
            ok = export >= s.get("solar_start")
        if not ok:
            self.resume_since = None
            self.pauses.data_back()  # stale data is back without room: now it waits for room
            return
        if not self.pauses.may_resume(now, s.get("min_off_ms")):
            self.resume_since = None  # room, but the pause (whatever its reason) lasts min_off
            return
        if self.resume_since is None:
            self.resume_since = now
            return
        if ticks_diff(now, self.resume_since) < hr.RESUME_CONFIRM_MS:
            return
        a = hr.start_amps(h, c_min, self._c_limit())
        if a is None:  # cannot happen after resume_ok; never start below the minimum anyway
            return
        self.pauses.resumed(now)
        self.resume_since = self.short_since = None
        self.proj.calm()
        self.fresh_start = False
        self.on_since = now
        self.stats["resumes"] += 1
        a = self._start(now, a, hr.floor_amps(export) if solar else None, c_min)
        self.log(m.INFO, "resuming at %d A" % a)

    def _pause_now(self, reason, waive_min_off=False):
        """Balancer pause (FS); it resumes by itself (see _maybe_resume)."""
        now = self.now()
        if self.pauses.begin(now, reason, waive_min_off):
            self.stats["pauses"] += 1
            if not waive_min_off:
                self.log(m.WARNING, "pause: %s (restart after >= %d s)"
                         % (reason, self.pauses.off_ms(self.settings.get("min_off_ms")) // 1000))
        self.short_since = self.raise_since = self.resume_since = None
        self.waits.reset()
        self.proj.calm()
        self.on_since = None
