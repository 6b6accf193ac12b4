"""lora_link: carries RAPI lines over a LoRa radio (docs/lora.md). Two roles, one class:

- unit (at the meter): like uart_link, `rapi.tx_line` in, `rapi.rx_line` out; active while the
  `lora` setting is on (uart_link is active otherwise; dinamics/app.py swaps them live);
- bridge (at the charger, device/bridge.py): frames <-> the controller's UART (`uart` given);
  after lora_failsafe_s without a fresh frame from the unit, one `$SC hb_amps V` to the
  controller. The UART side and the failsafe are dinamics/lora_failsafe.py, loaded only in this
  role.

Frames (dinamics/lora_frame.py) carry RAPI lines, the sender's counter and a truncated
HMAC-SHA256 tag over the shared `lora_key`; the replay window drops old, repeated and forged
frames. The unit's frames are acknowledged by the bridge (on the reply frame when the controller
answers within ACK_HOLD_MS, else alone) and sent again with back-off, up to _ATTEMPTS times; the
bridge's frames with unprompted lines ($AT, $AB) ask the unit for an ack, replies do not (the
unit's command is sent again by rapi_link when its reply is lost). Every frame first passes the
airtime ledger (dinamics/lora_air.py): near the band's budget only safety traffic goes ($SC cuts,
$FS, the `$SY` heartbeat and their replies), at the budget nothing; the heartbeat then stops and
the controller falls back to its safe current by itself.

The radio (dinamics/lora_radio.py on a board, hil/radio_sim.py on the host) is never waited on:
  send(frame) -> bool   start sending (False: busy)      busy() -> bool  still sending
  receive() -> bytes or None  a frame that arrived        rssi            of the last frame
  carrier() -> bool     another radio's frame is on air now (listen before talk)
  configure(band, sf, bw_khz)   optional: new radio parameters (set_lora_band/_sf/_bw)
"""
from adafruit_ticks import ticks_add, ticks_diff

from dinamics import lora_frame as lf
from dinamics import messages as m
from dinamics.lora_air import Ledger, airtime_us
from dinamics.mailbox import Actor

try:
    from micropython import const
except ImportError:
    def const(expr):
        return expr

_ATTEMPTS = const(3)
ACK_HOLD_MS = const(150)  # the bridge waits this long for the controller's reply to carry the ack
_MAX_LINES = const(8)
_MAX_BODY = const(96)
_REPLY_PL = const(60)  # a reply frame the ack timeout allows for
_RESYNC_GAP_MS = const(60000)
_REACK_MS = const(2000)  # a repeat of the newest frame this soon: our ack was lost, ack again
_GATHER_MS = const(20)  # bridge: the controller's `$AT` follows its `$OK` within ms: one frame
_LBT_MAX_MS = const(400)  # listen before talk: a busy channel defers a frame at most this long
_T_AIR = "air"
_AIR_MS = const(60000)


