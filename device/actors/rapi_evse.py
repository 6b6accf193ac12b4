"""What the controller's replies, reports and boot mean, and what the unit keeps in step with it:
the EVSE state and plug, the pilot and the enable state it asked for (corrected when the
controller shows otherwise, dinamics/evse_watch.py), the `$SY` heartbeat and the polling plan
(timers 5-9, TFO; when the state leaves C, `$GG` soon, until it reads 0 A). A part of the
rapi_link actor (a mixin: same state, same messages), kept apart so the link file holds only the
protocol: queue, wire, matching, timeouts, link up/down.
"""

from adafruit_ticks import ticks_diff

from dinamics import messages as m
from dinamics import rapi
from dinamics.evse_watch import GIVE_UP
from dinamics.rapi_queue import Req

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_ENABLE = ("FE", "FS", "FD")
POLL = "poll"  # request tags the link uses for itself (requester None: never answered)
LINK = "link"
PROBE = "probe"
T_HB = "hb"  # timer tag of the heartbeat pulse
T_HOLD = "hold"  # timer tag: a raised heartbeat interval (link.hold) goes back to hb_interval
HOLD = "hold"  # rapi.reply tag of a link.hold: the pulse / raised interval is on the controller
_HOLD_SLACK_MS = const(1500)  # a hold this much shorter than the interval needs only a fresh pulse
# poll command -> (timer setting, slowed down while charging?)
POLLS = (("GC", "timer5", False), ("G0", "timer6", True), ("GG", "timer7", False),
         ("GS", "timer8", False), ("GU", "timer9", False))
_KEEPALIVE_S = const(5)  # link supervision period when there is no heartbeat to pulse
_POLL_MAX_MS = const(86400000)  # a day: no product of settings may exceed the tick library's limit
# After state C: the first $GG this long after the state report (past the ~0.3 s stall a real
# controller has after C->A, and behind whatever the balancer queued on the news), then every
# _GG_AGAIN_MS while it still shows a current (a $FS leaves the relay closed up to 3 s), at most
# _GG_READS reads in all.
_GG_FIRST_MS = const(400)
_GG_AGAIN_MS = const(1000)
_GG_READS = const(5)


