"""A minimal stand-in for the wifi actor (built on another branch), for the web UI's tests and the
demo: it speaks only the agreed messages. At start it opens the "setup AP" (net.up mode "ap");
wifi.scan is answered with the networks it is given (wifi.networks, sent to the requester); a new
wifi_ssid (setting.changed) that names one of them, with its password (or an open one), "joins"
it: net.down, then net.up mode "sta". delete_wifi (wifi_ssid back to "") opens the AP again.
The real actor (board radio, simulated radio in hil/) replaces this at merge."""
from dinamics import messages as m
from dinamics.mailbox import Actor


class WifiStandIn(Actor):
    name = "wifi"
    subscribes = (m.WIFI_SCAN, m.SETTING_CHANGED)
    inbox_size = 8

    def __init__(self, settings, networks=(("HomeNet", -48, False), ("Cafe", -71, True)),
                 passwords=None, ap_ssid="Dinamics-SETUP", ap_password="dinamics-setup"):
        super().__init__()
        self.settings = settings
        self.networks = tuple(networks)
        self.passwords = dict(passwords or {"HomeNet": "homenet-pass"})
        self.ap = ("192.168.4.1", "ap", ap_ssid, ap_password)
        self.mode = None
        self.scans = 0

    def start(self):
        self._ap()

    def _ap(self):
        self.mode = "ap"
        self.post(m.NET_UP, self.ap)

    def handle(self, kind, payload):
        if kind == m.WIFI_SCAN:
            self.scans += 1
            self.sched.send(payload, m.WIFI_NETWORKS, self.networks)
        elif kind == m.SETTING_CHANGED and ("wifi_ssid" in payload or "wifi_pass" in payload):
            ssid = self.settings.get("wifi_ssid")
            known = [n for n in self.networks if n[0] == ssid]
            if ssid and known and (known[0][2] or self.passwords.get(ssid) == self.settings.get("wifi_pass")):
                self.mode = "sta"
                self.post(m.NET_DOWN, "joining " + ssid)
                self.post(m.NET_UP, ("192.168.1.50", "sta", ssid, ""))
            elif not ssid and self.mode != "ap":
                self._ap()
