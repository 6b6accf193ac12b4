"""balancer: decides whether the EVSE is enabled and what pilot current it advertises, so that the
house stays under its main breaker while the car charges as fast as the supply allows.

See docs/balancer.md for the algorithm, the settings and the reaction budget. In short:
- Static mode (set_dinamics 0): pilot = c_limit.
- Dynamic mode: on every fresh, plausible ct.reading, headroom = min over the EV's phases of
  breaker - max(0, house_p - ev) with ev the car's measured current ($GG, polled ~1/s while
  charging); i.e. decisions are made on the projected steady state, so the car's ~5 s lag causes
  neither double cuts nor oscillation. Cut at once, raise only when settled and confirmed
  (rate-limited, hysteresis band), integer amps. Less than the minimum: drop to the minimum, pause
  after timer4 (at once if far over), resume automatically after min_off_ms once minimum +
  resume_margin fits for a confirmation period. Stale/implausible CT data: pause or minimum
  (stale_action) plus one error message; the controller's $SY heartbeat covers a dead link.
- Enable intent: set_enable (charge.command 1 off / 2 on / 3 sleep) is obeyed in every mode;
  plug&charge (or no-WAN plug&charge while the broker is down) enables on plug-in; auto-stops of
  timers 1-3; optional solar-surplus mode.
The decision arithmetic lives in dinamics.headroom (pure, property-tested); this actor keeps time
and state. Every RAPI command goes out as rapi.request with tag "balancer".
"""

from adafruit_ticks import ticks_add, ticks_diff

from dinamics import headroom as hr
from dinamics import messages as m
from dinamics import rapi
from dinamics import charge_intent as ci
from dinamics.car_current import CarCurrent
from dinamics.charge_intent import ChargeIntent
from dinamics.mailbox import Actor
from dinamics import pause as pz
from dinamics.pause import Pause
from dinamics.phase_detect import PhaseDetector

ENABLE_OFF = ci.OFF
ENABLE_ON = ci.ON
ENABLE_SLEEP = ci.SLEEP
_ENABLE_CMD = {ENABLE_OFF: "FD", ENABLE_ON: "FE", ENABLE_SLEEP: "FS"}

TICK_MS = 250  # housekeeping: stale check, $GG polling, timers 1-4
REQUEST_TAG = "balancer"  # rapi.request / rapi.reply tag of every command the balancer sends
TIMER_TICK = "tick"  # the TICK_MS housekeeping timer
TIMER_SHORTAGE = "timer4"  # a shortage pause is re-checked exactly timer4 after it began
FAULT_ENABLE = "enable"  # balancer.fault codes: an auto-stop ...
FAULT_SOLAR = "set_solar"  # ... and a solar mode that cannot work (no signed CT data)
_CT_PERIOD_DEFAULT = 300

# Reasons posted with balancer.target
R_STATIC = "static"
R_HEADROOM = "headroom"
R_LIMIT = "limit"
R_MINIMUM = "minimum"
R_SOLAR = "solar"
R_STALE = pz.STALE  # (also the minimum-current fallback, stale_action 1)
R_NO_HEADROOM = pz.NO_HEADROOM
R_SOLAR_WAIT = pz.SOLAR_WAIT
R_WAIT_CT = "waiting for CT"
R_OFF = "off"
R_SLEEP = "sleep"
R_STOPPED = "stopped"

_DYNAMIC_SETTINGS = ("c_limit", "c_min_limit", "dinamics", "breaker", "cte", "solar", "neg_amp",
                     "stale_ms", "stale_action")


