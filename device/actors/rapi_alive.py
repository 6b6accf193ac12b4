"""Whether the controller is there: a part of the rapi_link actor (a mixin: same state, same
messages), kept apart so the link file holds the requests' path (queue, wire, matching, timeouts).

- The link goes DOWN only after `link_silence_ms` (over LoRa at least 6 request timeouts) without
  a valid line while something awaits an answer (a real controller is silent for 1.1-1.3 s at
  every B->C); a silence right after a link.hold (a blocking WiFi join) gets one timer13 more, to
  read what came meanwhile. Down: every request waiting is answered "link down", polls and the
  heartbeat stop, `link.status (False, cmd)`, the plug is unknown (2).
- While down, `$GV` probes back off 0.5 s -> 1 s -> ... <= timer14; any valid line probes at once.
  A reply brings the link UP (`link.status (True, "")`) and re-syncs (actors/rapi_evse.py).
- `lora` changed (_swap): the other medium carries the lines from now on; what was in flight goes
  again, first, on the new one.
"""

from adafruit_ticks import ticks_diff

from actors.rapi_evse import PROBE
from dinamics import messages as m
from dinamics import rapi
from dinamics.mailbox import Actor
from dinamics.rapi_queue import Req

T_PROBE = "probe"  # timer tags
T_SILENCE = "silence"
PROBE_FIRST_MS = 500


class LinkAlive(Actor):
    def _silence_ms(self):
        ms = self.settings.get("link_silence_ms")
        return max(ms, 6 * self._timeout_ms()) if self.radio else ms

    def _heard(self):
        """A valid line: the controller is alive. Measure the silence it ends."""
        now = self.now()
        if self.quiet_since is not None:
            gap = ticks_diff(now, self.quiet_since)
            if gap > self.stats["worst_silence"]:
                self.stats["worst_silence"] = gap
        self.cancel(self._silence)
        self._silence = None
        self.quiet_since = None
        self._graced = False

    def _still_waiting(self):
        """Lines are still unanswered after a reply: the silence clock restarts now."""
        if self.up and self.quiet_since is None and (self.inflight is not None or self.urgent is not None
                                                     or self.wire.entries):
            self._quiet_from(self.now())

    def _quiet_from(self, now):
        """The silence clock: the link goes down if no valid line comes within _silence_ms."""
        self.quiet_since = now
        self.cancel(self._silence)
        self._silence = self.after(self._silence_ms(), T_SILENCE)

    def _silent(self):
        """T_SILENCE: nothing valid from the controller for _silence_ms while lines wait."""
        self._silence = None
        if self.up and self.quiet_since is not None:
            if self._held() and not self._graced:
                # a pass may have been blocked (link.hold: a WiFi join) and what the
                # controller sent meanwhile is still unread: read it before calling it silent
                self._graced = True
                self._silence = self.after(self.settings.get("timer13"), T_SILENCE)
            else:
                self._link_down()

    def _swap(self):
        """`lora` changed: the other medium carries the lines from now on. What was in flight is
        dropped there and goes again (first) on the new one; the heartbeat and polls take the
        medium's pace. No restart."""
        was = self.radio
        self.radio = bool(self.medium(self.settings.get("lora"))) if self.medium else False
        if was == self.radio:
            return
        self.log(m.INFO, "lines now go over " + ("LoRa" if self.radio else "the cable"))
        self.post(m.LINK_MEDIUM, self.radio)
        self._drop_inflight()
        self.wire.clear()
        if self.up:
            self.quiet_since = None
            self.cancel(self._silence)
            self._silence = None
            self._configure_heartbeat(head=True)
            self._arm_polls()
            self._pump()
        else:
            self.cancel(self._probe_timer)
            self._probe_ms = PROBE_FIRST_MS
            self._probe_timer = self.after(1, T_PROBE)

    def _probe(self):
        if self.up:
            return
        if self.inflight is not None:
            self.wire.forget(self.inflight)
            self.inflight = None
            self.cancel(self._timeout)
        r = Req(None, PROBE, "GV", None)
        seq = self._next_seq() if self.dialect.ids is not False else 0
        line = rapi.build("GV", None, seq)
        if not self.wire.fits(len(line)):
            self.wire.clear()  # while down the old lines are nobody's
        self._send(r, line, seq)

    def _probe_now(self):
        """Any valid line while down: the controller is back, or booting. Ask at once."""
        self._probe_ms = PROBE_FIRST_MS
        if self.inflight is not None and ticks_diff(self.now(), self.inflight.sent_at) < 50:
            return  # just asked
        self.cancel(self._probe_timer)
        self._probe_timer = None
        self._probe()

    def _schedule_probe(self):
        self.cancel(self._probe_timer)
        self._probe_timer = self.after(self._probe_ms, T_PROBE)
        self._probe_ms = min(self._probe_ms * 2, self.settings.get("timer14"))

    def _link_up(self, have_version=False):
        r = self.inflight
        if r is not None and r.tag == PROBE:  # the controller spoke: stop asking whether it is there
            self.wire.forget(r)
            self.inflight = None
            self.cancel(self._timeout)
            self._timeout = None
        self.up = True
        self._probe_ms = PROBE_FIRST_MS
        self.cancel(self._probe_timer)
        self._probe_timer = None
        self.log(m.INFO, "link up")
        self.post(m.LINK_MEDIUM, self.radio)  # before the status: the balancer paces $GG by it
        self.post(m.LINK_STATUS, (True, ""))
        self._resync(have_version)

    def _link_down(self):
        r = self.inflight
        cmd = r.cmd if r is not None else (self.wire.entries[0][2] if self.wire.entries else "GV")
        self.up = False
        self.booting = False
        self.stats["downs"] += 1
        self.log(m.ERROR_LEVEL, "link down: controller silent for %d ms ($%s unanswered)"
                 % (ticks_diff(self.now(), self.quiet_since), cmd))
        u = self.urgent
        self.inflight = self.urgent = None
        q = self.queue.clear()
        if r is not None:
            q.insert(0, r)
        if u is not None:
            q.insert(0, u)
        for x in q:
            self._answer(x, None, (), "link down")
        for t in (self._timeout, self._utimeout, self._silence, self._hb_timer):
            self.cancel(t)
        self._timeout = self._utimeout = self._silence = self._hb_timer = None
        for t in self._poll_timers.values():
            self.cancel(t)
        self._poll_timers = {}
        self.quiet_since = None
        self.wire.clear()
        self.dialect.reset()
        self.post(m.LINK_STATUS, (False, cmd))  # the bridge says CON_ERROR_FAILED_COM :<cmd>
        self._set_plug(2)  # unknown until the controller answers again
        self._schedule_probe()
