"""The balancer's housekeeping and output (a part of the balancer actor): actors.balancer.Balancer
derives from Output, Output from the regulation (actors.balancer_regulation). Housekeeping runs
every TICK_MS: stale CT data (a fault, and the fallback), the $GG polling at the pace of the medium
that carries the lines, the auto-stops of timers 1-3. Output (`_apply`) sends the controller what
differs from what it was last told (dinamics.evse_sync), pilot first, and posts balancer.target.
"""

from adafruit_ticks import ticks_diff

from actors.balancer_regulation import (R_BLIND, R_STALE, R_STATIC, REQUEST_TAG, TICK_MS,
                                        Regulation)
from dinamics import charge_intent as ci
from dinamics import headroom as hr
from dinamics import messages as m
from dinamics import rapi

ENABLE_OFF = ci.OFF
ENABLE_ON = ci.ON
ENABLE_SLEEP = ci.SLEEP
_ENABLE_CMD = {ENABLE_OFF: "FD", ENABLE_ON: "FE", ENABLE_SLEEP: "FS"}

_LATE_TICK_MS = 1000  # a tick this long after the previous one: the loop itself was blocked
FAULT_ENABLE = "auto_stop"  # balancer.fault code of an auto-stop (details: charge_intent.STOP_*)
FAULT_CT = "ct"  # balancer.fault code of stale CT data: detail the age in ms, or "ok" when fresh again

# Reasons posted with balancer.target besides the regulation's (actors.balancer_regulation)
R_WAIT_CT = "waiting for CT"  # (off / sleep / stopped: dinamics.charge_intent)

_RADIO_GG_X = 15  # on LoRa a steady charge reads $GG every 15 s x lora_poll_x (1 min by default)


class Output(Regulation):
    # --- housekeeping ------------------------------------------------------------------------
    def _tick(self):
        now = self.now()
        late = self._tick_t is not None and ticks_diff(now, self._tick_t) > _LATE_TICK_MS
        self._tick_t = now
        self.pauses.tick(now)
        if self._dynamic():
            if not late:  # a blocked pass (a WiFi join) aged the CT data, not the feed: the
                self._check_stale(now)  # readings made since are in by the next tick
            if (self.link_up and self.state == rapi.STATE_C and self.charge.intent == ENABLE_ON
                    and self.pause is None
                    and not self.car.asked_within(now, self._gg_period(now))):
                self._request_gg(now)
        self._auto_stops(now)
        self._apply()

    def _medium(self, radio):
        """rapi_link says which medium carries the lines (True: the LoRa radio). The `lora`
        setting alone does not say it: a unit without a radio keeps the cable."""
        self.radio = bool(radio)

    def _gg_period(self, now):
        """$GG every second; every tick (250 ms) while the car may still be following a command
        change, so that the estimate of the car's current is never more than a reading old
        when it moves. Over the radio slower: airtime is scarce (docs/lora.md)."""
        s = self.settings
        radio = self.radio if self.radio is not None else s.get("lora")
        if radio:
            x = s.get("lora_poll_x")
            if self.car.following(now, self.cmd, self.last_change):
                return TICK_MS * 2 * x  # 2 s by default
            return hr.GG_PERIOD_MS * _RADIO_GG_X * x
        if self.car.following(now, self.cmd, self.last_change):
            return TICK_MS
        return hr.GG_PERIOD_MS

    def _check_stale(self, now):
        s = self.settings
        age = self.ct.went_stale(now, self.boot_t, s.get("stale_ms"))
        if age is None:
            return
        self.stats["stale"] += 1
        if not self._fitted():
            text = "no CT fitted (set_cte 0): dynamic mode cannot measure"
        else:
            text = "CT data stale"
        self.log(m.WARNING, "%s (%d ms): %s" % (text, age, "pause" if s.get("stale_action") == 0
                                                 else "minimum current"))
        self.post(m.BALANCER_FAULT, (FAULT_CT, str(age), text))
        self.raise_since = self.short_since = self.resume_since = None
        self.waits.reset()
        if s.get("stale_action") == 0:
            if self.pause is None:
                self._pause_now(R_STALE)
            else:
                self.pauses.data_stale()  # already paused: stays paused, now for this reason
        elif self.pause is None:
            self._set_cmd(now, s.get("c_min_limit"), R_STALE)
        # (action 1 while paused: stay paused, nothing can show that the minimum fits)

    def _auto_stops(self, now):
        """Timers 1-3 (dinamics.charge_intent): an expired one stops the charge (FS)."""
        s = self.settings
        timer = self.charge.auto_stop(
            now, self.pause is None and self.link_up, self._pc(), self.connected,
            self.sync.sent_enable == ENABLE_ON, self.state == rapi.STATE_C, self.car.draw(),
            self.cmd, (s.get("timer1"), s.get("timer2"), s.get("timer3")))
        if timer is None:
            return
        why = self.charge.stop_reason
        self.pauses.cancel()
        self.stats["stops"] += 1
        self.log(m.WARNING, "auto-stop (%s): %s" % (timer, why))
        self.post(m.BALANCER_FAULT, (FAULT_ENABLE, timer, "charging stopped: " + why))
        self._apply()

    # --- output ------------------------------------------------------------------------------
    def _desired_enable(self):
        if self.charge.intent != ENABLE_ON:
            return self.charge.intent
        if self.pause is not None:
            return ENABLE_SLEEP
        if self._dynamic() and self.ct.good_t is None and not self.ct.stale:
            return None  # no CT data yet: leave the controller as it is until data or stale_ms
        return ENABLE_ON

    def _apply(self):
        """Send what differs from what the controller was last told; post balancer.target."""
        blind = None
        if not self._dynamic():
            self.cmd = self.settings.get("c_limit")
            self.max_current = self.cmd
        else:
            blind = self.blind.cap(self.now())
            if blind is not None and self.cmd > blind:  # (a command set around _set_cmd)
                self._set_cmd(self.now(), blind, R_BLIND)
            elif blind is None and self.reason == R_BLIND:
                self.reason = None  # the cap is over: the reason follows the command again
        want = self._desired_enable()
        amps = self.cmd
        if want == ENABLE_ON:
            t_amps = amps
            if blind is not None and amps >= blind:
                reason = R_BLIND
            else:
                reason = (self.reason or self._reason_for(amps)) if self._dynamic() else R_STATIC
        else:
            t_amps = 0
            if want is None:
                reason = R_WAIT_CT
            elif self.charge.intent != ENABLE_ON:
                reason = self.charge.off_reason()
            else:
                reason = self.pause
        if self.target != t_amps or self.reason_posted != reason:
            self.target = t_amps
            self.reason_posted = reason
            self.post(m.BALANCER_TARGET, (t_amps, reason))
        if not self.link_up:
            return
        # pilot first: the controller applies it before the car may start on FE
        if self.sync.pilot_due(amps):
            self.post(m.RAPI_REQUEST, (self, REQUEST_TAG, "SC", (amps, "V")))
        if want is not None and self.sync.enable_due(want):
            self.post(m.RAPI_REQUEST, (self, REQUEST_TAG, _ENABLE_CMD[want], None))
