"""balancer: decides whether the EVSE is enabled and what pilot current it advertises.

Static mode (set_dinamics 0): pilot = c_limit. Enable intent comes from set_enable or, in
plug&charge mode, from a connected car. After link-up or a controller reboot the pilot and enable
state are re-sent (the controller forgets the volatile `$SC … V`).
"""

from dinamics import messages as m
from dinamics import rapi
from dinamics.mailbox import Actor

ENABLE_OFF = 1
ENABLE_ON = 2
ENABLE_SLEEP = 3
_ENABLE_CMD = {ENABLE_OFF: "FD", ENABLE_ON: "FE", ENABLE_SLEEP: "FS"}


class Balancer(Actor):
    name = "balancer"
    subscribes = (m.LINK_STATUS, m.EVSE_STATE, m.EVSE_BOOT, m.CHARGE_COMMAND, m.SETTING_CHANGED,
                  m.RAPI_REPLY)
    inbox_size = 24

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self.reset()

    def reset(self):
        self.link_up = False
        self.state = None
        self.vflags = 0
        self.enable = ENABLE_ON if self.settings.get("plugandcharge") else ENABLE_SLEEP
        self.sent_enable = None
        self.target = None
        self.sent_amps = None

    def handle(self, kind, payload):
        if kind == m.LINK_STATUS:
            self.link_up = payload[0]
            self.sent_amps = None
            self.sent_enable = None
            if self.link_up:
                self._apply()
        elif kind == m.EVSE_BOOT:
            self.sent_amps = None
            self.sent_enable = None
            self._apply()
        elif kind == m.EVSE_STATE:
            self.state = payload[0]
            if payload[3] is not None:
                self.vflags = payload[3]
            # The controller reports the advertised current; a difference means it was changed
            # behind our back (heartbeat fallback, reboot): send ours again.
            if payload[2] is not None and self.sent_amps is not None and payload[2] != self.sent_amps:
                if self.state not in (0, rapi.STATE_DISABLED, rapi.STATE_SLEEP):
                    self.sent_amps = None
            self._apply()
        elif kind == m.CHARGE_COMMAND:
            self.enable = payload
            self._apply()
        elif kind == m.SETTING_CHANGED:
            if payload[0] in ("c_limit", "c_min_limit", "dinamics", "breaker"):
                self._apply()
        elif kind == m.RAPI_REPLY and payload[0] == "balancer" and payload[1] is None:
            self.sent_amps = None  # not acknowledged: try again on the next event

    def compute_target(self):
        return self.settings.get("c_limit")

    def _apply(self):
        if not self.link_up:
            return
        amps = self.compute_target()
        if amps != self.target:
            self.target = amps
            self.post(m.BALANCER_TARGET, (amps, "static"))
        if amps != self.sent_amps:
            self.sent_amps = amps
            self.post(m.RAPI_REQUEST, ("balancer", "SC", (amps, "V")))
        if self.enable != self.sent_enable:
            self.sent_enable = self.enable
            self.post(m.RAPI_REQUEST, ("balancer", _ENABLE_CMD[self.enable], None))
