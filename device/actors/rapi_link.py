"""rapi_link: speaks RAPI to the OpenEVSE controller through whichever transport carries lines.

The protocol half of the actor (the meaning of replies and what is kept in step with the
controller is its mixin actors/rapi_evse.py; whether the controller is there, link up and down,
probes and the medium swap, its mixin actors/rapi_alive.py; the rules and the real-controller
facts behind them are in docs/architecture.md "RAPI link"):
- one request in flight (plus one overtaking cut, with ids), matched by id or by order;
  unanswered bytes never exceed the controller's 64-byte RX buffer (dinamics/rapi_wire.py);
- re-send on timer13; link DOWN only after `link_silence_ms` of silence while something waits;
  while down, back-off probes, and any valid line probes at once; `$AB` re-syncs at once;
- a bare `$NK^21` is line noise: the command did not run and is sent again;
- every `$SC` passes the pilot gate (dinamics/pilot_gate.py) right here, before the wire.
"""

from dinamics import messages as m
from dinamics import rapi
from actors.rapi_alive import PROBE_FIRST_MS, T_PROBE, T_SILENCE, LinkAlive
from actors.rapi_evse import HOLD, LINK, POLL, PROBE, T_HB, T_HOLD, EvseSync
from dinamics.evse_watch import EvseWatch
from dinamics.pilot_gate import gate_sc
from dinamics.rapi_dialect import Dialect, fits
from dinamics.rapi_queue import Req, RequestQueue
from dinamics.rapi_wire import Wire

# request tags the link uses for itself (requester None: never answered)
_INTERNAL = (POLL, LINK, PROBE)
# timer tags (T_HB and the poll commands belong to rapi_evse, T_PROBE and T_SILENCE to rapi_alive)
_T_TIMEOUT = "timeout"

_ATTEMPTS = 3  # polls and other reads: sends per request
_SAFETY_ATTEMPTS = 8  # SC/FS/FD/FE/SY: then the requester is told and sends again
_BOOT_CMDS = ("SC", "FS", "FD")
# May overtake a read in flight when the controller echoes ids (replies are matched by id, in any
# order): a cut must not wait for a $GG's answer, which a real controller gives up to ~300 ms late.
_URGENT = ("SC", "FS", "FD")
_T_UTIMEOUT = "utimeout"  # sent while the controller boots: they run right after `$AB`


