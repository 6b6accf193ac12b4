"""What the controller was last told by the balancer: the pilot ($SC, volatile) and the enable
command ($FE/$FS/$FD), so that only differences are sent, and everything that makes them due
again: a request not acknowledged, the link coming back, a controller reboot, a pilot changed
behind our back. A volatile $SC above the controller's saved maximum is answered $NK with the
value it set instead: that cap is remembered so it is not a resend loop.

No clock, no I/O: the balancer posts the requests when `pilot_due` / `enable_due` say so.
"""

from dinamics import rapi

_NOT_OURS = (0, rapi.STATE_DISABLED, rapi.STATE_SLEEP)  # the pilot shown is not in use


class EvseSync:
    def __init__(self):
        self.reset()

    def reset(self):
        self.sent_amps = None  # the last pilot sent (None: send again)
        self.sent_enable = None  # the last enable command sent (None: send again)
        self.evse_cap = None  # the controller refused more than this ($NK to a volatile SC)
        self.sc_inflight = False

    def forget(self):
        """The link went down or came up, or a request failed: send both again."""
        self.sent_amps = None
        self.sent_enable = None

    def controller_reset(self):
        """The controller rebooted: it forgot the volatile pilot (and any cap)."""
        self.forget()
        self.evse_cap = None

    def pilot_due(self, amps):
        """True when `amps` must be sent (and counts it as sent, in flight)."""
        if amps == self.sent_amps:
            return False
        self.sent_amps = amps
        self.sc_inflight = True
        return True

    def enable_due(self, want):
        if want == self.sent_enable:
            return False
        self.sent_enable = want
        return True

    def on_reply(self, ok, fields, text):
        """A reply to one of our requests. True when it shows a new cap (evse_cap)."""
        if ok is None or len(fields) == 1:
            self.sc_inflight = False  # SC answers carry one field; failures end anything
        if ok is None:
            if text != "superseded":  # (superseded: a newer SC of ours replaced it)
                self.forget()  # not acknowledged (timeout, link down, queue full)
            return False
        if ok is False and len(fields) == 1:
            # $NK to SC: the controller set `a` instead (a volatile SC cannot exceed the saved max)
            try:
                a = int(fields[0])
            except ValueError:
                return False
            if self.sent_amps is not None and a < self.sent_amps:
                new = self.evse_cap != a
                self.evse_cap = a
                return new
        return False

    def advertised(self, state, amps):
        """The controller reports the pilot it advertises (`$AT`/`$GS`): a difference means it
        was changed behind our back (heartbeat fallback, reboot, local menu): send ours again
        (not while our own SC is in flight; not for a cap it refused above)."""
        if (amps is not None and self.sent_amps is not None and amps != self.sent_amps
                and not self.sc_inflight):
            if state not in _NOT_OURS and amps != self.evse_cap:
                self.sent_amps = None
