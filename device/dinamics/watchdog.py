"""Feeds the hardware watchdog from a scheduler timer, so only a running loop keeps the board up."""
from dinamics import messages as m
from dinamics.mailbox import Actor


class WatchdogFeeder(Actor):
    name = "watchdog"
    inbox_size = 2

    def __init__(self, wd, period_ms=1000):
        super().__init__()
        self.wd = wd
        self.period_ms = period_ms

    def start(self):
        self.every(self.period_ms, "feed")

    def handle(self, kind, payload):
        if kind == m.TIMER:
            self.wd.feed()
