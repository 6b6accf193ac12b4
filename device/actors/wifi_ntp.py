"""The wifi actor's clock half: the epoch from SNTP (`ntp_server`) while the station is up.

actors.wifi.Wifi derives from WifiNtp. A round: the request (its DNS lookup blocks a pass, so it
is announced like a scan or a join: the _NTP operation of Wifi._want), then the answer polled
every NTP_POLL_MS for up to NTP_WAIT_MS; again in NTP_RESYNC_MS, or NTP_RETRY_MS without an answer.
"""
from adafruit_ticks import ticks_diff

from dinamics import messages as m
from dinamics.mailbox import Actor

try:
    from micropython import const
except ImportError:  # CPython
    def const(expr):
        return expr

NTP_POLL_MS = const(100)
NTP_WAIT_MS = const(3000)
NTP_RETRY_MS = const(60000)
NTP_RESYNC_MS = const(21600000)  # 6 h
T_NTP = "ntp"  # timer tag
NTP = const(3)  # the blocking operation (Wifi._want), after its scan (1) and join (2)


class WifiNtp(Actor):
    def _ntp_in(self, ms):
        """A new SNTP round in ms."""
        if not self.settings.get("ntp_server"):
            return
        self._ntp_at = None
        self._arm_ntp(ms)

    def _arm_ntp(self, ms):
        if self._t_ntp is None:
            self._t_ntp = self.after(ms, T_NTP)
        else:
            self.rearm(self._t_ntp, ms)

    def _ntp_tick(self):
        if not self.sta_up:
            return
        if self._ntp_at is None:
            if self._op is None:
                self._want(NTP)
            else:
                self._arm_ntp(1000)
            return
        e = self.radio.ntp_recv()
        if e:
            set_epoch = getattr(self.sched.clock, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(e)
            self.stats["ntp"] += 1
            self.log(m.INFO, "clock set from NTP: %d" % e)
            self._ntp_in(NTP_RESYNC_MS)
        elif ticks_diff(self.now(), self._ntp_at) > NTP_WAIT_MS:
            self.log(m.DEBUG, "no NTP answer")
            self._ntp_in(NTP_RETRY_MS)
        else:
            self._arm_ntp(NTP_POLL_MS)

    def _ntp_send(self):
        if not self.sta_up:
            return
        self._block_pass = self.sched.passes
        try:
            self.radio.ntp_send(self.settings.get("ntp_server"))
        except Exception as e:  # noqa: BLE001 - no DNS / no route: later
            self.log(m.DEBUG, "NTP: %s" % e)
            self._ntp_in(NTP_RETRY_MS)
            return
        self._ntp_at = self.now()
        self._arm_ntp(NTP_POLL_MS)
