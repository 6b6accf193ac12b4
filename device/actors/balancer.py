"""balancer: decides whether the EVSE is enabled and what pilot current it advertises, so that the
house stays under its main breaker while the car charges as fast as the supply allows.

See docs/balancer.md for the algorithm, the settings and the reaction budget. In short: static
mode (set_dinamics 0) advertises c_limit; dynamic mode decides on every fresh, plausible
ct.reading on the projected steady state (breaker - max(0, house_p - ev) over the car's phases,
ev its measured $GG current), so the car's ~5 s lag causes neither double cuts nor oscillation:
cut at once, raise only when settled and confirmed, below the minimum drop to it and pause after
timer4 (at once if far over), resume by itself; stale CT data pauses or holds the minimum.

The state lives in holders without a clock (ticks passed in): dinamics.ct_readings (the CT
readings), car_current ($GG), projection (what a reading leaves for the car), gg_waits
(decisions waiting for a $GG), charge_intent (set_enable, plug&charge, auto-stops), pause (the
only writer of a pause; min_off), evse_sync (what the controller was told), phase_detect,
blind_cap (the pilot capped while the unit is blind in a WiFi join); the
arithmetic is dinamics.headroom. The actor
keeps time and I/O in four files: this one turns messages into state; actors.balancer_output
(its base class) keeps house every tick and sends the result (`_apply`); the regulation's named
steps are actors.balancer_regulation (Output's base), the pause's resume its mixin
actors.balancer_resume. Every RAPI command
goes out as rapi.request (self, REQUEST_TAG, cmd, args): rapi_link sends the rapi.reply back to
the balancer alone. The plug comes from evse.plug only (rapi_link decides it, dinamics.rapi.plug_of);
evse.state gives the state (C: a session) and the advertised pilot.
"""

from actors.balancer_output import (ENABLE_OFF, ENABLE_ON, ENABLE_SLEEP, FAULT_CT, FAULT_ENABLE,
                                    R_WAIT_CT, Output)
from actors.balancer_regulation import (R_BLIND, R_SOLAR_WAIT, REQUEST_TAG, TICK_MS,
                                        TIMER_SHORTAGE)
from dinamics import headroom as hr
from dinamics import messages as m
from dinamics import rapi
from dinamics.blind_cap import BLIND_OK_MS, BlindCap
from dinamics.car_current import CarCurrent
from dinamics.charge_intent import ChargeIntent
from dinamics.ct_readings import CtReadings
from dinamics.evse_sync import EvseSync
from dinamics.gg_waits import GgWaits
from dinamics.pause import Pause
from dinamics.phase_detect import PhaseDetector
from dinamics.pilot_gate import PILOT_MIN
from dinamics.projection import Projection

# FAULT_CT, FAULT_ENABLE, R_WAIT_CT, REQUEST_TAG, ENABLE_*: imported from here by the bridge,
# the rig and the tests (defined with the output and the regulation)
_ENABLES = (ENABLE_OFF, ENABLE_ON, ENABLE_SLEEP)

_DRAWING_A = 0.5  # the car draws (a $GG above this): an overload on one of its phases is ours
TIMER_TICK = "tick"  # the TICK_MS housekeeping timer (timer4: TIMER_SHORTAGE)

_DYNAMIC_SETTINGS = ("c_limit", "c_min_limit", "dinamics", "breaker", "cte", "solar", "neg_amp",
                     "stale_ms", "stale_action")


