"""The balancer's regulation: one decision per fresh CT reading (or per the $GG / timer4 it
waited for), as named steps (`_regulate` reads as their sequence; docs/balancer.md explains the
rules). Part of the balancer actor: actors.balancer.Balancer derives (through
actors.balancer_output) from Regulation; this part decides the command and when to pause (the
resume is its mixin actors.balancer_resume), those turn messages into state and send the result.
"""

from adafruit_ticks import ticks_diff

from actors.balancer_resume import Resume
from dinamics import headroom as hr
from dinamics import messages as m
from dinamics import pause as pz
from dinamics import rapi

TICK_MS = 250  # housekeeping: stale check, $GG polling, timers 1-3
REQUEST_TAG = "balancer"  # rapi.request / rapi.reply tag of every command the balancer sends
TIMER_SHORTAGE = "timer4"  # a shortage pause is re-checked exactly timer4 after it began
FAULT_SOLAR = "solar"  # balancer.fault: a solar mode that cannot work (no signed CT data)

# Reasons posted with balancer.target
R_STATIC = "static"
R_HEADROOM = "headroom"
R_LIMIT = "limit"
R_MINIMUM = "minimum"
R_SOLAR = "solar"
R_STALE = pz.STALE  # (also the minimum-current fallback, stale_action 1)
R_NO_HEADROOM = pz.NO_HEADROOM
R_SOLAR_WAIT = pz.SOLAR_WAIT
R_BLIND = "blind"  # capped at hb_amps while the unit is blind (a WiFi join: dinamics.blind_cap)


