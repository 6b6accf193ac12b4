"""A car behind the J1772 pilot, for the OpenEVSE emulator (host only, deterministic).

The emulator tells the car what the pilot offers (`set_pilot`: amps of PWM, 0 for a steady
+12 V / -12 V pilot) and whether the EVSE relay is closed (`set_relay`). The car answers with the
state its S2 switch shows on the pilot (`s2_closed`: True = state C) and the current it draws.

Behaviour:
* a car that `wants_charge` closes S2 (B -> C) as soon as the pilot offers current;
* after a pilot change the draw moves to min(offered, max_amps) only `response_s` later (cars are
  slow to follow the pilot); when the offer goes away the car keeps drawing for `response_s`, then
  opens S2 (C -> B);
* nothing flows while the relay is open or S2 is open;
* `ignore_pilot` makes a misbehaving car: S2 closed whenever it wants charge, max_amps drawn
  whenever the relay is closed, whatever the pilot says.

Time is an int millisecond value passed in by the caller; nothing here reads a clock."""


class EvModel:
    def __init__(self, max_amps: float = 32, phases=1, phase=1, response_s=5.0,
                 wants_charge=True, ignore_pilot=False):
        if phases not in (1, 3):
            raise ValueError("phases must be 1 or 3")
        if phase not in (1, 2, 3):
            raise ValueError("phase must be 1, 2 or 3")
        self.max_amps = max_amps
        self.phases = phases
        self.phase = phase
        self.response_s = response_s
        self.wants_charge = wants_charge
        self.ignore_pilot = ignore_pilot
        self.connect(0)

    # -- driven by the EVSE ------------------------------------------------------------------
    def connect(self, now_ms):
        """Called by the emulator at plug-in: no pilot offer yet, relay open."""
        self._offers: list = [(None, 0)]   # (since_ms, offered amps); None = forever
        self._relay = False

    def set_pilot(self, now_ms, amps):
        """The pilot now offers `amps` (PWM), or 0 for no PWM (+12 V or -12 V steady)."""
        amps = amps or 0
        if amps == self._offers[-1][1]:
            return
        self._offers.append((int(now_ms), amps))
        self._prune(int(now_ms))

    def set_relay(self, now_ms, closed):
        self._relay = bool(closed)

    # -- what the car does --------------------------------------------------------------------
    @property
    def response_ms(self):
        return int(round(self.response_s * 1000))

    @property
    def relay_closed(self):
        return self._relay

    def offered_amps(self, at_ms):
        """What the pilot offered at time `at_ms` (0 = no PWM)."""
        value = 0
        for since, amps in self._offers:
            if since is None or since <= at_ms:
                value = amps
            else:
                break
        return value

    def target_amps(self, now_ms):
        """What the car would draw now with the relay closed and S2 closed."""
        if self.ignore_pilot:
            return self.max_amps
        return min(self.offered_amps(now_ms - self.response_ms), self.max_amps)

    def s2_closed(self, now_ms):
        """True when the car presents state C (6 V) on the pilot."""
        if not self.wants_charge:
            return False
        if self.ignore_pilot:
            return True
        return (self.offered_amps(now_ms) > 0
                or self.offered_amps(now_ms - self.response_ms) > 0)

    def draw_amps(self, now_ms):
        """Current per phase the car draws now (0 when the relay or S2 is open)."""
        if not self._relay or not self.s2_closed(now_ms):
            return 0
        return max(0, self.target_amps(now_ms))

    def phase_currents(self, now_ms):
        """(l1, l2, l3) in amps on the house phases."""
        a = self.draw_amps(now_ms)
        if self.phases == 3:
            return (a, a, a)
        out: list = [0, 0, 0]
        out[self.phase - 1] = a
        return tuple(out)

    def next_event_ms(self, after_ms):
        """Earliest time > after_ms at which the draw or S2 may change by itself (None if none)."""
        if self.ignore_pilot:
            return None
        best = None
        resp = self.response_ms
        for since, _amps in self._offers:
            if since is None:
                continue
            for t in (since, since + resp):
                if t > after_ms and (best is None or t < best):
                    best = t
        return best

    # -- internals -----------------------------------------------------------------------------
    def _prune(self, now_ms):
        horizon = now_ms - self.response_ms - 1
        i = 0
        while (len(self._offers) - i > 1 and self._offers[i + 1][0] is not None
               and self._offers[i + 1][0] <= horizon):
            i += 1
        if i:
            del self._offers[:i]
            # Everything we will still be asked about is after this point: "since forever".
            self._offers[0] = (None, self._offers[0][1])

    def __repr__(self):
        return ("EvModel(max_amps=%r, phases=%r, phase=%r, response_s=%r, wants_charge=%r, "
                "ignore_pilot=%r)" % (self.max_amps, self.phases, self.phase, self.response_s,
                                      self.wants_charge, self.ignore_pilot))
