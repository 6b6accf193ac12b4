"""The wifi actor's book: which known networks to join and in what order, how long to wait after
failed rounds, the setup AP's password and the small `wifiap` record that outlives a reset.

- Networks, in this order, among those a scan SEES: the stored `wifi_ssid`/`wifi_pass` (web setup
  page, set_wifi_*), settings.toml's CIRCUITPY_WIFI_SSID/PASSWORD, the service network
  (`wifi_service_ssid`/`_pass`, empty by default). The order, not the signal, decides.
- After a failed round the station is tried again in timer11 ms, doubling after each further
  failed round up to 32 x timer11.
- The AP password: DINAMICS_AP_PASSWORD (8..63 characters), else random, made once and kept.
- The `wifiap` record (dinamics/store.py): `pw` the AP password, `try` the network a join is in
  progress with (written before the join, cleared when it returns: found at boot, the join hung),
  `hung` the hangs in a row (cleared by a join that works).

No clock, no radio, no messages: the settings, the port's drive and the actor's log in.
"""
import os

from dinamics import messages as m
from dinamics import mqtt_topics as mt

try:
    from micropython import const
except ImportError:  # CPython
    def const(expr):
        return expr

_BACKOFF_SHIFT = const(5)  # the wait doubles up to 2**5 = 32 x timer11
_PW_CHARS = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off an LCD


class WifiBook:
    def __init__(self, settings, port, log):
        self.settings = settings
        self.port = port
        self.log = log
        env = getattr(port, "wifi_env", None) or (None, None, None)
        # settings.toml values may be whole numbers (a numeric SSID or password): text here
        self.env_ssid, self.env_pass, self.env_ap_pass = [
            "" if v is None else str(v) for v in env]
        self._store = None
        self._rec = None

    def sources(self):
        """The credentials, in order: stored, settings.toml's, the service network's."""
        g = self.settings.get
        return ((g("wifi_ssid"), g("wifi_pass")), (self.env_ssid, self.env_pass),
                (g("wifi_service_ssid"), g("wifi_service_pass")))

    def after_forget(self, on):
        """What forgetting the stored network (delete_wifi, wifi_ssid "") does to a station on
        network `on` ("" if none): (whether it leaves `on`, which no other source names, the
        networks then tried in order, as with none stored; none in sight: the setup AP)."""
        nxt = [c[0] for c in self.sources()[1:] if c[0]]
        return bool(on) and on not in nxt, nxt

    def candidates(self, nets):
        """The known networks the scan saw, in credential order (never by signal); each with
        the channel of its strongest access point, for a fast join."""
        out = []
        for ssid, pw in self.sources():
            if not ssid:
                continue
            for c in out:
                if c[0] == ssid:
                    break
            else:
                for n in nets:  # strongest first
                    if n[0] == ssid:
                        out.append((ssid, pw, n[2]))
                        break
        return out

    def adoptable(self, radio):
        """The radio joined before code.py ran (CircuitPython's own settings.toml join): keep it
        unless the stored network is another one."""
        want = self.settings.get("wifi_ssid")
        return not want or want == radio.ssid()

    def backoff_ms(self, failures):
        """The wait after `failures` failed rounds in a row: timer11, doubling, up to 32 x."""
        n = failures - 1 if failures > 0 else 0
        return self.settings.get("timer11") * (1 << (n if n < _BACKOFF_SHIFT else _BACKOFF_SHIFT))

    def ap_password(self):
        if self.env_ap_pass and 8 <= len(self.env_ap_pass) <= 63:
            return self.env_ap_pass
        rec = self.record()
        pw = rec.get("pw", "")
        if len(pw) < 8:
            b = os.urandom(10)
            pw = "".join(_PW_CHARS[x % len(_PW_CHARS)] for x in b)
            rec["pw"] = pw
            self.save()
        return pw

    # --- the record: AP password, join in progress, hangs --------------------------------------
    def record(self):
        if self._rec is None:
            self._rec = {}
            try:
                from dinamics.store import SlotStore

                self._store = SlotStore(self.port.fs, "wifiap")
                self._rec = self._store.load() or {}
            except Exception as e:  # noqa: BLE001
                self.log(m.WARNING, "wifi record unreadable: %s" % e)
        return self._rec

    def save(self):
        if self._store is None:
            return
        try:
            self._store.save(self._rec)
        except Exception as e:  # noqa: BLE001 - a read-only drive: a new AP password each boot
            self.log(m.WARNING, "wifi record not stored: %s" % e)

    def mark(self, ssid):
        """The join in progress (ssid), or none (""): written before connect(), cleared after."""
        rec = self.record()
        if rec.get("try", "") != ssid:
            rec["try"] = ssid
            self.save()

    def hung(self):
        """At boot: the network whose join never returned ("" if none), counted as one more hang
        in a row (`record()["hung"]`)."""
        rec = self.record()
        tried = rec.get("try", "")
        if tried:
            rec["hung"] = rec.get("hung", 0) + 1
            rec["try"] = ""
            self.save()
        return tried

    def joined(self):
        """A join worked: the hangs start over."""
        rec = self.record()
        if rec.get("hung"):
            rec["hung"] = 0
            self.save()


def ap_name(settings, mac):
    """The setup AP's name: Dinamics-<SN>."""
    return "Dinamics-" + mt.serial_number(settings, mac)
