"""rapi_link: speaks RAPI to the OpenEVSE controller through whichever transport carries lines.

- One request in flight, matched by sequence id; a bare `$NK^21` answers the pending request.
- Bounded FIFO; SC/FS/FD jump ahead of polls (a newer SC replaces a queued one).
- Timeout = timer13 ms; a timed-out request is re-sent up to twice; 3 consecutive failures take
  the link down (`CON_ERROR_FAILED_COM :<cmd>`), queued work fails cleanly, and a `$GV` probe with
  backoff (up to timer14) brings it back (`OK`) and re-syncs.
- Async `$AT/$AB/$AN/$WF` are routed at any moment, before or after the reply they relate to.
- Polling plan from timers 5-9 and TFO; `$SY` heartbeat configured at link-up and pulsed well
  inside its interval; a missed-pulse NK is acknowledged with `$SY 165`.
"""

from adafruit_ticks import ticks_diff

from dinamics import messages as m
from dinamics import rapi
from dinamics.mailbox import Actor

_QUEUE_MAX = 16
_ATTEMPTS = 3
_FAILS_FOR_DOWN = 3
_PRIORITY = ("SC", "FS", "FD")
# poll tag -> (command, timer setting, slowed down while charging?)
_POLLS = (
    ("GC", "timer5", False),
    ("G0", "timer6", True),
    ("GG", "timer7", False),
    ("GS", "timer8", False),
    ("GU", "timer9", False),
)
_PROBE_FIRST_MS = 500