class EvseSync:
    def _sc_done(self, r, ok, fields):
        """False while the pilot is not shown to be where it was asked (sent again)."""
        if fields:
            try:
                a = rapi.parse_sc(fields)
            except ValueError:
                a = None
            if a is not None:
                self._pilot_seen(a)
                return self.watch.sc_answered(r.args[0], a) or not self._retry(r)
        if ok:  # a bare $OK shows nothing: read the pilot back
            self.request(LINK, "GC", None)
            return True
        return not self._retry(r)

    def _route(self, cmd, fields, args):
        d = self.dialect
        try:
            if cmd == "GS":
                s = d.parse_gs(fields)
                self._state(s[0], s[2], None, s[3])
            elif cmd == "GG":
                gg = d.parse_gg(fields)
                self.post(m.EVSE_CURRENT, gg)
                if self._gg_reads:  # after state C: read again while a current still shows
                    self._gg_reads -= 1
                    if gg[0] > 0 and self._gg_reads and not self.charging:
                        self._gg_soon(_GG_AGAIN_MS)
                    else:
                        self._gg_reads = 0
            elif cmd == "GU":
                self.post(m.EVSE_ENERGY, d.parse_gu(fields))
            elif cmd == "GC":
                c = rapi.parse_gc(fields)  # the pilot it shows; (min, hmax) nobody needs
                if c[2] is not None and not d.variant():  # emulators put other things there
                    self._pilot_seen(c[2])
                    self._check_pilot()
            elif cmd == "G0":
                # the raw pilot, ahead of the debounced state by up to 250 ms: it only fills in
                # while no state report has said it (else the plug would flicker 1-0-1 at plug-in)
                if self.state is None or self.state == 0:
                    self._set_plug(rapi.parse_g0(fields))
            elif cmd == "GV":
                fw, ver = rapi.parse_gv(fields)
                d.on_version(fw, ver)  # the dialect; logged once per controller below
                if d.should_report():
                    self.log(m.INFO, "controller dialect: " + d.describe())
            elif cmd == "SY":
                interval, amps, trigger = rapi.parse_sy(fields)
                if trigger == 2:  # a pulse was missed: acknowledge so the current is restored
                    self.request(LINK, "SY", (165,))
                elif args is None and self._hold_timer is None and self._hb_s() and (
                        interval != self._hb_s() or amps != self.settings.get("hb_amps")):
                    self._configure_heartbeat()
        except ValueError as e:
            self.log(m.WARNING, "bad %s reply: %s" % (cmd, e))

    def _unsupported(self, cmd):
        self.log(m.WARNING, "controller does not support $%s: not sent by the link any more" % cmd)
        self.cancel(self._poll_timers.pop(cmd, None))

    def _async(self, kind, fields, line):
        self.stats["async"] += 1
        text = rapi.text(line)
        try:
            if kind == rapi.AT:
                st, pilot, amps, vflags = rapi.parse_at(fields)
                if st == 0:  # only ever the forced report at the start of a boot
                    self._boot_started()
                self._state(st, pilot, amps, vflags)
            elif kind == rapi.ST:  # an old controller's state report: state only
                self._state(rapi.parse_wf(fields), None, None, None)
            elif kind == rapi.AB:
                self.stats["boots"] += 1
                self.log(m.WARNING, "controller rebooted: " + text)
                self._rebooted()
                self.post(m.EVSE_BOOT, rapi.parse_ab(fields))
        except ValueError as e:
            self.log(m.WARNING, "bad async line %s: %s" % (text, e))
        self.post(m.EVSE_ASYNC, text)
        if not self.up:
            self._probe_now()

    def _boot_started(self):
        """`$AT 00 00 0 0200`: the controller is in its POST. What is sent now waits in its RX
        buffer and runs right after `$AB`, before it offers its saved current (24 A by default)
        to a car: so the pilot goes now, and nothing else until `$AB`."""
        self.log(m.WARNING, "controller is booting")
        self._drop_inflight()  # sent before the reset: lost
        self.booting = True
        if not self.up:
            self._link_up()
        self.post(m.EVSE_BOOT, (0, ""))  # the balancer sends its pilot (and enable) again

    def _rebooted(self):
        """`$AB`: the controller forgot the heartbeat and runs on its saved current. Re-sync
        within one round trip, whether the link was up or not: `$SY` goes in this pass."""
        self.booting = False
        self._drop_inflight()  # sent before the reset (lost) or during POST (answered late)
        if self.up:
            self._resync()
        else:
            self._link_up()

    def _done(self, r, ok, fields, seq, line):
        cmd = r.cmd
        if self.dialect.on_result(cmd, ok, fields, seq != 0):
            self._unsupported(cmd)
        if cmd == "SC":
            if not self._sc_done(r, ok, fields):
                return
        elif cmd in _ENABLE:
            if ok:
                self.watch.mode_ran(cmd)
                self.request(POLL, "GS")  # its effect shows in the next state report
            elif self._retry(r):
                return
        elif ok or (cmd == "SY" and fields):  # an SY NK still carries the heartbeat fields
            self._route(cmd, fields, r.args)
        text = rapi.text(line)
        self._answer(r, ok, fields, text)

    def _resync(self, have_version=False):
        """After link-up or a controller reboot: heartbeat first, then a full picture. The
        balancer's pilot and enable follow on link.status / evse.boot, ahead of the polls."""
        if not self.booting:  # during POST the pilot goes first; the heartbeat at `$AB`
            self._configure_heartbeat(head=True)
        for cmd in ("GV", "GS", "GC", "G0", "GG", "GU"):
            if cmd != "GV" or not have_version:
                self.request(POLL, cmd, None)
        self._arm_polls()

    def _rtt(self, r):
        rtt = ticks_diff(self.now(), r.sent_at)
        st = self.stats
        st["replies"] += 1
        st["rtt_last"] = rtt
        st["rtt_sum"] += rtt
        st["rtt_count"] += 1
        if rtt > st["rtt_worst"]:
            st["rtt_worst"] = rtt
        if rtt * 2 > self._timeout_ms():
            self.post(m.EVSE_SLOW_REPLY, rtt)

    # --- state reports -------------------------------------------------------------------------
    def _state(self, state, pilot, amps, vflags):
        was = self.state
        self.state = state
        self.post(m.EVSE_STATE, (state, pilot, amps, vflags))
        plug = rapi.plug_of(state, vflags)
        if plug is not None:
            self._set_plug(plug)  # after evse.state: its receivers see the state first
        charging = state == rapi.STATE_C
        if charging != self.charging:
            self.charging = charging
            self._gg_reads = 0
            if self.up:
                self._arm_polls()
                if not charging:  # the charge ended or paused: show the current it leaves soon
                    self._gg_reads = _GG_READS
                    self._gg_soon(_GG_FIRST_MS)
        if amps is not None and state != 0:
            self._pilot_seen(amps)
            self._check_pilot()
        self._check_mode(state, vflags)
        if charging and was != state and self.up:
            self.request(POLL, "GG")  # a session starts: the car's current now, not in 30 s

    def _set_plug(self, plug):
        if plug != self.plug:
            self.plug = plug
            self.post(m.EVSE_PLUG, plug)

    def _pilot_seen(self, amps):
        if self.watch.pilot_seen(amps):
            self.post(m.EVSE_PILOT, amps)

    def _check_pilot(self):
        if not self.up or self._queued("SC"):
            return
        w = self.watch
        fix = w.pilot_fix()
        if fix is not None:
            self._correct(fix, "SC", (w.pilot_want, "V"),
                          "pilot %s A, want %s A" % (w.pilot_now, w.pilot_target()))

    def _check_mode(self, state, vflags):
        w = self.watch.mode_want
        if not self.up or w is None or self._queued(w):
            return
        fix = self.watch.mode_fix(state, vflags)
        if fix is not None:
            self._correct(fix, w, None, "state %02x after $%s" % (state, w))

    def _correct(self, fix, cmd, args, why):
        if fix == GIVE_UP:
            self.log(m.ERROR_LEVEL, "controller does not follow: " + why)
            return
        self.stats["corrections"] += 1
        self.log(m.WARNING, "correcting: " + why)
        self.request(LINK, cmd, args)

    # --- heartbeat and polls ----------------------------------------------------------------
    def _hb_s(self):
        """The heartbeat interval: hb_interval on the cable, lora_hb_s on the radio (0: off)."""
        hb = self.settings.get("hb_interval")
        return self.settings.get("lora_hb_s") if hb and self.radio else hb

    def _configure_heartbeat(self, head=False):
        interval = self._hb_s()
        self.cancel(self._hb_timer)
        self._hb_timer = None
        self.cancel(self._hold_timer)  # a raised interval (link.hold) ends with this one
        self._hold_timer = None
        self.request(LINK, "SY", (interval, self.settings.get("hb_amps")), head)
        # Pulse three times per interval: one lost pulse never trips the fallback. With the
        # heartbeat off (or a controller without $SY) the same timer sends a keep-alive $GS, so
        # a dead line is still noticed within link_silence_ms.
        # On LoRa twice per interval: a pulse is re-sent by the radio link and by rapi_link (8
        # times) until it is answered, and every pulse costs airtime (docs/lora.md).
        self._hb_timer = self.every(max(300, (interval or _KEEPALIVE_S) * 1000
                                        // (2 if self.radio else 3)), T_HB)

    def hold(self, requester, ms):
        """link.hold: a blocking call of up to `ms` (a WiFi connect) is coming; nothing is read or
        pulsed meanwhile. Pulse `$SY` now, so the controller's full interval starts; if `ms` does
        not fit in it (with _HOLD_SLACK_MS to spare), configure a longer interval for the hold
        and restore hb_interval after it (T_HOLD). `$SY i a` writes the controller's EEPROM, so
        only a hold that needs it raises the interval. The requester gets rapi.reply (HOLD, ...)
        once the controller answered (ok None: link down, or no heartbeat to keep: go ahead).
        With `hold_fallback` the interval is never raised: only the pulse."""
        self._hold_ms = ms
        iv = self.settings.get("hb_interval")
        if not iv or not self.dialect.supports("SY"):
            if self.up and self._queued("SC"):  # a cut before the blind call: answered first
                self.request(HOLD, "GS", None, requester=requester)
            else:
                self._answer(Req(requester, HOLD, "SY", None), None, (), "no heartbeat")
            return
        args = None
        # hold_fallback: no raise; a join longer than the interval lets the controller fall back
        # to hb_amps while the unit is blind (a load step then cannot overload the breaker);
        # the pulse after it is answered "missed" and acknowledged ($SY 165), which restores it
        if ms + _HOLD_SLACK_MS > iv * 1000 and not self.settings.get("hold_fallback"):
            args = (iv + (ms + _HOLD_SLACK_MS + 999) // 1000, self.settings.get("hb_amps"))
            if self.up:
                self.cancel(self._hold_timer)
                self._hold_timer = self.after(ms + self.settings.get("timer13"), T_HOLD)
        # In arrival order among the safety commands, never at the head: a cut queued before the
        # hold (the balancer's blind cut, net.blocking) must be answered before the call starts.
        self.request(HOLD, "SY", args, False, requester)

    def _held(self):
        """A link.hold was granted within its blocking time + the silence limit: a silence now
        may be a blocked pass, not the controller."""
        at = self._hold_at
        return at is not None and ticks_diff(self.now(), at) <= self._hold_ms + self._silence_ms()

    def _hold_over(self):
        self._hold_timer = None
        if self.up and self.settings.get("hb_interval"):
            self._configure_heartbeat()

    def _pulse(self):
        if self._hb_s() and self.dialect.supports("SY"):
            self.request(LINK, "SY", None)
        else:
            self.request(POLL, "GS", None)

    def poll_interval(self, cmd):
        for c, setting, slow_when_charging in POLLS:
            if c == cmd:
                ms = self.settings.get(setting)
                if slow_when_charging == self.charging:
                    ms *= self.settings.get("TFO")
                if self.radio:
                    ms *= self.settings.get("lora_poll_x")
                return ms if ms < _POLL_MAX_MS else _POLL_MAX_MS
        raise ValueError(cmd)

    def _arm_poll(self, cmd):
        self.cancel(self._poll_timers.get(cmd))
        if self.dialect.supports(cmd):
            self._poll_timers[cmd] = self.after(self.poll_interval(cmd), cmd)

    def _gg_soon(self, ms):
        """The next `$GG` poll in `ms`, not in timer7: a poll timer, so it queues behind any
        safety command, and the regular pace follows it."""
        self.cancel(self._poll_timers.get("GG"))
        if self.dialect.supports("GG"):
            self._poll_timers["GG"] = self.after(ms, "GG")

    def _arm_polls(self):
        for c in POLLS:
            self._arm_poll(c[0])