class Balancer(Output):
    name = "balancer"
    subscribes = (m.LINK_STATUS, m.EVSE_STATE, m.EVSE_BOOT, m.CHARGE_COMMAND, m.SETTING_CHANGED,
                  m.CT_READING, m.EVSE_CURRENT, m.EVSE_PLUG, m.NET_STATUS,
                  m.NET_BLOCKING, m.LINK_MEDIUM)  # + rapi.reply, sent
    inbox_size = 32

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self.ct = CtReadings()
        self.car = CarCurrent()  # the car's current ($GG) and the estimates built on it
        self.proj = Projection()
        self.waits = GgWaits()  # decisions waiting for the $GG that settles them
        self.charge = ChargeIntent()  # enable intent, plug&charge, auto-stops (timers 1-3)
        self.pauses = Pause()  # the only writer of the pause and its reason
        self.sync = EvseSync()
        self.phase_det = PhaseDetector()
        self.blind = BlindCap()  # the pilot capped while the unit is blind (a WiFi join)
        # the medium that carries the RAPI lines (rapi_link decides it: `medium`): True the LoRa
        # radio, False the cable, None not told yet (then the `lora` setting stands in for it)
        self.radio = None
        self.reset()

    # --- state -------------------------------------------------------------------------------
    def reset(self):
        s = self.settings
        self.ct.reset()
        self.car.reset()
        self.proj.reset()
        self.waits.reset()
        self.pauses.reset()
        self.sync.reset()
        self.phase_det.reset()
        self.blind.reset()
        self._reset_regulation()
        self.charge.reset(s.get("plugandcharge"), self.cmd)
        self.link_up = False
        self.down_t = None  # tick the link went down (None: up, or never up yet)
        self.state = None  # EVSE state from $AT/$GS
        self.vflags = 0
        self.connected = None  # car plugged in: True / False / None unknown
        self.net_up = None  # broker: None unknown (treated as up), True, False
        self.ever_charged = False  # state C seen in this plug session
        self.target = None  # last posted balancer.target (amps, reason)
        self.reason_posted = None
        self.phases = None  # last posted (active_phases, no_of_phases)
        self.boot_t = None
        self._tick_t = None  # when the last tick ran (a late one: the unit itself was blocked)
        self.stats = {"cuts": 0, "raises": 0, "pauses": 0, "resumes": 0, "stale": 0,
                      "deferred": 0, "escalations": 0, "stops": 0, "gg_requests": 0,
                      "blind_cuts": 0}

    @property
    def pause(self):
        """The balancer pause's reason (it auto-resumes), or None."""
        return self.pauses.reason

    @property
    def good_t(self):
        """Tick of the last good CT reading (None: none yet)."""
        return self.ct.good_t

    def start(self):
        self.boot_t = self.now()
        self._t4 = None
        self.every(TICK_MS, TIMER_TICK)

    def status(self):
        """Everything the mqtt `status` answer needs from the balancer."""
        return {"max_charging_current": self.max_current, "target": self.target,
                "reason": self.reason, "command": self.cmd, "enable": self.charge.intent,
                "paused": self.pauses.reason, "stale": self.ct.stale,
                "active_phases": self.phases[0] if self.phases else 0,
                "no_of_phases": self.phases[1] if self.phases else 0}

    # --- helpers -----------------------------------------------------------------------------
    def _pc(self):
        """Plug&charge in effect: the setting, or no-WAN plug&charge while the broker is down."""
        s = self.settings
        if s.get("plugandcharge"):
            return True
        return bool(s.get("nwpc")) and self.net_up is False

    # --- messages ----------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.CT_READING:
            self._reading(payload)
        elif kind == m.TIMER:
            if payload == TIMER_TICK:
                self._tick()
            elif payload == TIMER_SHORTAGE:
                self._shortage_timer()  # (regulation)
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
        elif kind == m.LINK_MEDIUM:
            self._medium(payload)
        elif kind == m.LINK_STATUS:
            was = self.link_up
            self.link_up = payload[0]
            self.sync.forget()
            if self.link_up:
                self.down_t = None
                self._apply()
            elif was or self.down_t is None:
                self.down_t = self.now()
        elif kind == m.EVSE_BOOT:
            # the controller forgot the volatile pilot and may be enabled or not: send both again
            self.sync.controller_reset()
            self._apply()
        elif kind == m.CHARGE_COMMAND:
            self._command(payload)
        elif kind == m.SETTING_CHANGED:
            for name in payload:
                self._setting(name, self.settings.get(name))
        elif kind == m.NET_BLOCKING:  # (requester, ms)
            self._blocking(payload[0], payload[1])
        elif kind == m.NET_STATUS:
            was = self._pc()
            self.net_up = bool(payload)
            if self._pc() and not was:
                self._auto_enable()
            self._apply()
        elif kind == m.RAPI_REPLY and payload[0] == REQUEST_TAG:  # (sent to us: our requests)
            sync = self.sync
            if sync.on_reply(payload[1], payload[2], payload[3]):
                self.log(m.WARNING, "controller caps the pilot at %d A (asked %d)"
                         % (sync.evse_cap, sync.sent_amps))

    def _blocking(self, requester, ms):
        """net.blocking: `requester` will block every pass for up to `ms` (a WiFi join). Longer
        than the reaction budget tolerates while a car may charge: cap the pilot at hb_amps (the
        controller's own fallback when the unit falls silent) and send the cut now, THEN ask
        rapi_link for the hold. Both go into rapi_link's inbox in this order, so the `$SC` is
        queued ahead of the hold's `$SY`, whose answer lets the call start: the controller has
        taken the cut before the unit goes blind (dinamics.blind_cap)."""
        if (ms > BLIND_OK_MS and self._dynamic() and self._desired_enable() == ENABLE_ON
                and (self.connected or self.state == rapi.STATE_C)):
            now = self.now()
            hb = self.settings.get("hb_amps")  # below 6 A the gate would send 6 A anyway
            self.blind.begin(now, ms, hb if hb > PILOT_MIN else PILOT_MIN,
                             self.settings.get("timer13"))
            if self.cmd > self.blind.amps:
                self.stats["blind_cuts"] += 1
                self.log(m.INFO, "pilot %d -> %d A while blind for up to %d ms (WiFi join)"
                         % (self.cmd, self.blind.amps, ms))
                self._set_cmd(now, self.blind.amps, R_BLIND)
            self._apply()
        self.post(m.LINK_HOLD, (requester, ms))

    def _command(self, enable):
        if enable not in _ENABLES:
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
            self.ct.forget_stale()
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
                # a lower limit applies at once; the next reading checks that the minimum fits
                c = max(min(self.cmd, s.get("c_limit")), s.get("c_min_limit"))
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
        self.sync.advertised(st, amps)
        self._apply()

    def _set_connected(self, conn):
        if conn == self.connected:
            return
        self.connected = conn
        if conn:
            if self.charge.plugged_in(self._pc()):
                self._activated()
            self._post_phases()  # evse.plug follows evse.state: a session may have begun already
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
        if self.phase_det.on_gg(self.car.gg, now, self._fitted(), self.ct.amps,
                                self.ct.window_after):
            self.log(m.INFO, "EV phases %d" % hr.phases_code(self.phase_det.mask)[0])
            self._post_phases()
        if self.waits.waiting() and self._dynamic() and self.ct.good_t is not None:
            self._regulate(now, self.ct.good_t)  # the $GG a deferred cut was waiting for
            self._apply()

    def _post_phases(self):
        code = self.phase_det.code(self._fitted(), bool(self.connected and self.ever_charged))
        if code != self.phases:
            self.phases = code
            self.post(m.PHASES, code)

    # --- CT readings -------------------------------------------------------------------------
    def _reading(self, payload):
        t = payload[0]
        if not self.ct.accept(t, payload[1], payload[2], payload[3], self._fitted()):
            return  # seen already, or implausible (not fresh: stale_ms decides)
        now = self.now()
        if self.ct.fresh_again():
            self.log(m.INFO, "CT data fresh again")
            self.post(m.BALANCER_FAULT, (FAULT_CT, "ok", "CT data fresh again"))
        if not self.car.charging and not self.car.may_draw(now):
            self.phase_det.baseline(self.ct.amps, 0.0)  # the EV draws nothing: the reference
        if self._dynamic():
            if self.car.charging and self.car.gg > _DRAWING_A:
                p = self.phase_det.doubt(self.ct.amps, self._fitted(), self.settings.get("breaker"))
                if p:
                    self.log(m.WARNING, "L%d over the breaker, not one of the car's phases: they are "
                             "detected again; until then every phase counts" % p)
                    self._post_phases()
            self._regulate(now, t)
        self._apply()
        if (self._dynamic() and self.proj.new_step and self.car.charging
                and not self.car.asked_since(t)):
            # a phase rose with the car known: a $GG after the reading tells whether that was
            # the house (dinamics.projection: the next mixed reading may hide it). Asked after
            # the decision went out: never ahead of a cut
            self._request_gg(now)