class Regulation(Resume):
    def _reset_regulation(self):
        s = self.settings
        self.cmd = s.get("c_min_limit") if s.get("dinamics") else s.get("c_limit")
        self.reason = None  # why the command has its value (dynamic mode)
        self.max_current = 0  # what the supply allows now (status: max_charging_current)
        self.last_change = None  # tick of the last command change ...
        self.last_cut = False  # ... and whether it was a cut
        self.fresh_start = True  # charging (re)wanted: start at what fits
        self.on_since = None  # tick charging was (re)enabled: min_on_ms
        self.short_since = None  # the minimum does not fit since (timer4)
        self._t4 = None
        self.raise_since = None  # room for a raise since
        self.resume_since = None  # room to resume since
        self._solar_warned = False

    # --- helpers -----------------------------------------------------------------------------
    def _dynamic(self):
        return bool(self.settings.get("dinamics"))

    def _fitted(self):
        return hr.cte_mask(self.settings.get("cte"))

    def _ev_mask(self):
        fitted = self._fitted()
        if hr.mask_count(fitted) <= 1:
            return fitted
        return (self.phase_det.mask & fitted) or fitted

    def _active(self):
        """Charging wanted now and regulated by the CT loop."""
        return self.charge.wanted() and self.connected is not False

    def _c_limit(self):
        """The highest pilot to regulate to: c_limit, but not above what the controller accepts
        (a volatile $SC above its saved maximum is answered $NK with that cap, dinamics.evse_sync);
        never below c_min_limit. A command above the cap would change nothing on the wire: a cut
        to a value still above it would be no cut, and a car at the cap never reaches it."""
        s = self.settings
        c_limit = s.get("c_limit")
        cap = self.sync.evse_cap
        if cap is not None and cap < c_limit:
            c_min = s.get("c_min_limit")
            c_limit = cap if cap > c_min else c_min
        return c_limit

    def _reason_for(self, amps):
        if not self._dynamic():
            return R_STATIC
        if amps >= self._c_limit():
            return R_LIMIT
        return R_HEADROOM

    def _ev_estimate(self, now):
        """The car's current per phase now (dinamics.car_current), capped by the controller's
        heartbeat fallback (hb_amps) once the link has been down long enough for it to act."""
        cap = None
        if not self.link_up and self.down_t is not None:
            s = self.settings
            hb = s.get("hb_interval")
            if hb and ticks_diff(now, self.down_t) >= hb * 1000 + hr.EV_RESPONSE_MS:
                cap = float(s.get("hb_amps"))
        return self.car.estimate(now, self.cmd, cap)

    def _gg_fresh_for(self, t):
        """A $GG arrived after the reading's window started (the two describe the same moment)."""
        return self.car.fresh_for(t, self.ct.window_ms(self._fitted()))

    def _request_gg(self, now):
        self.car.asked(now)
        self.stats["gg_requests"] += 1
        self.post(m.RAPI_REQUEST, (self, REQUEST_TAG, "GG", None))

    def _ask_gg_again(self, now):
        """Ask for a $GG unless one was asked for within a tick."""
        if not self.car.asked_within(now, TICK_MS):
            self._request_gg(now)

    # --- one decision ------------------------------------------------------------------------
    def _regulate(self, now, t):
        """Decide on the reading that ended at tick t (the latest good one)."""
        s = self.settings
        c_min = s.get("c_min_limit")
        c_limit = self._c_limit()
        mask = self._ev_mask()
        over = hr.actual_over(s.get("breaker"), self.ct.amps, mask)
        new_over = self.proj.overload(now, over, self.last_change)
        pr = self._project(now, t, mask, new_over)
        a = hr.allowed(pr.h_lo, c_limit)
        self.max_current = a if a > 0 else 0
        if not self._active():
            self.short_since = self.raise_since = self.resume_since = None
            self.proj.calm()
            self.waits.reset()
            return
        if self.pauses.reason is not None:
            self._maybe_resume(now, pr.h_lo, mask)
            return
        if self.fresh_start and self.state != rapi.STATE_C:
            self._start_at_what_fits(now, pr.h_lo, mask, c_min, c_limit)
            return
        self.fresh_start = False
        kind, a = hr.regulate(self.cmd, pr.h_hi, c_min, c_limit)
        if kind == hr.SHORT:
            if not self._defer(now, t, over, new_over):
                self._shortage(now, t, c_min)
            return
        self.waits.no_pause()
        if self._shortage_lingers(pr.h_lo, c_min):
            return
        if s.get("solar"):
            got = self._follow_export(now, mask, c_min, c_limit)
            if got is None:
                return  # imported too long: paused
            kind, a, reason = got
        else:
            kind, a = hr.decide(self.cmd, pr.h_hi, pr.h_lo, c_min, c_limit)
            reason = self._reason_for(a)
        if over > 0.0 and self.proj.escalation_due(now, self.last_change):
            a2 = self._escalate(now, over)
            if a2 < c_min:
                self._pause_now(R_NO_HEADROOM)
                return
            if kind != hr.CUT or a2 < a:
                a, reason = a2, R_HEADROOM
            self.raise_since = None
            self._set_cmd(now, a, reason)  # no deferral: the model is wrong, not the $GG late
            return
        if kind == hr.CUT:
            self.raise_since = None
            if not self._defer(now, t, over, new_over):
                self._set_cmd(now, a, reason)
            return
        self.waits.no_cut()
        if kind == hr.RAISE:
            self._raise(now, t, a, reason)
        else:
            self._hold(reason, c_min, c_limit)

    def _project(self, now, t, mask, new_over):
        """The car during the reading (a range when it changed inside the window; for a new
        actual overload at most its present value) and what the reading leaves for it."""
        car = self.car
        charging = self.state == rapi.STATE_C
        ct = self.ct
        # the reading's values span a whole round of the CTs (ct_meter posts after every CT):
        # a $GG change within it may fall between two CTs' windows
        ev_lo, ev_hi = car.during(t, self._ev_estimate(now), self.link_up,
                                  ct.window_ms(self._fitted()))
        cap = None
        if new_over and charging:
            cap = car.gg if self._gg_fresh_for(t) else float(self.cmd)
        known = (car.known(now, t, ct.window_ms(self._fitted()), ct.jump_t, self.last_change)
                 if charging else not car.may_draw(now))
        pr = self.proj
        pr.project(self.settings.get("breaker"), ct.amps, mask, ev_lo, ev_hi, cap, known,
                   ct.steady, self.cmd if charging else None, t, car.before_t)
        return pr

    def _start_at_what_fits(self, now, h, mask, c_min, c_limit):
        """Nothing drawn yet, so the projection is exact: start at what fits (solar: at most
        the export), or pause when not even the minimum fits."""
        self.fresh_start = False
        a = hr.start_amps(h, c_min, c_limit)
        if a is None:
            self._pause_now(R_NO_HEADROOM)
            return
        room = None
        if self.settings.get("solar"):
            room = hr.floor_amps(hr.solar_room(self.ct.amps, 0.0, mask))
        self._start(now, a, room, c_min)

    def _start(self, now, a, room, c_min):
        """Command `a` to (re)start with; in solar mode at most the export `room` (but the
        minimum). Returns the command."""
        reason = self._reason_for(a)
        if room is not None and room < a:
            a = room if room >= c_min else c_min
            reason = R_SOLAR
        self._set_cmd(now, a, reason)
        return a

    # --- shortage: not even the minimum fits -------------------------------------------------
    def _shortage(self, now, t, c_min):
        """Drop to the minimum now, pause after timer4 (at once if far over)."""
        s = self.settings
        self.raise_since = None
        if self.short_since is None:
            self.short_since = now
            self.cancel(self._t4)
            self._t4 = self.after(s.get("timer4"), TIMER_SHORTAGE)  # re-check exactly then
        if hr.deficit_at_min(self.proj.h_hi, c_min) > hr.hard_over(s.get("breaker")):
            if not self._car_unsure(now, t):
                self._pause_now(R_NO_HEADROOM)
                return
            # the car may be following an earlier cut (its $GG is older than the reading, or it
            # changed during the reading): the pause at once waits for the $GG that answers or
            # the next reading; short it is all the same, so once timer4 has run it pauses as
            # any shortage does (waiting for the car could hold it up to a second beyond)
        if self._short_past_timer4(now, t):
            self._pause_now(R_NO_HEADROOM)
            return
        self._set_cmd(now, c_min, R_MINIMUM)

    def _short_past_timer4(self, now, t):
        """Still short after timer4: pause, judged on a reading whose $GG matches it (the car's
        own change after a stale $GG must not make the shortage look over / worse); asks for
        that $GG, at most GG_DEFER_MAX_MS."""
        t4 = self.settings.get("timer4")
        if ticks_diff(now, self.short_since) < t4:
            return False
        if (self.state != rapi.STATE_C or self._gg_fresh_for(t)
                or ticks_diff(now, self.short_since) >= t4 + hr.GG_DEFER_MAX_MS):
            return True
        self._ask_gg_again(now)
        return False

    def _shortage_timer(self):
        """timer4: still short? decided on the next reading, with a $GG that matches it."""
        self._t4 = None
        if self.short_since is not None and self.ct.good_t is not None and self._dynamic():
            if self.state == rapi.STATE_C and self.link_up:
                self._request_gg(self.now())
            else:
                self._regulate(self.now(), self.ct.good_t)
                self._apply()

    def _shortage_lingers(self, h_lo, c_min):
        """After a shortage, stay at the minimum until the pessimistic projection shows it over."""
        if self.short_since is None:
            return False
        if h_lo < c_min + hr.HOLD_A - hr.EPS:
            return True
        self.short_since = None
        return False

    # --- waiting for the $GG that settles a decision -----------------------------------------
    def _defer(self, now, t, over, new_over):
        """A cut (or shortage) that may wait for a fresh $GG (dinamics.gg_waits). True = wait."""
        w = self.waits.cut(now, t, (over > 0.0 and new_over) or self.state != rapi.STATE_C,
                           self.car)
        self._ask_if_waiting(now)
        return w

    def _car_unsure(self, now, t):
        """A hard-over pause that may wait to know the car's current. False = decide now."""
        w = self.waits.pause(now, self.state != rapi.STATE_C or not self.link_up,
                             not self.proj.mixed and (self._gg_fresh_for(t) or self.car.after(t)))
        self._ask_if_waiting(now)
        return w

    def _ask_if_waiting(self, now):
        if self.waits.ask:
            self.stats["deferred"] += 1
            self._request_gg(now)

    # --- solar, escalation, raise, hold ------------------------------------------------------
    def _follow_export(self, now, mask, c_min, c_limit):
        """Solar mode: the pilot follows the room at zero net import (the breaker rules still on
        top); below the minimum it holds the minimum. Returns (kind, amps, reason), or None when
        importing for solar_stop_ms paused the charge."""
        s = self.settings
        if not s.get("neg_amp") and not self._solar_warned:
            self._solar_warned = True
            self.post(m.BALANCER_FAULT,
                      (FAULT_SOLAR, "1", "solar mode needs set_neg_amp 1 (signed CT data)"))
        pr = self.proj
        amps = self.ct.amps
        reason = R_SOLAR if pr.limit_to_export(amps, mask) else None
        kind, a = hr.decide(self.cmd, pr.h_hi, pr.h_lo, c_min, c_limit)
        if kind == hr.SHORT:  # the export does not cover the minimum: hold it
            kind, a = (hr.CUT if self.cmd > c_min else hr.HOLD), c_min
        if self._imported_too_long(now, amps, mask):
            return None
        return kind, a, reason or self._reason_for(a)

    def _imported_too_long(self, now, amps, mask):
        """Solar mode: importing (> SOLAR_IMPORT_A on an EV phase) for solar_stop_ms pauses the
        charge, but never before it ran min_on_ms. True when it paused."""
        s = self.settings
        if not self.pauses.import_lasted(now, hr.max_import(amps, mask) > hr.SOLAR_IMPORT_A,
                                         s.get("solar_stop_ms")):
            return False
        if self.on_since is not None and ticks_diff(now, self.on_since) < s.get("min_on_ms"):
            return False
        self.log(m.INFO, "solar: importing for solar_stop_ms, pausing")
        self._pause_now(R_SOLAR_WAIT)
        return True

    def _escalate(self, now, over):
        """Safety net (dinamics.projection): an actual overload outlived the last change by
        ESCALATE_MS: cut by the measured excess. Returns the command that takes it off."""
        self.proj.escalated(now)
        self.stats["escalations"] += 1
        self.log(m.WARNING, "still %.1f A over the breaker after a cut: cutting by the excess"
                 % over)
        return hr.floor_amps(self.cmd - over - hr.MARGIN_A)

    def _raise(self, now, t, a, reason):
        """Raise on a steady reading only (a load step half-way through a reading's window shows
        as part of itself), once the car has settled after the last change and the room held
        RAISE_CONFIRM_MS; while charging, on a reading whose $GG matches it (asks for one).
        After a raise the car need not have arrived: while a fresh $GG shows it at or below the
        command it is rising, and h_lo (the car at that $GG) overstates the house."""
        if self.raise_since is None:
            self.raise_since = now
        settled = (self.last_change is None or self.last_cut
                   or ticks_diff(now, self.last_change) >= hr.SETTLE_MS
                   or self.car.followed(now, self.cmd, self.last_change)
                   or self.car.not_above(now, self.cmd))
        if settled and self.ct.steady and ticks_diff(now, self.raise_since) >= hr.RAISE_CONFIRM_MS:
            if self.state != rapi.STATE_C or self._gg_fresh_for(t):
                self.raise_since = None
                self._set_cmd(now, a, reason)
            else:
                # the periodic $GG may keep landing just before the readings' windows: ask now,
                # so that the next reading has a $GG that matches it
                self._ask_gg_again(now)

    def _hold(self, reason, c_min, c_limit):
        """Keep the command; say why it has its value."""
        self.raise_since = None
        if self.cmd >= c_limit:
            self.reason = R_LIMIT
        elif reason == R_SOLAR:
            self.reason = R_SOLAR
        elif self.reason != R_MINIMUM or self.cmd != c_min:
            self.reason = R_HEADROOM

    def _set_cmd(self, now, amps, reason):
        if self._dynamic():
            c = self.blind.clip(now, amps)  # no raise above the blind cap (dinamics.blind_cap)
            if c < amps:
                amps, reason = c, R_BLIND
        if amps != self.cmd:
            if amps < self.cmd:
                self.stats["cuts"] += 1
                self.charge.cut(now, self.cmd)  # timer3 allows the old value a while
            else:
                self.stats["raises"] += 1
            self.last_cut = amps < self.cmd
            self.cmd = amps
            self.last_change = now
        self.reason = reason

    def _apply(self):
        """Send the decision (actors.balancer)."""
