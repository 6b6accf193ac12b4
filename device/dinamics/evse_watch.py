"""What the unit asked the controller for, against what the controller shows it does.

A safety command is done only when its effect is seen: the pilot in the `$SC` reply, `$GC` or an
`$AT`; the enable state (FE/FS/FD) in the next `$AT`/`$GS`. The link asks this object, after
every report, whether something must be sent again. Corrections of one discrepancy are bounded:
after CORRECTIONS tries the watch says "give up" once, so the link reports it instead of
hammering a controller that will not follow. No clock, no I/O.
"""

from dinamics import rapi

CORRECTIONS = 3
GIVE_UP = "give up"
_VF_LIMIT_SLEEP = 0x0004  # asleep on its own time/charge limit
_VF_TIMER_ON = 0x1000  # delay timer: sleeps on its own schedule
_MODE_STATE = {"FS": rapi.STATE_SLEEP, "FD": rapi.STATE_DISABLED}


class EvseWatch:
    def __init__(self):
        self.reset()

    def reset(self):
        self.pilot_want = None  # the gated amps of the last $SC asked for
        self.pilot_cap = None  # the controller's ceiling when it accepted less
        self.pilot_now = None  # what the controller advertises now
        self.mode_want = None  # FE/FS/FD: the last enable command the controller ran
        self._fixes = [0, 0]  # corrections of the current pilot / mode discrepancy

    # --- pilot ---------------------------------------------------------------------------------
    def pilot_seen(self, amps):
        """A report of the advertised pilot. True when it changed."""
        if amps == self.pilot_now:
            return False
        self.pilot_now = amps
        return True

    def sc_answered(self, want, amps):
        """The `$SC want` reply carried `amps`. True when done; False: send it again (the
        controller kept a higher pilot)."""
        self.pilot_cap = amps if amps < want else None
        return amps <= want

    def pilot_target(self):
        want = self.pilot_want
        cap = self.pilot_cap
        return cap if want is not None and cap is not None and cap < want else want

    def pilot_fix(self):
        """None: nothing to do; True: send the pilot again; GIVE_UP: report, stop trying."""
        want = self.pilot_target()
        if want is None or self.pilot_now == want:
            self._fixes[0] = 0
            return None
        return self._count(0)

    # --- enable state --------------------------------------------------------------------------
    def mode_ran(self, cmd):
        self.mode_want = cmd
        self._fixes[1] = 0

    def mode_fix(self, state, vflags):
        """None, the command to send again, or GIVE_UP."""
        w = self.mode_want
        if w is None or state == 0 or rapi.is_fault(state):
            return None
        if w == "FE":
            bad = state in (rapi.STATE_SLEEP, rapi.STATE_DISABLED)
            if bad and vflags is not None and vflags & (_VF_LIMIT_SLEEP | _VF_TIMER_ON):
                bad = False  # asleep on its own limit or timer: not ours to undo
        else:
            bad = state != _MODE_STATE[w]
        if not bad:
            self._fixes[1] = 0
            return None
        r = self._count(1)
        return w if r is True else r

    def _count(self, i):
        n = self._fixes[i] + 1
        self._fixes[i] = n
        if n <= CORRECTIONS:
            return True
        return GIVE_UP if n == CORRECTIONS + 1 else None
