"""A small closed-loop plant for the balancer, in virtual time (host only, deterministic).

    house load trace (per phase) ─┐
                                  ├─► CT readings every ct_period_ms ─► Balancer ─► RAPI requests
    car (hil.ev_model.EvModel) ───┘                                         │
         ▲                                                                   ▼
         └──── pilot / relay ◄──── FakeEvse (stands in for rapi_link + the OpenEVSE controller)

- FakeEvse answers the balancer's rapi.request messages after `reply_ms` (one at a time, like the
  serial link): SC (clamped to 6..hw_max), FE / FS / FD, GG (the car's draw in mA); it reports
  state changes as evse.state (like $AT) and comes up with link.status (True, "OK").
  FE offers the pilot; the car closes S2 (state C) and draws what the pilot offered
  `response_s` earlier; FS takes the PWM away and opens the relay once the car stops or after 3 s
  (as OpenEVSE does); FD opens it at once.
- CT readings come as the board's ct_meter posts them (and hil.house.CtInjector on the HIL rig):
  the fitted CTs are captured one after another, each over its own window of P/3 (P =
  ct_period_ms, a round of three CTs: 5 mains cycles each), and a reading is posted when each
  CT's window ends: that CT's RMS over its window (plus optional uniform noise) fresh, the other
  fitted CTs keeping their last values. So a load step inside a window shows as a partial value,
  a reading holds values up to one round old, and readings come every P/3, as on a board.
  That is `ct_each=True` (tests/test_balancer_props.py). The default, `ct_each=False`, is the
  older model the focused tests were written against: one reading per round P in which CT n
  shows its slice [t - P + (n-1)*P/3, t - P + n*P/3]. No ct_meter posts that way: its period is
  a whole round, so the balancer, which takes a reading's values to span the reading period x
  fitted CTs (ct_meter's way), judges them to span three rounds: a car's change stays "mixed"
  three times as long as on a board, which hid house steps beyond the reaction budget in the
  property tests with other seeds. Readings are ct.reading payloads (t, amps, valid_mask,
  flags).
- The plant steps from event to event (reading, house step, car change, scheduler timer), so an
  hour of firmware time runs in well under a second, and records every change of house and car
  current for the property checks (`segments` and `house_changes` for hil.budget.violations,
  `commands`).

Used by tests/test_balancer*.py and reusable by HIL scenarios and the benchmark.
"""

import random

from actors.balancer import FAULT_CT
from dinamics import messages as m
from dinamics import rapi
from dinamics.mailbox import Actor, Scheduler
from dinamics.settings import Settings
from hil.budget import RELAY_OPEN_MS  # FS: the relay opens when the car stops, <= 3 s
from hil.clock import VirtualClock

_T_REPLY = "reply"  # FakeEvse's timer: the controller's answer is due


class HouseTrace:
    """Piecewise-constant house load per phase (A, EV excluded; negative = export)."""

    def __init__(self, steps=None, start=(0.0, 0.0, 0.0)):
        self.steps = [(0, tuple(float(x) for x in start))]
        for t, v in steps or ():
            self.add(t, v)

    def add(self, t_ms, amps3):
        v = tuple(float(x) for x in amps3)
        steps = self.steps
        i = len(steps)
        while i > 0 and steps[i - 1][0] > t_ms:
            i -= 1
        if i > 0 and steps[i - 1][0] == t_ms:
            steps[i - 1] = (int(t_ms), v)
        else:
            steps.insert(i, (int(t_ms), v))

    def at(self, t_ms):
        v = self.steps[0][1]
        for t, a in self.steps:
            if t <= t_ms:
                v = a
            else:
                break
        return v

    def next_change(self, after_ms):
        for t, _ in self.steps:
            if t > after_ms:
                return t
        return None

    def change_times(self, phase):
        """Times at which `phase` (0..2) changes value."""
        out = []
        prev = None
        for t, a in self.steps:
            if prev is not None and a[phase] != prev[phase]:
                out.append(t)
            prev = a
        return out


