"""Whether charging is wanted (the enable intent) and the auto-stops of timers 1-3.

- set_enable (charge.command 1 off / 2 on / 3 sleep) is obeyed in every mode and holds for the
  plug session (`command`).
- Plug&charge (the setting, or no-WAN P&C while the broker is down: the caller says which is in
  effect) enables a car that plugs in (`plugged_in`, `auto_enable`) unless set_enable said
  otherwise this session; an automatic enable ends with the car's session once P&C is off again.
- Auto-stops (`auto_stop`): STOP_LOW_DRAW (timer1) the car draws < DRAW_LOW_A this long (P&C off),
  STOP_NO_CAR (timer2) no car connected this long (P&C off), STOP_OVER_DRAW (timer3) the car draws
  more than allowed + OVER_DRAW_A this long (any mode). After a cut the old value counts as
  allowed for SETTLE_MS while the car follows (`cut`). A stop makes the intent SLEEP until
  set_enable 2 or (P&C) the next plug-in.
Ticks in, no clock, no I/O; a balancer pause is not an intent (dinamics.pause).
"""

from adafruit_ticks import ticks_add, ticks_diff

from dinamics import headroom as hr

OFF = 1
ON = 2
SLEEP = 3

R_OFF = "off"  # balancer.target reasons while charging is not wanted
R_SLEEP = "sleep"
R_STOPPED = "stopped"  # by an auto-stop

STOP_LOW_DRAW = "timer1"  # the tags are the settings' names (and balancer.fault details)
STOP_NO_CAR = "timer2"
STOP_OVER_DRAW = "timer3"


class ChargeIntent:
    def __init__(self, plug_and_charge=False, cmd=0):
        self.reset(plug_and_charge, cmd)

    def reset(self, plug_and_charge, cmd):
        self.intent = ON if plug_and_charge else SLEEP
        self.user_cmd = False  # a set_enable arrived during this plug session
        self.auto_on = bool(plug_and_charge)  # intent ON set by (no-WAN) plug&charge
        self.stop_reason = None  # why an auto-stop stopped the charge (None: not stopped)
        self.hi_amps = cmd  # timer3: a cut's old value is "allowed" ...
        self.hi_until = None  # ... until this tick
        self.t1_since = None
        self.t2_since = None
        self.t3_since = None

    def wanted(self):
        return self.intent == ON

    def off_reason(self):
        """Why charging is not wanted (balancer.target's reason)."""
        if self.stop_reason:
            return R_STOPPED
        return R_OFF if self.intent == OFF else R_SLEEP

    def _clear_timers(self):
        self.t1_since = self.t2_since = self.t3_since = None

    # --- intent ------------------------------------------------------------------------------
    def command(self, enable):
        """set_enable. True when charging became wanted (it was not)."""
        was = self.intent
        self.intent = enable
        self.user_cmd = True
        self.auto_on = False
        self.stop_reason = None
        self._clear_timers()
        return enable == ON and was != ON

    def _auto_on(self):
        self.intent = ON
        self.auto_on = True
        self.stop_reason = None

    def auto_enable(self, connected):
        """Plug&charge came into effect: a connected car charges unless set_enable said otherwise
        this session. True when charging became wanted."""
        if connected and not self.user_cmd and self.intent != ON:
            self._auto_on()
            return True
        return False

    def plugged_in(self, pc):
        """A car connected (`pc`: plug&charge in effect). True when charging is wanted."""
        self.user_cmd = False
        self.t2_since = None
        if pc and self.intent != ON:
            self._auto_on()
        return self.intent == ON

    def unplugged(self, pc):
        self.user_cmd = False
        if self.auto_on and not pc and self.intent == ON:
            # an automatic enable ends with the car's session once plug&charge is off again
            # (no-WAN plug&charge after the broker came back)
            self.intent = SLEEP
            self.auto_on = False

    # --- auto-stops --------------------------------------------------------------------------
    def cut(self, now, old):
        """The command was cut from `old`: it still counts as allowed while the car follows."""
        if self.hi_until is None or ticks_diff(now, self.hi_until) >= 0 or old > self.hi_amps:
            self.hi_amps = old
        self.hi_until = ticks_add(now, hr.SETTLE_MS)

    def allowed(self, now, cmd):
        """What the car may draw now without counting for timer3."""
        if self.hi_until is not None and ticks_diff(now, self.hi_until) < 0 and self.hi_amps > cmd:
            return self.hi_amps
        return cmd

    def auto_stop(self, now, running, pc, connected, told_on, charging, draw, cmd, timers_ms):
        """Check the auto-stops. running: not paused and the link is up; pc: plug&charge in
        effect; connected: True / False / None unknown; told_on: the controller was told FE;
        charging: state C; draw: the car's current (None unknown); timers_ms: (timer1, timer2,
        timer3). Returns the tag of the timer that stopped the charge (stop_reason says why), or
        None."""
        on = self.intent == ON and running
        # timer1: car draws < 0.5 A this long (P&C off)
        if (not pc and on and connected and told_on and draw is not None
                and draw < hr.DRAW_LOW_A):
            if self.t1_since is None:
                self.t1_since = now
            elif ticks_diff(now, self.t1_since) >= timers_ms[0]:
                self.stop("car draws < 0.5 A")
                return STOP_LOW_DRAW
        else:
            self.t1_since = None
        # timer2: no car connected this long (P&C off)
        if not pc and on and connected is False:
            if self.t2_since is None:
                self.t2_since = now
            elif ticks_diff(now, self.t2_since) >= timers_ms[1]:
                self.stop("no car connected")
                return STOP_NO_CAR
        else:
            self.t2_since = None
        # timer3: car draws more than allowed + 0.5 A this long
        allowed = self.allowed(now, cmd)
        if on and charging and draw is not None and draw > allowed + hr.OVER_DRAW_A:
            if self.t3_since is None:
                self.t3_since = now
            elif ticks_diff(now, self.t3_since) >= timers_ms[2]:
                self.stop("car draws more than allowed (%.1f A > %d A)" % (draw, allowed))
                return STOP_OVER_DRAW
        else:
            self.t3_since = None
        return None

    def stop(self, why):
        """Auto-stop: the intent becomes sleep until set_enable 2 or (P&C) the next plug-in."""
        self.intent = SLEEP
        self.stop_reason = why
        self._clear_timers()