class Balancer(Actor):
    name = "balancer"
    subscribes = (m.LINK_STATUS, m.EVSE_STATE, m.EVSE_BOOT, m.CHARGE_COMMAND, m.SETTING_CHANGED,
                  m.RAPI_REPLY, m.CT_READING, m.EVSE_CURRENT, m.EVSE_PLUG, m.NET_STATUS)
    inbox_size = 32

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self._base = [0.0, 0.0, 0.0]
        self.phase_det = PhaseDetector()
        self.charge = ChargeIntent()  # enable intent, plug&charge, auto-stops (timers 1-3)
        self.car = CarCurrent()  # the car's current ($GG) and the estimates built on it
        self.pauses = Pause()  # the only writer of the pause and its reason
        self.reset()

    # --- state -----------------------------------------------------------------------------
    def reset(self):
        s = self.settings
        self.link_up = False
        self.down_t = None  # tick the link went down (None: up, or never up yet)
        self.state = None  # EVSE state from $AT/$GS
        self.vflags = 0
        self.connected = None  # car plugged in: True / False / None unknown
        self.net_up = None  # broker: None unknown (treated as up), True, False
        self.pauses.reset()
        self.cmd = s.get("c_min_limit") if s.get("dinamics") else s.get("c_limit")
        self.charge.reset(s.get("plugandcharge"), self.cmd)
        self.sent_amps = None
        self.sent_enable = None
        self.evse_cap = None  # the controller refused more than this ($NK to a volatile SC)
        self.sc_inflight = False
        self.target = None  # last posted balancer.target (amps, reason)
        self.reason_posted = None
        self.reason = None  # why the command has its value (dynamic mode)
        self.max_current = 0  # what the supply allows now (status: max_charging_current)
        self.phases = None  # last posted (active_phases, no_of_phases)
        # CT readings
        self.amps = (0.0, 0.0, 0.0)
        self.valid = 0
        self.flags = (0, 0, 0)
        self.last_t = None  # tick of the last reading seen (dedupe)
        self.good_t = None  # tick of the last good reading
        self.ct_period = _CT_PERIOD_DEFAULT
        self.stale = False
        self.readings = 0
        self.bad_readings = 0
        self.car.reset()
        self.ever_charged = False  # state C seen in this plug session
        # regulation
        self.last_change = None  # tick of the last command change
        self.last_cut = False  # ... and whether it was a cut
        self.raise_since = None
        self.steady = False
        self.jump_t = None  # tick of the last reading in which a phase moved (not steady)
        self._t4 = None
        self.short_since = None
        self.resume_since = None
        self.defer_t = None
        self.defer_ref = None
        self.unsure_t = None  # tick a hard-over pause began waiting to know the car's current
        self.over_since = None
        self.fresh_start = True
        self.on_since = None  # tick charging was (re)enabled: min_on_ms
        self.import_since = None
        self.boot_t = None
        self._solar_warned = False
        self.phase_det.reset()
        self.stats = {"cuts": 0, "raises": 0, "pauses": 0, "resumes": 0, "stale": 0,
                      "deferred": 0, "escalations": 0, "stops": 0, "gg_requests": 0}

    @property
    def pause(self):
        """The balancer pause's reason (it auto-resumes), or None."""
        return self.pauses.reason

    def start(self):
        self.boot_t = self.now()
        self._t4 = None
        self.every(TICK_MS, TIMER_TICK)

    # --- helpers -----------------------------------------------------------------------------
    def _dynamic(self):
        return bool(self.settings.get("dinamics"))

    def _pc(self):
        """Plug&charge in effect: the setting, or no-WAN plug&charge while the broker is down."""
        s = self.settings
        if s.get("plugandcharge"):
            return True
        return bool(s.get("nwpc")) and self.net_up is False

    def _fitted(self):
        return hr.cte_mask(self.settings.get("cte"))

    def _ev_mask(self):
        fitted = self._fitted()
        if hr.mask_count(fitted) <= 1:
            return fitted
        return (self.phase_det.mask & fitted) or fitted

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

    def _window_ms(self):
        """A reading's values span a whole round of the fitted CTs (ct_meter posts after every
        CT): ct_period x fitted CTs. (One ct_period alone is shorter than the $GG period, and
        whether any reading matched a $GG then hung on sub-ms ordering.)"""
        return self.ct_period * (hr.mask_count(self._fitted()) or 1)

    def _gg_fresh_for(self, t):
        """A $GG arrived after the reading's window started (the two describe the same moment)."""
        return self.car.fresh_for(t, self._window_ms())

    def _active(self):
        """Charging wanted now and regulated by the CT loop."""
        return self.charge.intent == ENABLE_ON and self.connected is not False

    def _desired_enable(self):
        if self.charge.intent != ENABLE_ON:
            return self.charge.intent
        if self.pause is not None:
            return ENABLE_SLEEP
        if self._dynamic() and self.good_t is None and not self.stale:
            return None  # no CT data yet: leave the controller as it is until data or stale_ms
        return ENABLE_ON

    def _reason_for(self, amps):
        if not self._dynamic():
            return R_STATIC
        if amps >= self.settings.get("c_limit"):
            return R_LIMIT
        return R_HEADROOM

    def status(self):
        """Everything the mqtt `status` answer needs from the balancer."""
        return {"max_charging_current": self.max_current, "target": self.target,
                "reason": self.reason, "command": self.cmd, "enable": self.charge.intent,
                "paused": self.pause, "stale": self.stale,
                "active_phases": self.phases[0] if self.phases else 0,
                "no_of_phases": self.phases[1] if self.phases else 0}

    # --- messages ----------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.CT_READING:
            self._reading(payload)
        elif kind == m.TIMER:
            if payload == TIMER_TICK:
                self._tick()
            elif payload == TIMER_SHORTAGE:
                self._t4 = None
                if self.short_since is not None and self.good_t is not None and self._dynamic():
                    # still short? decided on the next reading, with a $GG that matches it
                    if self.state == rapi.STATE_C and self.link_up:
                        self._request_gg(self.now())
                    else:
                        self._regulate(self.now(), self.good_t)
                        self._apply()
        elif kind == m.EVSE_CURRENT:
            self._current(payload)
        elif kind == m.EVSE_STATE:
            self._evse_state(payload)
        elif kind == m.EVSE_PLUG:
            if payload == 1:
                self._set_connected(True)
            elif payload == 0:
                self._set_connected(False)
            self._apply()
        elif kind == m.LINK_STATUS:
            was = self.link_up
            self.link_up = payload[0]
            self.sent_amps = None
            self.sent_enable = None
            if self.link_up:
                self.down_t = None
                self._apply()
            elif was or self.down_t is None:
                self.down_t = self.now()
        elif kind == m.EVSE_BOOT:
            # the controller forgot the volatile pilot and may be enabled or not: send both again
            self.sent_amps = None
            self.sent_enable = None
            self.evse_cap = None
            self._apply()
        elif kind == m.CHARGE_COMMAND:
            self._command(payload)
        elif kind == m.SETTING_CHANGED:
            self._setting(payload[0], payload[1])
        elif kind == m.NET_STATUS:
            was = self._pc()
            self.net_up = bool(payload)
            if self._pc() and not was:
                self._auto_enable()
            self._apply()
        elif kind == m.RAPI_REPLY and payload[0] == REQUEST_TAG:
            self._reply(payload)

    def _reply(self, payload):
        _tag, ok, fields, text = payload
        if ok is None or len(fields) == 1:
            self.sc_inflight = False  # SC answers carry one field; failures end anything
        if ok is None:
            if text == "superseded":
                return  # a newer SC of ours replaced it
            # not acknowledged (timeout, link down, queue full): send again on the next event
            self.sent_amps = None
            self.sent_enable = None
        elif ok is False and len(fields) == 1:
            # $NK to SC: the controller set `a` instead (a volatile SC cannot exceed the saved max)
            try:
                a = int(fields[0])
            except ValueError:
                return
            if self.sent_amps is not None and a < self.sent_amps:
                if self.evse_cap != a:
                    self.log(m.WARNING, "controller caps the pilot at %d A (asked %d)" % (a, self.sent_amps))
                self.evse_cap = a

    def _command(self, enable):
        if enable not in _ENABLE_CMD:
            return
        if self.charge.command(enable):
            self._activated()
        elif enable != ENABLE_ON:
            self.pauses.end_solar_wait()
            self.short_since = self.resume_since = self.raise_since = None
        self._apply()

    def _setting(self, name, value):
        s = self.settings
        if name == "plugandcharge" or name == "nwpc":
            if self._pc():
                self._auto_enable()
        elif name == "dinamics":
            self.pauses.cancel()
            self.stale = False
            self.short_since = self.resume_since = self.raise_since = None
            if value:
                self.cmd = s.get("c_min_limit")
                self.fresh_start = True
            else:
                self.cmd = s.get("c_limit")
        elif name == "cte":
            self.phase_det.reset()
        elif name == "solar":
            if (value and self._dynamic() and self._active() and self.pause is None
                    and self.state != rapi.STATE_C):
                self._pause_now(R_SOLAR_WAIT, waive_min_off=True)
            elif not value and self.pauses.end_solar_wait():
                self.fresh_start = True
        if name in ("c_limit", "c_min_limit"):
            if not self._dynamic():
                self.cmd = s.get("c_limit")
            else:
                c = self.cmd
                if c > s.get("c_limit"):
                    c = s.get("c_limit")  # a lower limit applies at once
                if c < s.get("c_min_limit"):
                    c = s.get("c_min_limit")  # the next reading checks it fits
                if c != self.cmd:
                    self._set_cmd(self.now(), c, self._reason_for(c))
        if name in _DYNAMIC_SETTINGS or name in ("plugandcharge", "nwpc"):
            self._apply()

    def _auto_enable(self):
        """Plug&charge: a connected car charges unless set_enable said otherwise this session."""
        if self.charge.auto_enable(self.connected):
            self._activated()

    def _activated(self):
        """Charging became wanted (enable, plug-in): start cleanly (solar: wait for export)."""
        self.fresh_start = True
        self.on_since = self.now()
        if (self._dynamic() and self.settings.get("solar") and self.pause is None
                and self.state != rapi.STATE_C):
            self._pause_now(R_SOLAR_WAIT, waive_min_off=True)

    # --- EVSE side ---------------------------------------------------------------------------
    def _evse_state(self, payload):
        st, _pilot, amps, vflags = payload
        prev = self.state
        self.state = st
        if vflags is not None:
            self.vflags = vflags
        now = self.now()
        if st == rapi.STATE_A:
            self._set_connected(False)
        elif st in (rapi.STATE_B, rapi.STATE_C, rapi.STATE_D):
            self._set_connected(True)
        elif st == rapi.STATE_SLEEP and vflags is not None:
            self._set_connected(bool(vflags & rapi.VF_EV_CONNECTED))
        if st == rapi.STATE_C and prev != rapi.STATE_C:
            self.car.enter_c(now)
            self.phase_det.session_start()
            self.ever_charged = True
            if self.on_since is None:
                self.on_since = now
            if self._dynamic() and self.link_up:
                self._request_gg(now)
            self._post_phases()
        elif prev == rapi.STATE_C and st != rapi.STATE_C:
            self.car.leave_c(now)
            self.phase_det.session_end()
        # The controller reports its advertised current; a difference means it was changed behind
        # our back (heartbeat fallback, reboot, local menu): send ours again.
        if (amps is not None and self.sent_amps is not None and amps != self.sent_amps
                and not self.sc_inflight):
            if st not in (0, rapi.STATE_DISABLED, rapi.STATE_SLEEP) and amps != self.evse_cap:
                self.sent_amps = None
        self._apply()

    def _set_connected(self, conn):
        if conn == self.connected:
            return
        was = self.connected
        self.connected = conn
        if conn:
            if self.charge.plugged_in(self._pc()):
                self._activated()
        else:
            self.phase_det.reset()
            self.ever_charged = False
            self.charge.unplugged(self._pc())
            self.on_since = None
            self.pauses.unplugged()
            self.pauses.end_solar_wait()
            self._post_phases()

    def _current(self, payload):
        now = self.now()
        if not self.car.on_gg(payload[0], now):
            return  # not charging
        fitted = self._fitted()
        if self.phase_det.on_gg(self.car.gg, now, fitted, self.amps, self._window_after):
            self.log(m.INFO, "EV phases %d" % hr.phases_code(self.phase_det.mask)[0])
            self._post_phases()
        if ((self.defer_t is not None or self.unsure_t is not None) and self._dynamic()
                and self.good_t is not None):
            self._regulate(now, self.good_t)  # the $GG a deferred cut was waiting for
            self._apply()

    def _gg_period(self, now):
        """$GG every second; every tick (250 ms) while the car may still be following a command
        change, so that the estimate of the car's current is never more than a reading old
        when it moves."""
        if self.car.following(now, self.cmd, self.last_change):
            return TICK_MS
        return hr.GG_PERIOD_MS

    def _request_gg(self, now):
        self.car.asked(now)
        self.stats["gg_requests"] += 1
        self.post(m.RAPI_REQUEST, (REQUEST_TAG, "GG", None))

    # --- phase detection (dinamics.phase_detect) ----------------------------------------------
    def _window_after(self, tick):
        """The latest good reading's whole window lies after `tick`."""
        if self.good_t is None or self.good_t != self.last_t:
            return False
        return ticks_diff(ticks_add(self.good_t, -self.ct_period), tick) >= 0

    def _post_phases(self):
        if self.connected and self.ever_charged:
            fitted = self._fitted()
            if hr.mask_count(fitted) == 1:
                code = hr.phases_code(fitted)
            elif self.phase_det.mask:
                code = hr.phases_code(self.phase_det.mask)
            else:
                code = (99, 0)
        else:
            code = (0, 0)
        if code != self.phases:
            self.phases = code
            self.post(m.PHASES, code)

    # --- CT readings -------------------------------------------------------------------------
    def _reading(self, payload):
        t, amps, valid, flags = payload
        if self.last_t is not None:
            d = ticks_diff(t, self.last_t)
            if d <= 0:
                return  # each reading once; never go back in time
            if 50 <= d <= 2000:
                self.ct_period = (self.ct_period * 3 + d) // 4
        self.last_t = t
        self.readings += 1
        fitted = self._fitted()
        if not fitted or (valid & fitted) != fitted:
            self.bad_readings += 1
            return  # implausible: not fresh; stale_ms decides
        # steady: no phase moved by STEADY_A since the previous good reading
        prev = self.amps
        steady = True
        for p in range(3):
            if fitted & (1 << p):
                d = amps[p] - prev[p]
                if d > hr.STEADY_A or d < -hr.STEADY_A:
                    steady = False
        self.steady = steady
        if not steady:
            self.jump_t = t
        self.amps = amps
        self.valid = valid
        self.flags = flags
        self.good_t = t
        now = self.now()
        if self.stale:
            self.stale = False
            self.log(m.INFO, "CT data fresh again")
            self.post(m.ERROR, ("ct", "ok", "CT data fresh again"))
        if not self.car.charging and not self.car.may_draw(now):
            self.phase_det.baseline(amps, 0.0)  # the EV draws nothing: the reference
        if self._dynamic():
            self._regulate(now, t)
        self._apply()

    def _decide(self, h_hi, h_lo, c_min, c_limit):
        """Cuts are judged on the optimistic headroom (no double cut while the car follows an
        earlier change), raises on the pessimistic one (never raise on a transient)."""
        kind, a = hr.regulate(self.cmd, h_hi, c_min, c_limit)
        if kind == hr.CUT or kind == hr.SHORT:
            return kind, a
        k2, a2 = hr.regulate(self.cmd, h_lo, c_min, c_limit)
        if k2 == hr.RAISE:
            return k2, a2
        return hr.HOLD, self.cmd

    def _regulate(self, now, t):
        s = self.settings
        breaker = s.get("breaker")
        c_min = s.get("c_min_limit")
        c_limit = s.get("c_limit")
        solar = s.get("solar")
        mask = self._ev_mask()
        amps = self.amps
        car = self.car
        ev_lo, ev_hi = car.during(t, self._ev_estimate(now), self.link_up, self.ct_period)
        car_moved = ev_lo != ev_hi  # the car changed during the reading's window
        over = hr.actual_over(breaker, amps, mask)
        new_over = False
        if over > 0.0:
            new_over = (self.over_since is None or self.last_change is None
                        or ticks_diff(self.last_change, self.over_since) < 0)
            if self.over_since is None:
                self.over_since = now
        else:
            self.over_since = None
        if new_over and self.state == rapi.STATE_C:
            # A new actual overload while the car may be following an earlier cut: take the
            # car's present value ($GG that arrived during this reading), or, when $GG is older,
            # assume it has followed. Once we cut for this overload, the optimistic estimate
            # rules again, so the car's lag never causes a second cut.
            if self._gg_fresh_for(t):
                if ev_hi > car.gg:
                    ev_hi = car.gg
            elif ev_hi > self.cmd:
                ev_hi = float(self.cmd)
            if ev_lo > ev_hi:
                ev_lo = ev_hi
        if ev_lo == ev_hi:
            h_hi = hr.headroom(breaker, amps, ev_hi, mask)
            if self.steady and (car.known(now, t, self._window_ms(), self.jump_t, self.last_change)
                                if self.state == rapi.STATE_C else not car.may_draw(now)):
                b = self._base  # unambiguous EV-less load per phase, for mixed readings
                b[0] = amps[0] - ev_hi
                b[1] = amps[1] - ev_hi
                b[2] = amps[2] - ev_hi
        else:
            h_hi = hr.headroom_mixed(breaker, amps, ev_lo, ev_hi, mask, self._base)
        # Relaxing (raise, the end of a shortage, max_current) uses the low estimate, and never
        # more than the command for the car: coming down to it, it may be there before $GG shows
        # it, and the CTs would show a house load that is not there.
        if self.state == rapi.STATE_C and ev_lo > self.cmd:
            ev_lo = float(self.cmd)
        h_lo = h_hi if ev_lo == ev_hi else hr.headroom(breaker, amps, ev_lo, mask)
        a = hr.allowed(h_lo, c_limit)
        self.max_current = a if a > 0 else 0
        if not self._active():
            self.short_since = self.raise_since = self.resume_since = self.defer_t = None
            self.over_since = self.unsure_t = None
            return
        if self.pause is not None:
            self._maybe_resume(now, h_lo, amps, mask, solar)
            return
        if self.fresh_start and self.state != rapi.STATE_C:
            # nothing drawn yet, so the projection is exact: start at what fits
            self.fresh_start = False
            a = hr.start_amps(h_lo, c_min, c_limit)
            if a is None:
                self._pause_now(R_NO_HEADROOM)
                return
            reason = self._reason_for(a)
            if solar:
                room = hr.floor_amps(hr.solar_room(amps, 0.0, mask))
                if room < a:
                    a = room if room >= c_min else c_min
                    reason = R_SOLAR
            self._set_cmd(now, a, reason)
            return
        self.fresh_start = False
        kind, a = hr.regulate(self.cmd, h_hi, c_min, c_limit)
        if kind == hr.SHORT and self._defer(now, t, over, new_over):
            return
        if kind == hr.SHORT:
            # not even the minimum fits: drop to it now, pause after timer4 (at once if far over)
            self.raise_since = None
            if self.short_since is None:
                self.short_since = now
                self.cancel(self._t4)
                self._t4 = self.after(s.get("timer4"), TIMER_SHORTAGE)  # re-check exactly then
            if hr.deficit_at_min(h_hi, c_min) > hr.hard_over(breaker):
                if self._car_unsure(now, t, car_moved):
                    # the car may be following an earlier cut (its $GG is older than the reading,
                    # or it changed during the reading): drop to the minimum now, decide the
                    # pause on the $GG that answers or the next reading
                    self._set_cmd(now, c_min, R_MINIMUM)
                    return
                self._pause_now(R_NO_HEADROOM)
                return
            if ticks_diff(now, self.short_since) >= s.get("timer4"):
                # still short after timer4: pause, judged on a reading whose $GG matches it (the
                # car's own change after a stale $GG must not make the shortage look over / worse)
                if (self.state != rapi.STATE_C or self._gg_fresh_for(t)
                        or ticks_diff(now, self.short_since) >= s.get("timer4") + hr.GG_DEFER_MAX_MS):
                    self._pause_now(R_NO_HEADROOM)
                    return
                if not self.car.asked_within(now, TICK_MS):
                    self._request_gg(now)
            self._set_cmd(now, c_min, R_MINIMUM)
            return
        self.unsure_t = None
        if self.short_since is not None:
            if h_lo < c_min + hr.HOLD_A - hr.EPS:
                return  # not sure the shortage is over yet: stay at the minimum
            self.short_since = None
        reason = None
        if solar:
            if not s.get("neg_amp") and not self._solar_warned:
                self._solar_warned = True
                self.post(m.BALANCER_FAULT, (FAULT_SOLAR, "1", "solar mode needs set_neg_amp 1 (signed CT data)"))
            hs_hi = hr.solar_room(amps, ev_hi, mask) + hr.MARGIN_A
            hs_lo = hr.solar_room(amps, ev_lo, mask) + hr.MARGIN_A
            if hs_hi < h_hi:
                h_hi = hs_hi
                reason = R_SOLAR
            if hs_lo < h_lo:
                h_lo = hs_lo
                reason = R_SOLAR
            kind, a = self._decide(h_hi, h_lo, c_min, c_limit)
            if kind == hr.SHORT:  # the export does not cover the minimum: hold it
                kind, a = (hr.CUT if self.cmd > c_min else hr.HOLD), c_min
            if self._solar_import(now, amps, mask):
                return
        else:
            kind, a = self._decide(h_hi, h_lo, c_min, c_limit)
        if reason is None:
            reason = self._reason_for(a)
        # Safety net: an actual overload that outlives the last change by ESCALATE_MS means the
        # model is wrong (car ignores the pilot, undetected phase, bad $GG): cut by the excess.
        escalated = False
        if over > 0.0:
            if (ticks_diff(now, self.over_since) >= hr.ESCALATE_MS
                  and (self.last_change is None
                       or ticks_diff(now, self.last_change) >= hr.ESCALATE_MS)):
                self.over_since = now
                self.stats["escalations"] += 1
                a2 = hr.floor_amps(self.cmd - over - hr.MARGIN_A)
                self.log(m.WARNING, "still %.1f A over the breaker after a cut: cutting by the excess"
                         % over)
                if a2 < c_min:
                    self._pause_now(R_NO_HEADROOM)
                    return
                if kind != hr.CUT or a2 < a:
                    kind, a, reason = hr.CUT, a2, R_HEADROOM
                escalated = True
        if kind == hr.CUT:
            self.raise_since = None
            if not escalated and self._defer(now, t, over, new_over):
                return
            self._set_cmd(now, a, reason)
            return
        self.defer_t = None
        if kind == hr.RAISE:
            # applied on a steady reading only: a load step half-way through a reading's window
            # shows as part of itself, so a reading that moved tells less than the next one
            if self.raise_since is None:
                self.raise_since = now
            settled = (self.last_change is None or self.last_cut
                       or ticks_diff(now, self.last_change) >= hr.SETTLE_MS
                       or self.car.followed(now, self.cmd, self.last_change))
            if settled and self.steady and ticks_diff(now, self.raise_since) >= hr.RAISE_CONFIRM_MS:
                if self.state != rapi.STATE_C or self._gg_fresh_for(t):
                    self.raise_since = None
                    self._set_cmd(now, a, reason)
                elif not self.car.asked_within(now, TICK_MS):
                    # the periodic $GG may keep landing just before the readings' windows: ask
                    # now, so that the next reading has a $GG that matches it
                    self._request_gg(now)
            return
        # HOLD
        self.raise_since = None
        if self.cmd >= c_limit:
            self._set_reason(R_LIMIT)
        elif solar and reason == R_SOLAR:
            self._set_reason(R_SOLAR)
        elif self.reason != R_MINIMUM or self.cmd != c_min:
            self._set_reason(R_HEADROOM)

    def _defer(self, now, t, over, new_over):
        """While the car charges, a cut (or shortage) is decided at once only for a NEW actual
        overload. Otherwise (only projected, or an overload we already cut for) the car may have
        changed after the last $GG -- following an earlier command, still within its ~5 s lag --
        which shows on the CTs but not yet in $GG and looks like a house load step. Ask for a
        fresh $GG; its reply re-runs the decision (one round trip, not a reading period).
        True = wait. Bounded by GG_DEFER_MAX_MS."""
        if (over > 0.0 and new_over) or self.state != rapi.STATE_C:
            self.defer_t = None
            return False
        if self.car.after(t if self.defer_t is None else self.defer_ref):
            self.defer_t = None
            return False
        if self.defer_t is None:
            self.defer_ref = t
        self.defer_t = self._await_gg(now, self.defer_t)
        return self.defer_t is not None

    def _car_unsure(self, now, t, mixed):
        """Charging, and no $GG during or since the reading, or the car changed during it
        (mixed): ask for a $GG (its reply re-runs the decision) and wait for it or for a reading
        that is not mixed, at most GG_DEFER_MAX_MS. False = decide now."""
        if self.state != rapi.STATE_C or not self.link_up:
            self.unsure_t = None
            return False
        if not mixed and (self._gg_fresh_for(t) or self.car.after(t)):
            self.unsure_t = None
            return False
        self.unsure_t = self._await_gg(now, self.unsure_t)
        return self.unsure_t is not None

    def _await_gg(self, now, since):
        """A wait for the $GG that settles a decision: begun now (asking for one) when `since`
        is None, over after GG_DEFER_MAX_MS. Returns the wait's start, or None once it is over."""
        if since is None:
            since = now
            self.stats["deferred"] += 1
            self._request_gg(now)
        return since if ticks_diff(now, since) < hr.GG_DEFER_MAX_MS else None

    def _solar_import(self, now, amps, mask):
        """Solar mode: importing (> SOLAR_IMPORT_A on an EV phase) for solar_stop_ms pauses the
        charge, but never before it ran min_on_ms. True when it paused."""
        s = self.settings
        if hr.max_import(amps, mask) > hr.SOLAR_IMPORT_A:
            if self.import_since is None:
                self.import_since = now
            on_long = self.on_since is None or ticks_diff(now, self.on_since) >= s.get("min_on_ms")
            if ticks_diff(now, self.import_since) >= s.get("solar_stop_ms") and on_long:
                self.log(m.INFO, "solar: importing for solar_stop_ms, pausing")
                self._pause_now(R_SOLAR_WAIT)
                return True
        else:
            self.import_since = None
        return False

    def _maybe_resume(self, now, h, amps, mask, solar):
        """Automatic restart after a balancer pause: min_off_ms over (waived for the first solar
        start), then minimum + resume_margin must fit on every fresh reading for
        RESUME_CONFIRM_MS (solar: export >= solar_start as well)."""
        s = self.settings
        c_min = s.get("c_min_limit")
        ok = hr.resume_ok(h, c_min, s.get("resume_margin"))
        export = -hr.max_import(amps, mask)
        if ok and solar:
            ok = export >= s.get("solar_start")
        if ok and not self.pauses.may_resume(now, s.get("min_off_ms")):
            ok = False
        if not ok:
            self.resume_since = None
            self.pauses.data_back()  # stale data is back; now it waits for room
            return
        if self.resume_since is None:
            self.resume_since = now
            return
        if ticks_diff(now, self.resume_since) < hr.RESUME_CONFIRM_MS:
            return
        a = hr.start_amps(h, c_min, s.get("c_limit"))
        if a is None:  # cannot happen after resume_ok; never start below the minimum anyway
            return
        reason = self._reason_for(a)
        if solar:
            room = hr.floor_amps(export)
            if room < a:
                a = room if room >= c_min else c_min
                reason = R_SOLAR
        self.pauses.resumed(now)
        self.resume_since = self.short_since = self.import_since = self.over_since = None
        self.fresh_start = False
        self.on_since = now
        self.stats["resumes"] += 1
        self.log(m.INFO, "resuming at %d A" % a)
        self._set_cmd(now, a, reason)

    def _pause_now(self, reason, waive_min_off=False):
        """Balancer pause (FS); it resumes by itself (see _maybe_resume)."""
        now = self.now()
        if self.pauses.begin(now, reason, waive_min_off):
            self.stats["pauses"] += 1
            if not waive_min_off:
                self.log(m.WARNING, "pause: %s (restart after >= %d s)"
                         % (reason, self.pauses.off_ms(self.settings.get("min_off_ms")) // 1000))
        self.short_since = self.raise_since = self.resume_since = self.defer_t = None
        self.unsure_t = None
        self.import_since = self.over_since = None
        self.on_since = None

    def _set_cmd(self, now, amps, reason):
        if amps != self.cmd:
            if amps < self.cmd:
                self.stats["cuts"] += 1
                self.charge.cut(now, self.cmd)  # timer3 allows the old value a while
            else:
                self.stats["raises"] += 1
            self.last_cut = amps < self.cmd
            self.cmd = amps
            self.last_change = now
        self._set_reason(reason)

    def _set_reason(self, reason):
        self.reason = reason

    # --- housekeeping --------------------------------------------------------------------------
    def _tick(self):
        now = self.now()
        s = self.settings
        self.pauses.tick(now)
        if self._dynamic():
            self._check_stale(now)
            if (self.link_up and self.state == rapi.STATE_C and self.charge.intent == ENABLE_ON
                    and self.pause is None
                    and not self.car.asked_within(now, self._gg_period(now))):
                self._request_gg(now)
        self._auto_stops(now, s)
        self._apply()

    def _check_stale(self, now):
        s = self.settings
        ref = self.good_t if self.good_t is not None else self.boot_t
        if ref is None or ticks_diff(now, ref) <= s.get("stale_ms"):
            return
        if self.stale:
            return
        self.stale = True
        self.stats["stale"] += 1
        if not self._fitted():
            text = "no CT fitted (set_cte 0): dynamic mode cannot measure"
        else:
            text = "CT data stale"
        age = ticks_diff(now, ref)
        self.log(m.WARNING, "%s (%d ms): %s" % (text, age, "pause" if s.get("stale_action") == 0
                                                 else "minimum current"))
        self.post(m.ERROR, ("ct", str(age), text))
        self.raise_since = self.short_since = self.resume_since = self.defer_t = None
        self.unsure_t = None
        if s.get("stale_action") == 0:
            if self.pause is None:
                self._pause_now(R_STALE)
            else:
                self.pauses.data_stale()  # already paused: stays paused, now for this reason
        elif self.pause is None:
            self._set_cmd(now, s.get("c_min_limit"), R_STALE)
        # (action 1 while paused: stay paused, nothing can show that the minimum fits)

    def _auto_stops(self, now, s):
        """Timers 1-3 (dinamics.charge_intent): an expired one stops the charge (FS)."""
        timer = self.charge.auto_stop(
            now, self.pause is None and self.link_up, self._pc(), self.connected,
            self.sent_enable == ENABLE_ON, self.state == rapi.STATE_C, self.car.draw(), self.cmd,
            (s.get("timer1"), s.get("timer2"), s.get("timer3")))
        if timer is None:
            return
        why = self.charge.stop_reason
        self.pauses.cancel()
        self.stats["stops"] += 1
        self.log(m.WARNING, "auto-stop (%s): %s" % (timer, why))
        self.post(m.BALANCER_FAULT, (FAULT_ENABLE, timer, "charging stopped: " + why))
        self._apply()

    # --- output ------------------------------------------------------------------------------
    def _apply(self):
        """Send what differs from what the controller was last told; post balancer.target."""
        if not self._dynamic():
            self.cmd = self.settings.get("c_limit")
            self.max_current = self.cmd
        want = self._desired_enable()
        amps = self.cmd
        if want == ENABLE_ON:
            t_amps = amps
            reason = (self.reason or self._reason_for(amps)) if self._dynamic() else R_STATIC
        else:
            t_amps = 0
            if want is None:
                reason = R_WAIT_CT
            elif self.charge.intent != ENABLE_ON:
                if self.charge.stop_reason:
                    reason = R_STOPPED
                else:
                    reason = R_OFF if self.charge.intent == ENABLE_OFF else R_SLEEP
            else:
                reason = self.pause
        if self.target != t_amps or self.reason_posted != reason:
            self.target = t_amps
            self.reason_posted = reason
            self.post(m.BALANCER_TARGET, (t_amps, reason))
        if not self.link_up:
            return
        # pilot first: the controller applies it before the car may start on FE
        if amps != self.sent_amps:
            self.sent_amps = amps
            self.sc_inflight = True
            self.post(m.RAPI_REQUEST, (REQUEST_TAG, "SC", (amps, "V")))
        if want is not None and want != self.sent_enable:
            self.sent_enable = want
            self.post(m.RAPI_REQUEST, (REQUEST_TAG, _ENABLE_CMD[want], None))