class FakeEvse(Actor):
    """rapi_link + controller + car, message level. `log` records (ms, cmd, args) it executed."""

    name = "rapi_link"
    subscribes = (m.RAPI_REQUEST,)
    inbox_size = 64

    def __init__(self, plant, ev=None, reply_ms=40, hw_max=32, enabled="on", link_up=True,
                 ignore=(), pilot=6):
        super().__init__()
        self.plant = plant
        self.ev = ev
        self.reply_ms = reply_ms
        self.hw_max = hw_max
        self.enabled = enabled  # "on" (FE), "sleep" (FS), "off" (FD)
        self.pilot = pilot  # what the controller advertises before the balancer says anything
        self.connected = ev is not None
        self.relay = False
        self.relay_deadline = None  # ms: FS opens the relay by then at the latest
        self.state = None
        self.link_up = link_up
        self.ignore = set(ignore)  # commands silently dropped (never answered): fault injection
        self.queue = []
        self.busy = False
        self.log = []
        self.sent_states = []
        self.plug_posted = None  # last evse.plug posted

    def start(self):
        if self.link_up:
            self.post(m.LINK_STATUS, (True, ""))

    def ms(self):
        return self.plant.clock.ms

    # --- requests ----------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.RAPI_REQUEST:  # (requester, tag, cmd, args), answered to the requester
            if not self.link_up:
                self._answer(payload[:2], None, (), "link down")
                return
            self.queue.append(payload)
            self._pump()
        elif kind == m.TIMER and payload == _T_REPLY:
            self.busy = False
            requester, tag, cmd, args = self.queue.pop(0)
            self._execute((requester, tag), cmd, args)
            self._pump()

    def _pump(self):
        if not self.busy and self.queue:
            self.busy = True
            self.after(self.reply_ms, _T_REPLY)

    def _answer(self, who, ok, fields, text):
        """rapi.reply to the requester alone, as rapi_link does. who: (requester, tag)."""
        if who[0] is not None:
            self.sched.send(who[0], m.RAPI_REPLY, (who[1], ok, fields, text))

    def _reply(self, who, ok, fields):
        text = "$%s %s" % ("OK" if ok else "NK", " ".join(str(f) for f in fields))
        self._answer(who, ok, tuple(str(f) for f in fields), text.strip())

    def _execute(self, who, cmd, args):
        now = self.ms()
        if cmd in self.ignore:
            return
        self.log.append((now, cmd, args))
        if cmd == "SC":
            want = int(args[0])
            a = 6 if want < 6 else (self.hw_max if want > self.hw_max else want)
            self.pilot = a
            self.update()
            self._reply(who, a == want, (a,))
        elif cmd in ("FE", "FS", "FD"):
            new = {"FE": "on", "FS": "sleep", "FD": "off"}[cmd]
            if new != self.enabled:
                self.enabled = new
                if new == "sleep" and self.relay:
                    self.relay_deadline = now + RELAY_OPEN_MS
            self.update()
            self._reply(who, True, ())
        elif cmd == "GG":
            ma = int(round(self.draw(now) * 1000))
            self.post(m.EVSE_CURRENT, (ma, 230000))
            self._reply(who, True, (ma, 230000))
        else:
            self._reply(who, True, ())

    # --- controller state machine ------------------------------------------------------------
    def draw(self, now):
        if self.ev is None or not self.connected or not self.relay:
            return 0.0
        return float(self.ev.draw_amps(now))

    def plug(self, ev=None):
        if ev is not None:
            self.ev = ev
        self.connected = True
        self.ev.connect(self.ms())
        self.update()

    def unplug(self):
        self.connected = False
        self.update()

    def offered(self):
        return self.pilot if self.enabled == "on" else 0

    def update(self):
        """Re-evaluate pilot, relay and state at the plant's current time; report changes."""
        now = self.ms()
        ev = self.ev
        if ev is not None and self.connected:
            ev.set_pilot(now, self.offered())
        if self.enabled == "on":
            if ev is not None and self.connected:
                c = ev.s2_closed(now)
                self.relay = c
                st = rapi.STATE_C if c else rapi.STATE_B
            else:
                self.relay = False
                st = rapi.STATE_A
        else:
            if self.enabled == "off":
                self.relay = False
            elif self.relay:
                if (ev is None or not self.connected or ev.draw_amps(now) <= 1
                        or (self.relay_deadline is not None and now >= self.relay_deadline)):
                    self.relay = False
            st = rapi.STATE_SLEEP if self.enabled == "sleep" else rapi.STATE_DISABLED
        if ev is not None:
            ev.set_relay(now, self.relay)
        vflags = 0x0200
        if self.connected and ev is not None:
            vflags |= rapi.VF_EV_CONNECTED
        if self.relay:
            vflags |= rapi.VF_CHARGING_ON
        report = (st, st if st < 0x10 else 0x02, self.pilot, vflags)
        if report != self.state:
            self.state = report
            self.sent_states.append((now, report))
            self.post(m.EVSE_STATE, report)
            plug = rapi.plug_of(st, vflags)  # evse.plug after evse.state, as rapi_link decides it
            if plug is not None and plug != self.plug_posted:
                self.plug_posted = plug
                self.post(m.EVSE_PLUG, plug)

    def next_event_ms(self, now):
        if self.relay_deadline is not None and self.relay_deadline > now and self.relay:
            return self.relay_deadline
        return None