class RapiLink(Actor):
    name = "rapi_link"
    subscribes = (m.RAPI_REQUEST, m.RAPI_RX_LINE, m.SETTING_CHANGED)
    inbox_size = 32

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self.stats = {"sent": 0, "replies": 0, "timeouts": 0, "bad_checksum": 0,
                      "unmatched": 0, "debug_lines": 0, "async": 0, "rtt_last": 0,
                      "rtt_worst": 0, "rtt_sum": 0, "rtt_count": 0, "downs": 0, "boots": 0}
        self.reset()

    def reset(self):
        self.queue = []  # entries: [tag, cmd, args, attempts]
        self.inflight = None  # [tag, cmd, args, attempts, seq, sent_at]
        self.seq = 0x40
        self.failures = 0
        self.up = False
        self.charging = False
        self.state = None
        self._timeout = None
        self._poll_timers = {}
        self._hb_timer = None
        self._probe_timer = None
        self._probe_ms = _PROBE_FIRST_MS

    def start(self):
        # Unknown until the controller answers: probe at once (boot messages are easy to miss).
        self._probe_timer = self.after(1, "probe")

    # --- message handling --------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.RAPI_RX_LINE:
            self._rx(payload)
        elif kind == m.RAPI_REQUEST:
            tag, cmd, args = payload
            self.request(tag, cmd, args)
        elif kind == m.TIMER:
            self._timer(payload)
        elif kind == m.SETTING_CHANGED:
            name = payload[0]
            if name in ("hb_interval", "hb_amps") and self.up:
                self._configure_heartbeat()
            elif name == "TFO" or name in ("timer5", "timer6", "timer7", "timer8", "timer9"):
                if self.up:
                    self._arm_polls()

    def request(self, tag, cmd, args=None):
        """Queue a command. Safety commands go first; a refusal is answered, never silent."""
        if not self.up and tag != "probe":
            self.post(m.RAPI_REPLY, (tag, None, (), "link down"))
            return
        q = self.queue
        if cmd in _PRIORITY:
            if cmd == "SC":
                for e in q:
                    if e[1] == "SC":  # the newer pilot value wins
                        self._fail(e, "superseded")
                        q.remove(e)
                        break
            i = 0
            while i < len(q) and q[i][1] in _PRIORITY:
                i += 1
            if len(q) >= _QUEUE_MAX:
                self._fail(q.pop(), "queue full")  # evict the newest non-safety entry
            q.insert(i, [tag, cmd, args, 0])
        else:
            if tag == "poll":
                for e in q:
                    if e[0] == "poll" and e[1] == cmd:
                        return  # already queued
            if len(q) >= _QUEUE_MAX:
                self.post(m.RAPI_REPLY, (tag, None, (), "queue full"))
                return
            q.append([tag, cmd, args, 0])
        self._pump()

    def _fail(self, entry, why):
        if entry[0] not in ("poll", "link"):
            self.post(m.RAPI_REPLY, (entry[0], None, (), why))

    def _pump(self):
        if self.inflight is not None or not self.queue:
            return
        e = self.queue.pop(0)
        self._send(e[0], e[1], e[2], e[3])

    def _send(self, tag, cmd, args, attempts):
        self.seq = self.seq + 1 if self.seq < 255 else 1  # never 0: 0 means "no id"
        try:
            line = rapi.build(cmd, args, self.seq)
        except ValueError as e:
            self.post(m.RAPI_REPLY, (tag, None, (), "bad command: %s" % e))
            self._pump()
            return
        now = self.now()
        self.stats["sent"] += 1
        self.post(m.RAPI_TX_LINE, line)
        if cmd == "FR":  # the controller resets before answering; its boot lines follow
            self.post(m.RAPI_REPLY, (tag, True, (), ""))
            self._pump()
            return
        self.inflight = [tag, cmd, args, attempts + 1, self.seq, now]
        self._timeout = self.after(self.settings.get("timer13"), ("timeout", self.seq))

    # --- receive -----------------------------------------------------------------------------
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
        if kind == rapi.OK or kind == rapi.NK:
            self._reply(kind == rapi.OK, fields, seq, line)
        else:
            self._async(kind, fields, line)

    def _reply(self, ok, fields, seq, line):
        f = self.inflight
        if f is None or (seq != f[4] and not (seq == 0 and not ok and not fields)):
            self.stats["unmatched"] += 1  # a late answer to a request we gave up on
            return
        self.cancel(self._timeout)
        self._timeout = None
        self.inflight = None
        rtt = ticks_diff(self.now(), f[5])
        st = self.stats
        st["replies"] += 1
        st["rtt_last"] = rtt
        st["rtt_sum"] += rtt
        st["rtt_count"] += 1
        if rtt > st["rtt_worst"]:
            st["rtt_worst"] = rtt
        t13 = self.settings.get("timer13")
        if rtt * 2 > t13:
            self.post(m.MQTT_OUT, ("timeout", str(rtt), False))
        self.failures = 0
        if not self.up:
            self._link_up()
        tag, cmd = f[0], f[1]
        text = line.decode("ascii", "replace") if isinstance(line, (bytes, bytearray)) else line
        if ok or (cmd == "SY" and fields):  # an SY NK still carries the heartbeat fields
            self._route_ok(cmd, fields, f[2])
        if tag not in ("poll", "link", "probe"):
            self.post(m.RAPI_REPLY, (tag, ok, fields, text))
        self._pump()

    def _route_ok(self, cmd, fields, args):
        try:
            if cmd == "GS":
                s = rapi.parse_gs(fields)
                self._state(s[0], s[2], None, s[3])
            elif cmd == "GG":
                self.post(m.EVSE_CURRENT, rapi.parse_gg(fields))
            elif cmd == "GU":
                self.post(m.EVSE_ENERGY, rapi.parse_gu(fields))
            elif cmd == "GC":
                self.post(m.EVSE_CAPACITY, rapi.parse_gc(fields))
            elif cmd == "G0":
                self.post(m.EVSE_PLUG, rapi.parse_g0(fields))
            elif cmd == "GV":
                self.post(m.EVSE_VERSION, rapi.parse_gv(fields))
            elif cmd == "SY":
                interval, amps, trigger = rapi.parse_sy(fields)
                if trigger == 2:  # a pulse was missed: acknowledge so the current is restored
                    self.request("link", "SY", (165,))
                elif args is None and self.settings.get("hb_interval") and (
                        interval != self.settings.get("hb_interval") or amps != self.settings.get("hb_amps")):
                    self._configure_heartbeat()
        except ValueError as e:
            self.log(m.WARNING, "bad %s reply: %s" % (cmd, e))

    def _state(self, state, pilot, amps, vflags):
        self.state = state
        self.post(m.EVSE_STATE, (state, pilot, amps, vflags))
        charging = state == rapi.STATE_C
        if charging != self.charging:
            self.charging = charging
            if self.up:
                self._arm_polls()

    def _async(self, kind, fields, line):
        self.stats["async"] += 1
        text = line.decode("ascii", "replace")
        try:
            if kind == rapi.AT:
                st, pilot, amps, vflags = rapi.parse_at(fields)
                self._state(st, pilot, amps, vflags)
            elif kind == rapi.AB:
                self.stats["boots"] += 1
                self.log(m.WARNING, "controller rebooted: " + text)
                if self.up:
                    self._resync()
                self.post(m.EVSE_BOOT, rapi.parse_ab(fields))
        except ValueError as e:
            self.log(m.WARNING, "bad async line %s: %s" % (text, e))
        self.post(m.EVSE_ASYNC, text)

    # --- timers ------------------------------------------------------------------------------
    def _timer(self, tag):
        if isinstance(tag, tuple):
            if tag[0] == "timeout":
                self._timed_out(tag[1])
            return
        if tag == "probe":
            self._probe_timer = None
            self._probe()
        elif tag == "hb":
            self.request("link", "SY", None)
        else:
            self._poll_timers.pop(tag, None)
            if self.up:
                self.request("poll", tag, None)
                self._arm_poll(tag)

    def _timed_out(self, seq):
        f = self.inflight
        if f is None or f[4] != seq:
            return
        self.inflight = None
        self._timeout = None
        self.stats["timeouts"] += 1
        self.failures += 1
        tag, cmd, args, attempts = f[0], f[1], f[2], f[3]
        if tag == "probe":
            self._schedule_probe()
        elif self.up and self.failures >= _FAILS_FOR_DOWN:
            self._link_down(cmd)
            if tag != "poll" and tag != "link":
                self.post(m.RAPI_REPLY, (tag, None, (), "timeout"))
        elif attempts < _ATTEMPTS:
            self.queue.insert(0, [tag, cmd, args, attempts])
        elif tag != "poll" and tag != "link":
            self.post(m.RAPI_REPLY, (tag, None, (), "timeout"))
        self._pump()

    # --- link state --------------------------------------------------------------------------
    def _probe(self):
        if self.inflight is None:
            self._send("probe", "GV", None, 0)
        else:
            self._schedule_probe()

    def _schedule_probe(self):
        self._probe_timer = self.after(self._probe_ms, "probe")
        self._probe_ms = min(self._probe_ms * 2, self.settings.get("timer14"))

    def _link_up(self):
        self.up = True
        self._probe_ms = _PROBE_FIRST_MS
        self.cancel(self._probe_timer)
        self._probe_timer = None
        self.log(m.INFO, "link up")
        self.post(m.LINK_STATUS, (True, "OK"))
        self._resync()

    def _resync(self):
        """After link-up or a controller reboot: heartbeat first, then a full picture."""
        self._configure_heartbeat()
        for cmd in ("GS", "GC", "G0", "GG", "GU"):
            self.request("poll", cmd, None)
        self._arm_polls()

    def _link_down(self, cmd):
        self.up = False
        self.stats["downs"] += 1
        text = "CON_ERROR_FAILED_COM :" + cmd
        self.log(m.ERROR_LEVEL, "link down after %d failures (%s)" % (self.failures, cmd))
        q = self.queue
        self.queue = []
        for e in q:
            self._fail(e, "link down")
        for t in self._poll_timers.values():
            self.cancel(t)
        self._poll_timers = {}
        self.cancel(self._hb_timer)
        self._hb_timer = None
        self.post(m.LINK_STATUS, (False, text))
        self._schedule_probe()

    def _configure_heartbeat(self):
        interval = self.settings.get("hb_interval")
        self.cancel(self._hb_timer)
        self._hb_timer = None
        self.request("link", "SY", (interval, self.settings.get("hb_amps")))
        if interval:
            # Pulse three times per interval: one lost pulse never trips the fallback.
            self._hb_timer = self.every(max(300, interval * 1000 // 3), "hb")

    def poll_interval(self, cmd):
        for c, setting, slow_when_charging in _POLLS:
            if c == cmd:
                ms = self.settings.get(setting)
                if slow_when_charging == self.charging:
                    ms *= self.settings.get("TFO")
                return ms
        raise ValueError(cmd)

    def _arm_poll(self, cmd):
        old = self._poll_timers.get(cmd)
        if old is not None:
            self.cancel(old)
        self._poll_timers[cmd] = self.after(self.poll_interval(cmd), cmd)

    def _arm_polls(self):
        for c in _POLLS:
            self._arm_poll(c[0])
