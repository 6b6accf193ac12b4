"""Feeds the hardware watchdog from a scheduler timer, so only a running loop keeps the board up.

It is also how the board recovers from an actor that supervision stopped for good: the port's
fatal hook calls starve(): feeding stops, the watchdog resets the board cleanly (reset reason
WATCHDOG) within its timeout, and until then the loop still runs, so the MQTT bridge can publish
`actor.stopped` and the controller's $SY heartbeat holds the car at the safe current. If the
board is still up `grace_ms` later (no watchdog on this build, or it was not armed), `reset()`
(microcontroller.reset on the board) is called as a backstop.
"""
from dinamics import messages as m
from dinamics.mailbox import Actor

_T_FEED = "feed"  # timer tags: feed the watchdog every period_ms
_T_RESET = "reset"  # the backstop: reset the board grace_ms after starving began


class WatchdogFeeder(Actor):
    name = "watchdog"
    inbox_size = 2

    def __init__(self, wd, period_ms=1000, reset=None, grace_ms=3000):
        super().__init__()
        self.wd = wd  # microcontroller.watchdog, or None where there is none
        self.period_ms = period_ms
        self.reset_fn = reset  # callable() that resets the board, or None
        self.grace_ms = grace_ms
        self.feeds = 0
        self.starving = None  # why feeding stopped (an actor name), or None
        self._backstop = None

    def start(self):
        self.every(self.period_ms, _T_FEED)
        if self.starving is not None:
            self._backstop = self.after(self.grace_ms, _T_RESET)

    def reset(self):
        self._backstop = None  # timers are dropped with a crash; starving stays

    def starve(self, why):
        """Stop feeding for good; the board resets (watchdog, or the backstop after grace_ms)."""
        if self.starving is not None:
            return
        self.starving = why
        self.log(m.ERROR_LEVEL, "%s stopped: watchdog no longer fed, the board resets" % why)
        self._backstop = self.after(self.grace_ms, _T_RESET)

    def handle(self, kind, payload):
        if kind != m.TIMER:
            return
        if payload == _T_FEED:
            if self.starving is None and self.wd is not None:
                self.wd.feed()
                self.feeds += 1
        elif payload == _T_RESET:
            self._backstop = None
            if self.reset_fn is not None:
                self.reset_fn()