class LoraLink(Actor):
    name = "lora_link"
    subscribes = (m.RAPI_TX_LINE, m.SETTING_CHANGED)
    polls = True
    inbox_size = 24

    def __init__(self, settings, radio, store, uart=None):
        super().__init__()
        self.settings = settings
        self.radio = radio
        self.uart = uart
        self.bridge = uart is not None
        self.active = True
        self.counters = lf.Counters(store)
        self.replay = lf.Replay(self.counters.rx_floor)
        self.ledger = Ledger(settings.get("lora_band"))
        self.stats = {"sent": 0, "resent": 0, "received": 0, "accepted": 0, "bad": 0,
                      "replayed": 0, "old": 0, "gave_up": 0, "refused": 0, "dropped": 0,
                      "acks": 0, "lines_in": 0, "lines_out": 0, "ack_rtt_ms": 0, "failsafe": 0}
        self._key()
        self.reset()
        if self.bridge:
            # the controller's side (dinamics/lora_failsafe.py, docs/lora.md "Safety"): its UART
            # lines in and out, and the failsafe: when the last authenticated frame from the unit
            # is older than lora_failsafe_s, one volatile `$SC hb_amps V`. Only the bridge loads it.
            from dinamics import lora_failsafe

            self.fs = lora_failsafe
            lora_failsafe.init(self)

    def _key(self):
        k = lf.key_from_hex(self.settings.get("lora_key"))
        self.auth = lf.Auth(k) if k is not None else None

    def reset(self):
        self.lines = []  # (line incl. CR, safety) waiting for a frame
        self.out = []  # [counter, frame, attempts, due, safety, body, areq, sent_at]
        self.ack = None  # peer counter we owe an ack for
        self.ack_due = None
        self.ack_safety = False
        self.resync_due = None
        self.resync_at = None
        self.sc_amps = 255
        self.warned = False
        self.lines_at = None  # when the oldest waiting line came (bridge: gather)
        self.deferred = None  # since when a busy channel holds our frame back
        self.top_at = None  # when the newest peer frame was accepted
        self.acked_by = None  # (peer counter, our frame that acknowledged it)

    def start(self):
        self.every(_AIR_MS, _T_AIR)
        if self.bridge:
            self.heard_at = self.now()  # a unit silent since our boot trips too

    def activate(self, on):
        """The unit's transport swap (App._medium): what waited on the radio is dropped (rapi_link
        sends its request again on the medium that carries the lines now)."""
        if on:
            self.after(5000, _T_AIR)  # a first ledger soon (MQTT, web), then every minute
        self.active = on
        self.lines = []
        self.out = []
        self.ack = None

    # --- messages --------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.RAPI_TX_LINE:
            if self.active and not self.bridge:
                self._queue(payload, self._safety(payload))
        elif kind == m.SETTING_CHANGED:
            radio = False
            for name in payload:
                if name == "lora_key":
                    self._key()
                elif name == "lora_band":
                    self.ledger.set_band(self.settings.get("lora_band"))
                radio = radio or name in ("lora_band", "lora_sf", "lora_bw")
            conf = getattr(self.radio, "configure", None)
            if radio and conf is not None:
                s = self.settings
                conf(s.get("lora_band"), s.get("lora_sf"), s.get("lora_bw"))
        elif kind == m.TIMER and payload == _T_AIR:
            if self.active and not self.bridge:
                self.post(m.LORA_AIR, self.air())

    def air(self):
        """(airtime used in the window ms, budget ms, window ms, frames sent, frames refused,
        last rssi)."""
        led = self.ledger
        return (led.used_ms(self.now()), led.budget, led.window, led.frames, led.refused,
                getattr(self.radio, "rssi", 0))

    def _safety(self, line):
        """A cut ($SC lower than the last one), $FS, the $SY heartbeat: what the budget's
        reserve is for. On the bridge: the controller's replies while the unit's last frame was
        safety traffic."""
        head = line[:3]
        if head == b"$SC":
            try:
                amps = int(line[4:].split(b" ")[0])
            except ValueError:
                return True
            cut = amps <= self.sc_amps
            self.sc_amps = amps
            return cut
        if self.bridge:
            return self.ack_safety and (head == b"$OK" or head == b"$NK")
        return head == b"$FS" or head == b"$SY"

    def _queue(self, line, safety):
        lines = self.lines
        if not lines:
            self.lines_at = self.now()
        if len(lines) >= _MAX_LINES:
            for i in range(len(lines)):
                if not lines[i][1]:
                    lines.pop(i)
                    break
            else:
                lines.pop(0)
            self.stats["dropped"] += 1
        if safety:  # ahead of the other lines
            i = 0
            while i < len(lines) and lines[i][1]:
                i += 1
            lines.insert(i, (line, True))
        else:
            lines.append((line, False))

    # --- the radio ---------------------------------------------------------------------------
    def poll(self, budget_ms):
        if not self.active:
            return
        radio = self.radio
        if radio.busy():
            return
        n = 0
        f = radio.receive()
        while f is not None:
            self._rx(f)
            n += 1
            f = radio.receive() if n < 4 else None
        if self.bridge:
            self.fs.read_uart(self)
            self.fs.check(self)
        if self.lines or self.out or self.ack is not None or self.resync_due is not None:
            now = self.now()
            if radio.carrier():
                if self.deferred is None:
                    self.deferred = now
                if ticks_diff(now, self.deferred) < _LBT_MAX_MS:
                    return
            self.deferred = None
            self._tx(now)

    def _toa(self, n):
        s = self.settings
        return airtime_us(n, s.get("lora_sf"), s.get("lora_bw"))

    def _ack_wait_ms(self, n):
        return (self._toa(n) + self._toa(_REPLY_PL)) // 1000 + ACK_HOLD_MS + 60

    def _tx(self, now):
        if self.auth is None:
            if not self.warned:
                self.warned = True
                self.log(m.ERROR_LEVEL, "no usable lora_key (32-64 hex digits): nothing is sent")
            self.lines = []
            return
        # 1. a frame whose ack is overdue, safety first
        best = None
        for o in self.out:
            if ticks_diff(now, o[3]) >= 0 and (best is None or (o[4] and not best[4])):
                best = o
        if best is not None:
            if best[2] >= _ATTEMPTS:
                self.out.remove(best)
                self.stats["gave_up"] += 1
            else:
                self._resend(now, best)
            return
        # 2. new lines (the ack we owe rides along)
        if self.lines and not (self.bridge and ticks_diff(now, self.lines_at) < _GATHER_MS):
            self._send_lines(now)
            return
        # 3. an ack alone, a resync
        if self.ack is not None and (not self.bridge or ticks_diff(now, self.ack_due) >= 0):
            c = self.counters.next()
            frame = lf.encode(self.auth, lf.ACK, self.bridge, c, self.ack)
            self._emit(now, frame, self.ack_safety)
            self.acked_by = (self.ack, frame)
            self.ack = None
            self.stats["acks"] += 1
        elif self.resync_due is not None:
            c = self.counters.next()
            frame = lf.encode(self.auth, lf.RESYNC, self.bridge, c, None,
                              self.resync_due.to_bytes(4, "big"))
            self.resync_due = None
            self.resync_at = now
            self._emit(now, frame, False)

    def _send_lines(self, now):
        body = b""
        safety = areq = False
        lines = self.lines
        while lines and len(body) + len(lines[0][0]) <= _MAX_BODY:
            line, s = lines.pop(0)
            body += line
            safety = safety or s
            if self.bridge and line[:3] not in (b"$OK", b"$NK"):
                areq = True  # an unprompted line ($AT, $AB ...): nobody asks for it again
        if not body:  # a line longer than a frame: never sent
            lines.pop(0)
            self.stats["dropped"] += 1
            return
        c = self.counters.next()
        ack = self.ack
        frame = lf.encode(self.auth, lf.DATA, self.bridge, c, ack, body, areq)
        if not self._emit(now, frame, safety or (ack is not None and self.ack_safety)):
            return
        if ack is not None:
            self.ack = None
            self.acked_by = (ack, frame)  # sent again as it is when the peer repeats `ack`
        self.stats["lines_out"] += body.count(b"\r")
        if not self.bridge or areq:
            self.out.append([c, frame, 1, ticks_add(now, self._ack_wait_ms(len(frame))), safety,
                             body, areq, now])

    def _resend(self, now, o):
        o[2] += 1
        frame = o[1]
        if self._emit(now, frame, o[4]):
            self.stats["resent"] += 1
        # back-off: 1, 4/3, 5/3 ... of the ack wait, plus up to half of it at random (the counter
        # hashed): two radios that collided do not collide again
        wait = self._ack_wait_ms(len(frame)) * (o[2] + 1) // 3
        jitter = ((o[0] * 2654435761 + o[2]) >> 8) % (wait // 2 + 1)
        o[3] = ticks_add(now, wait + jitter)

    def _emit(self, now, frame, safety):
        us = self._toa(len(frame))
        if not self.ledger.allow(now, us, safety):
            self.stats["refused"] += 1
            return False
        if not self.radio.send(frame):
            return False
        self.ledger.spend(now, us)
        self.stats["sent"] += 1
        return True

    # --- receiving ---------------------------------------------------------------------------
    def _rx(self, frame):
        self.stats["received"] += 1
        if self.auth is None:
            return
        d = lf.decode(self.auth, frame, not self.bridge)
        if d is None:
            self.stats["bad"] += 1
            return
        kind, c, ack, body, areq = d
        fresh = self.replay.fresh(c)
        if fresh == 2 or (fresh == 1 and c + lf.WINDOW <= self.replay.top):
            self.stats["old"] += 1
            # an authentic frame below our window: we rebooted (the floor), or the peer lost its
            # counters (a wiped drive), or it is an old frame replayed. Tell the peer where to
            # continue: at once after our boot, else at most once a minute (a replaying
            # attacker costs us 46 ms of airtime a minute, never an accepted frame)
            now = self.now()
            if ((self.replay.top == self.replay.floor and self.resync_at is None)
                    or self.resync_at is None or ticks_diff(now, self.resync_at) > _RESYNC_GAP_MS):
                self.resync_due = self.replay.top
            return
        if fresh == 1:
            self.stats["replayed"] += 1
            if (kind == lf.DATA and (areq or self.bridge) and c == self.replay.top
                    and ticks_diff(self.now(), self.top_at) < _REACK_MS):
                # our ack was lost: the peer sent it again. The frame that carried the ack (the
                # controller's reply) goes again as it was; else a new ack.
                if self.bridge and self.acked_by is not None and self.acked_by[0] == c:
                    self._emit(self.now(), self.acked_by[1], self.ack_safety)
                    self.stats["resent"] += 1
                else:
                    self._owe(c, self.ack_safety)
            return
        self.counters.heard(c)
        self.replay.mark(c)
        self.top_at = self.now()
        if self.bridge:
            if self.tripped:
                self.fs.rearm(self)
            self.heard_at = self.top_at
        self.stats["accepted"] += 1
        if ack is not None:
            self._acked(ack)
        if kind == lf.RESYNC and len(body) == 4:
            self.counters.jump(int.from_bytes(body, "big"))
            self._renumber()
        elif kind == lf.DATA and body:
            if self.bridge:
                self.ack_safety = False
                for line in body.split(b"\r"):
                    if line and self._safety(line):
                        self.ack_safety = True
                    if line[:4] == b"$SY ":
                        self.fs.unit_sy(self, line)
                self.fs.write_uart(self, body)
                self._owe(c, self.ack_safety)
            else:
                for line in body.split(b"\r"):
                    if line:
                        self.stats["lines_in"] += 1
                        self.post(m.RAPI_RX_LINE, line)
                if areq:
                    self._owe(c, False)

    def _owe(self, c, safety):
        self.ack = c
        self.ack_safety = safety
        self.ack_due = ticks_add(self.now(), ACK_HOLD_MS)

    def _acked(self, c):
        for o in self.out:
            if o[0] & 0xFF == c:
                self.out.remove(o)
                self.stats["ack_rtt_ms"] = ticks_diff(self.now(), o[7])
                return

    def _renumber(self):
        """After a resync the frames still waiting for an ack go again with new counters."""
        now = self.now()
        for o in self.out:
            c = self.counters.next()
            o[0] = c
            o[1] = lf.encode(self.auth, lf.DATA, self.bridge, c, None, o[5], o[6])
            o[2] = 0
            o[3] = now
