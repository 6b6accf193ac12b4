"""The wifi actor's setup-AP half: the access point `Dinamics-<SN>` a unit opens when it knows no
network in sight (or every join failed), and the web actor's hook that keeps it steady while a
client is mid-request.

actors.wifi.Wifi derives from WifiAp (a mixin: same state, same messages). The AP is WPA2 with
the unit's own password (dinamics/wifi_book.py: DINAMICS_AP_PASSWORD, else random and kept in the
`wifiap` record; open if `wifi_ap_open`), announced by net.up (ip, "ap", ssid, password) and on
the console, never on the log ring MQTT publishes. It stays up while the station is tried,
lingers AP_LINGER_MS after a join (long enough for the setup page to show the new IP), and is
never restarted or dropped while the web actor says a client is mid-request (web.busy ->
client_busy(ms), at most BUSY_MAX_MS in a row).
"""
from adafruit_ticks import ticks_add, ticks_diff

from dinamics import messages as m
from dinamics import mqtt_topics as mt
from dinamics.mailbox import Actor
from dinamics.wifi_book import ap_name

try:
    from micropython import const
except ImportError:  # CPython
    def const(expr):
        return expr

AP_LINGER_MS = const(60000)  # the AP after a join: long enough for the setup page to show the IP
BUSY_MAX_MS = const(120000)  # a client never holds off the station longer than this in a row
AP_IP = "192.168.4.1"
T_LINGER = "linger"  # timer tag


class WifiAp(Actor):
    def _name_ap(self):
        """The unit's serial and the AP's name, which follows it."""
        self.sn = mt.serial_number(self.settings, self.radio.mac)
        self.ap_ssid = ap_name(self.settings, self.radio.mac)

    def client_busy(self, ms):
        """The web actor (web.busy, at most once a second while requests come): a client is
        mid-request for up to `ms` more. Meanwhile the station is not scanned or joined (AP
        clients lose frames then) and the AP is not restarted or dropped; at most BUSY_MAX_MS in
        a row, so a client that never leaves cannot keep the unit off its network. New
        credentials (the setup page's join) are tried at once all the same: the client asked."""
        now = self.now()
        if self._busy_since is None:
            self._busy_since = now
        self._busy_until = ticks_add(now, ms)

    def _busy(self):
        if self._busy_until is None:
            return False
        now = self.now()
        if ticks_diff(self._busy_until, now) <= 0:
            self._busy_until = self._busy_since = None
            return False
        return ticks_diff(now, self._busy_since) < BUSY_MAX_MS

    def _start_ap(self):
        pw = "" if self.settings.get("wifi_ap_open") else self.book.ap_password()
        try:
            self.radio.start_ap(self.ap_ssid, pw)
        except Exception as e:  # noqa: BLE001 - the station keeps being tried
            self.log(m.ERROR_LEVEL, "setup AP failed: %s" % e)
            return
        self.ap_on = True
        self.ap_pass = pw
        self.stats["aps"] += 1
        self._announce_ap()

    def _announce_ap(self):
        """net.up (ip, "ap", ssid, password): at the AP's start, and when the station goes down
        while it is on. The password goes to the serial console and the LCD (net.up), never to
        the log ring that MQTT's debug_log publishes."""
        ip = self.radio.ap_ip() or AP_IP
        pw = self.ap_pass
        self.port.console(m.WARNING, "wifi: setup AP %s at http://%s/ %s" % (
            self.ap_ssid, ip, ("password " + pw) if pw else "OPEN (wifi_ap_open=1)"))
        self.post(m.NET_UP, (ip, "ap", self.ap_ssid, pw))

    def _stop_ap(self):
        try:
            self.radio.stop_ap()
        except Exception as e:  # noqa: BLE001
            self.log(m.WARNING, "stopping the AP: %s" % e)
        self.ap_on = False
        self.log(m.INFO, "setup AP closed")

    def _linger(self):
        """A join: the AP, if on, closes AP_LINGER_MS later."""
        if self.ap_on:
            self.cancel(self._t_linger)
            self._t_linger = self.after(AP_LINGER_MS, T_LINGER)

    def _lingered(self):
        self._t_linger = None
        if self.ap_on and self.sta_up:
            if self._busy():
                self._t_linger = self.after(5000, T_LINGER)
            else:
                self._stop_ap()