class RapiLink(EvseSync, LinkAlive):
    name = "rapi_link"
    subscribes = (m.RAPI_REQUEST, m.RAPI_RX_LINE, m.SETTING_CHANGED, m.LINK_HOLD)
    inbox_size = 32

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self.dialect = Dialect()
        self.wire = Wire()
        self.watch = EvseWatch()
        self.queue = RequestQueue()
        self.radio = False  # True: the lines go over LoRa (lora_link): slower polls, longer waits
        self.medium = None  # callable(lora on) -> True when the radio carries the lines (App)
        self.stats = {"sent": 0, "replies": 0, "timeouts": 0, "bad_checksum": 0, "late": 0,
                      "noise": 0, "held": 0, "debug_lines": 0, "async": 0, "rtt_last": 0,
                      "rtt_worst": 0, "rtt_sum": 0, "rtt_count": 0, "downs": 0, "boots": 0,
                      "corrections": 0, "worst_silence": 0, "overtakes": 0}
        self.reset()

    def reset(self):
        self.queue.clear()
        self.inflight = None
        self.urgent = None  # a safety command sent while a read is in flight (ids only)
        self._utimeout = None
        self.seq = 0x40
        self.up = False
        self.booting = False  # between the controller's `$AT 00 00 0 0200` and its `$AB`
        self.charging = False
        self._gg_reads = 0  # $GG reads left after state C (rapi_evse)
        self.state = None
        self.plug = None
        self.watch.reset()
        self.quiet_since = None  # tick of the first send not answered since the last valid line
        self._timeout = self._silence = self._probe_timer = self._hb_timer = self._hold_timer = None
        self._graced = False  # a silence during a hold got one timer13 more to read
        self._hold_at = None  # when the last link.hold was granted (its blocking call follows)
        self._hold_ms = 0
        self._poll_timers = {}
        self._probe_ms = PROBE_FIRST_MS
        self.wire.clear()
        self.dialect.reset()

    def start(self):
        # Unknown until the controller answers: probe at once (boot messages are easy to miss).
        self._probe_timer = self.after(1, T_PROBE)

    # --- messages ----------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.RAPI_RX_LINE:
            self._rx(payload)
        elif kind == m.RAPI_REQUEST:  # (requester, tag, cmd, args)
            self.request(payload[1], payload[2], payload[3], requester=payload[0])
        elif kind == m.TIMER:
            self._timer(payload)
        elif kind == m.LINK_HOLD:  # (requester, ms)
            self.hold(payload[0], payload[1])
        elif kind == m.SETTING_CHANGED:
            if "lora" in payload:
                self._swap()
            if not self.up:
                return
            hb = polls = False
            for name in payload:
                hb = hb or name in ("hb_interval", "hb_amps", "lora_hb_s")
                polls = polls or name in ("TFO", "timer5", "timer6", "timer7", "timer8", "timer9",
                                          "lora_poll_x")
            if hb:
                self._configure_heartbeat()
            if polls:
                self._arm_polls()

    def request(self, tag, cmd, args=None, head=False, requester=None):
        """Queue a command. Safety commands go first; a refusal is answered, never silent. The
        answer (rapi.reply) is sent to `requester` alone; None: the link's own, nobody is told."""
        if not self.up:
            self._answer(Req(requester, tag, cmd, args), None, (), "link down")
            return
        if tag == POLL and self.queue.has_poll(POLL, cmd):
            return
        if (tag == POLL or tag == LINK) and not self.dialect.supports(cmd) and cmd != "SC":
            return  # e.g. no $SY on an old controller: do not keep asking
        if cmd == "SC":  # the gate: whatever asked, whatever the settings say
            amps = gate_sc(args[0] if args else None, self.settings)
            args = (amps, "V")
            self.watch.pilot_want = amps
        for r, why in self.queue.add(Req(requester, tag, cmd, args), head):
            self._answer(r, None, (), why)
        self._pump()

    def _answer(self, r, ok, fields, text):
        """rapi.reply (tag, ok, fields, text) to the requester of r: sent, not broadcast."""
        a = r.requester
        if r.tag == HOLD:
            self._hold_at = self.now()  # the requester blocks from now on for up to _hold_ms
        if a is not None and not a.stopped:
            self.sched.send(a, m.RAPI_REPLY, (r.tag, ok, fields, text))

    def _queued(self, cmd):
        return ((self.inflight is not None and self.inflight.cmd == cmd)
                or (self.urgent is not None and self.urgent.cmd == cmd) or self.queue.has(cmd))

    # --- sending -----------------------------------------------------------------------------
    def _pump(self):
        while self.inflight is None and len(self.queue):
            # While the controller boots only the pilot and enable go (they wait in its buffer).
            r = self.queue.peek(_BOOT_CMDS if self.booting else None)
            if r is None:
                return
            seq = self._next_seq() if self.dialect.ids is not False else 0
            try:
                line = rapi.build(r.cmd, r.args, seq)
            except ValueError as e:
                self.queue.take(r)
                self._answer(r, None, (), "bad command: %s" % e)
                continue
            if not self.wire.fits(len(line)):
                self.stats["held"] += 1  # the controller's buffer may be full: wait for it
                return
            self.queue.take(r)
            self._send(r, line, seq)
        self._overtake()

    def _overtake(self):
        f = self.inflight
        if (f is None or f.prio or self.urgent is not None or self.dialect.ids is not True
                or self.booting or not self.up):
            return
        r = self.queue.peek(_URGENT)
        if r is None:
            return
        seq = self._next_seq()
        line = rapi.build(r.cmd, r.args, seq)  # gated SC / FS / FD: always a valid line
        if self.wire.fits(len(line)):
            self.queue.take(r)
            self.stats["overtakes"] += 1
            self._send(r, line, seq, True)

    def _next_seq(self):
        self.seq = self.seq + 1 if self.seq < 255 else 1  # never 0: 0 means "no id"
        return self.seq

    def _send(self, r, line, seq, urgent=False):
        now = self.now()
        self.stats["sent"] += 1
        self.post(m.RAPI_TX_LINE, line)
        if r.cmd == "FR":  # the controller resets before answering; its boot lines follow
            self._answer(r, True, (), "")
            return
        self.wire.add(seq, len(line), r.cmd, r)
        r.attempts += 1
        r.sent_at = now
        if urgent:
            self.urgent = r
            self.cancel(self._utimeout)
            self._utimeout = self.after(self._timeout_ms(), _T_UTIMEOUT)
        else:
            self.inflight = r
            self.cancel(self._timeout)
            self._timeout = self.after(self._timeout_ms(), _T_TIMEOUT)
        if self.quiet_since is None and self.up:
            self._quiet_from(now)

    def _timeout_ms(self):
        ms = self.settings.get("timer13")
        return max(ms, self.settings.get("lora_timeout_ms")) if self.radio else ms

    def _retry(self, r):
        """Send again (ahead of the queue) if attempts remain. False: give up."""
        if r.attempts >= (_SAFETY_ATTEMPTS if r.prio else _ATTEMPTS) or not self.up:
            return False
        self.queue.again(r)
        return True

    # --- receiving ---------------------------------------------------------------------------
    def _rx(self, line):
        try:
            parsed = rapi.parse_line(line)
        except ValueError:  # ChecksumError: counted, never acted on
            self.stats["bad_checksum"] += 1
            return
        if parsed is None:
            self.stats["debug_lines"] += 1
            return
        kind, fields, seq = parsed
        self._heard()
        if kind == rapi.OK or kind == rapi.NK:
            self._reply(kind == rapi.OK, fields, seq, line)
        else:
            self._async(kind, fields, line)
        self._still_waiting()

    def _reply(self, ok, fields, seq, line):
        d = self.dialect
        if d.on_reply(seq, ok, fields, self.wire.live()):
            self.log(m.INFO, "controller %s sequence ids" % ("echoes" if d.ids else "does not echo"))
        if seq and d.ids is not False:
            e = self.wire.take_seq(seq)
        else:
            e = self.wire.take_in_order(lambda cmd: fits(cmd, ok, fields))
        r = e[3] if e is not None else None
        mine = r is not None and (r is self.inflight or r is self.urgent)
        if mine and r is self.urgent:
            self.cancel(self._utimeout)
            self._utimeout = None
            self.urgent = None
        elif mine:
            self.cancel(self._timeout)
            self._timeout = None
            self.inflight = None
        if not self.up:  # any answer proves the controller is there
            self._link_up(mine and r.cmd == "GV" and ok and len(fields) == 2)
        if not mine:
            self.stats["late"] += 1  # an answer to a line already given up on or re-sent
            self._pump()
            return
        self._rtt(r)
        if not ok and not fields and not seq:
            # bare $NK^21: the line arrived damaged at the controller and did not run; or, from a
            # controller without ids, the command is not supported (three in a row say so)
            if self.dialect.ids is False and self.dialect.on_result(r.cmd, False, fields, False):
                self._unsupported(r.cmd)
                self._answer(r, False, fields, "$NK")
            elif not self._retry(r):
                self._answer(r, None, (), "refused")
            else:
                self.stats["noise"] += 1
        else:
            self._done(r, ok, fields, seq, line)
        self._pump()

    def _drop_inflight(self):
        for r in (self.urgent, self.inflight):  # the read first in the queue, then the cut before it
            if r is not None:
                self.wire.forget(r)
                if r.tag not in _INTERNAL or r.cmd in _BOOT_CMDS:  # pulses and polls recur
                    r.attempts = 0
                    self.queue.again(r)
        self.inflight = self.urgent = None
        self.cancel(self._timeout)
        self.cancel(self._utimeout)
        self._timeout = self._utimeout = None

    # --- timers ------------------------------------------------------------------------------
    def _timer(self, tag):
        if tag == _T_TIMEOUT:
            self._timeout = None
            self._timed_out()
        elif tag == _T_UTIMEOUT:
            self._utimeout = None
            self._urgent_timed_out()
        elif tag == T_SILENCE:
            self._silent()
        elif tag == T_PROBE:
            self._probe_timer = None
            self._probe()
        elif tag == T_HB:
            self._pulse()
        elif tag == T_HOLD:
            self._hold_over()
        else:
            self._poll_timers.pop(tag, None)
            if self.up:
                self.request(POLL, tag, None)
                self._arm_poll(tag)

    def _timed_out(self):
        r = self.inflight
        if r is None:
            return
        self.stats["timeouts"] += 1
        if self.booting and r.tag != PROBE:
            # it waits in the controller's buffer until `$AB`: sending it again would only fill it
            self._timeout = self.after(self._timeout_ms(), _T_TIMEOUT)
            return
        self.inflight = None
        if r.tag == PROBE:
            self._schedule_probe()
        elif not self._retry(r):
            self.wire.forget(r)
            self._answer(r, None, (), "timeout")
        self._pump()

    def _urgent_timed_out(self):
        r = self.urgent
        if r is None:
            return
        self.stats["timeouts"] += 1
        self.urgent = None
        if not self._retry(r):
            self.wire.forget(r)
            self._answer(r, None, (), "timeout")
        self._pump()