class Recorder(Actor):
    """Keeps what the balancer publishes."""

    name = "recorder"
    subscribes = (m.BALANCER_TARGET, m.BALANCER_FAULT, m.PHASES, m.LOG)
    inbox_size = 256

    def __init__(self, plant):
        super().__init__()
        self.plant = plant
        self.targets = []
        self.faults = []  # (ms, balancer.fault payload)
        self.ct_faults = []  # the CT ones: (ms, (FAULT_CT, age ms or "ok", text))
        self.phases = []

    def handle(self, kind, payload):
        now = self.plant.clock.ms
        if kind == m.BALANCER_TARGET:
            self.targets.append((now, payload))
        elif kind == m.BALANCER_FAULT:
            self.faults.append((now, payload))
            if payload[0] == FAULT_CT:
                self.ct_faults.append((now, payload))
        elif kind == m.PHASES:
            self.phases.append((now, payload))


class Plant:
    """Scheduler + Balancer + FakeEvse + car + house trace + CT readings, in virtual time.

    settings     dict of setting overrides (e.g. {"dinamics": 1, "cte": 123, "breaker": 25})
    ev           hil.ev_model.EvModel or None (no car plugged in)
    house        HouseTrace (default: no load)
    ct_period_ms a round of three CTs (a board: ct_cycles x 3 x 20 ms ~ 300 ms)
    ct_noise     +/- amps of uniform noise on every CT value (seeded by `seed`)
    ct_each      True: a reading after each fitted CT's window of ct_period_ms / 3, as ct_meter
                 posts; False (default): one reading per ct_period_ms holding every CT
    """

    def __init__(self, settings=None, ev=None, house=None, ct_period_ms=300, ct_noise=0.0,
                 seed=0, reply_ms=40, hw_max=32, evse_enabled="on", balancer_factory=None,
                 start_tick=None, ct_each=False):
        self.clock = VirtualClock() if start_tick is None else VirtualClock(start_tick)
        self.logs = []
        self.sched = Scheduler(self.clock, console=self._console)
        self.settings = Settings()
        for k, v in (settings or {}).items():
            self.settings.apply(k, v)
        self.house = house or HouseTrace()
        self.ct_period_ms = ct_period_ms
        self.ct_noise = ct_noise
        self.rng = random.Random(seed)
        self.ct_on = True
        self.ct_valid = None  # override valid mask (None: every fitted CT valid)
        self.ct_each = ct_each
        self.ct_step_ms = ct_period_ms // 3 if ct_each else ct_period_ms  # between readings
        self._rr = 0  # ct_each: index of the next CT to capture among the fitted ones
        self._held = [None, None, None]  # ct_each: each CT's last value
        self.next_ct = self.ct_step_ms
        self.readings = 0
        self.last_reading_ms = None
        self.trace = []  # (ms, house3, ev3) at every change
        if balancer_factory is None:
            from actors.balancer import Balancer

            balancer_factory = Balancer
        self.balancer = self.sched.add(balancer_factory(self.settings))
        self.recorder = self.sched.add(Recorder(self))
        self.evse = self.sched.add(FakeEvse(self, ev, reply_ms=reply_ms, hw_max=hw_max,
                                            enabled=evse_enabled))
        if ev is not None:
            ev.connect(0)
        self.evse.update()
        self._settle()
        self._record()

    def _console(self, level, text):
        self.logs.append((self.clock.ms, level, text))

    @property
    def ev(self):
        return self.evse.ev

    # --- driving -----------------------------------------------------------------------------
    def set(self, name, value):
        """Change a setting as the settings actor would (apply + setting.changed)."""
        self.settings.apply(name, value)
        self.sched.post(m.SETTING_CHANGED, (name,))
        self._settle()

    def command(self, enable):
        self.sched.post(m.CHARGE_COMMAND, enable)
        self._settle()

    def plug(self, ev=None):
        self.evse.plug(ev)
        self._settle()

    def unplug(self):
        self.evse.unplug()
        self._settle()

    def ev_currents(self, ms):
        ev = self.ev
        if ev is None or not self.evse.connected or not self.evse.relay:
            return (0.0, 0.0, 0.0)
        a = ev.phase_currents(ms)
        return (float(a[0]), float(a[1]), float(a[2]))

    def totals(self, ms):
        h = self.house.at(ms)
        e = self._ev_at(ms)
        return (h[0] + e[0], h[1] + e[1], h[2] + e[2])

    def _window_rms(self, phase, t0, t1):
        """Signed RMS of house + EV current on `phase` over [t0, t1] (piecewise constant)."""
        if t1 <= t0:
            return self.house.at(t1)[phase] + self._ev_at(t1)[phase]
        pts = [t0]
        for t, _v in self.house.steps:
            if t0 < t < t1:
                pts.append(t)
        for t, _h, _e in self.trace:
            if t0 < t < t1:
                pts.append(t)
        pts.sort()
        pts.append(t1)
        acc = 0.0
        sign = 0.0
        for a, b in zip(pts, pts[1:]):
            if b > a:
                v = self.house.at(a)[phase] + self._ev_at(a)[phase]
                acc += v * v * (b - a)
                sign += v * (b - a)
        r = (acc / (t1 - t0)) ** 0.5
        return -r if sign < 0 else r

    def _ev_at(self, ms):
        """EV phase currents at a past time (from the recorded trace)."""
        v = (0.0, 0.0, 0.0)
        for t, _h, e in reversed(self.trace):
            if t <= ms:
                return e
        return v

    def _record(self):
        now = self.clock.ms
        h = self.house.at(now)
        e = self.ev_currents(now)
        if not self.trace or self.trace[-1][1] != h or self.trace[-1][2] != e:
            if self.trace and self.trace[-1][0] == now:
                self.trace[-1] = (now, h, e)
            else:
                self.trace.append((now, h, e))

    def _ct_value(self, i, t0, t1):
        a = self._window_rms(i, t0, t1)
        if self.ct_noise:
            a += self.rng.uniform(-self.ct_noise, self.ct_noise)
        if not self.settings.get("neg_amp") and a < 0:
            a = -a
        return round(a, 3)

    def _reading(self):
        now = self.clock.ms
        p = self.ct_period_ms
        cte = self.settings.get("cte")
        fitted = {0: 0, 1: 1, 2: 2, 3: 4, 12: 3, 13: 5, 23: 6, 123: 7}[cte]
        amps = [0.0, 0.0, 0.0]
        if self.ct_each:
            order = [i for i in range(3) if fitted & (1 << i)] or [0]
            i = order[self._rr % len(order)]
            self._rr = (self._rr + 1) % len(order)
            self._held[i] = self._ct_value(i, now - self.ct_step_ms, now)
            if any(self._held[j] is None for j in order):
                return  # ct_meter posts once every fitted CT has a value
            for j in range(3):
                if fitted & (1 << j):
                    amps[j] = self._held[j]
        else:
            for i in range(3):
                if fitted & (1 << i):
                    amps[i] = self._ct_value(i, now - p + i * p // 3, now - p + (i + 1) * p // 3)
        valid = fitted if self.ct_valid is None else self.ct_valid
        flags = tuple(0 if valid & (1 << i) else 8 for i in range(3))
        self.readings += 1
        self.last_reading_ms = now
        self.sched.post(m.CT_READING, (self.clock.now(), tuple(amps), valid, flags))

    def _settle(self):
        for _ in range(20):
            self.evse.update()
            self.sched.run_once()
            self.evse.update()
            self._record()
            if not self.sched.pending():
                break

    def _next_event(self, end):
        now = self.clock.ms
        best = end
        cands = [self.house.next_change(now), self.evse.next_event_ms(now)]
        if self.ct_on:
            cands.append(self.next_ct)
        if self.ev is not None:
            cands.append(self.ev.next_event_ms(now))
        d = self.sched.next_due_ms(self.clock.now())
        if d is not None:
            cands.append(now + max(d, 1))
        for c in cands:
            if c is not None and now < c < best:
                best = c
        return best

    def run_until(self, end_ms, each=None):
        """Advance to plant time end_ms (ms since the plant started)."""
        while self.clock.ms < end_ms:
            t = self._next_event(end_ms)
            self.clock.advance(t - self.clock.ms)
            self.evse.update()
            self._record()
            if self.ct_on and self.clock.ms >= self.next_ct:
                self.next_ct += self.ct_step_ms
                self._reading()
            self._settle()
            if each is not None:
                each(self)

    def run_for(self, ms, each=None):
        self.run_until(self.clock.ms + ms, each)

    def stop_ct(self):
        self.ct_on = False

    def start_ct(self):
        self.ct_on = True
        self.next_ct = self.clock.ms + self.ct_step_ms

    # --- results -----------------------------------------------------------------------------
    def commands(self, cmd=None):
        """[(ms, cmd, args)] the controller executed (SC/FE/FS/FD/GG)."""
        return [e for e in self.evse.log if cmd is None or e[1] == cmd]

    def sc_values(self):
        return [(t, int(a[0])) for t, c, a in self.evse.log if c == "SC"]

    def charging(self):
        return self.evse.relay and self.ev is not None and self.ev.draw_amps(self.clock.ms) > 0

    def segments(self, t0, t1):
        """(a, b, house3, ev3) pieces of the recorded history clipped to [t0, t1); the last state
        lasts until t1. The same form as hil.tape.Tape.segments, so hil.budget reads either."""
        tr = self.trace
        for i, (t, h, e) in enumerate(tr):
            t2 = tr[i + 1][0] if i + 1 < len(tr) else max(t1, t)
            a = t if t > t0 else t0
            b = t2 if t2 < t1 else t1
            if b > a:
                yield a, b, h, e

    def house_changes(self, t0, t1):
        """Times in [t0, t1) at which the house load changed, per phase: three sorted lists."""
        return tuple([t for t in self.house.change_times(p) if t0 <= t < t1] for p in range(3))
