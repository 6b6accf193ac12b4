"""The web actor's reporting half: what the JSON API shows (docs/web.md), built from what the
actor heard, named as the MQTT topics are.

actors.web.Web derives from WebStatus: status() for /api/status, wifi_status() for /api/wifi and
the session, settings_rows() for /api/settings (the settings table; secrets show as "set"/"not
set", never their value), system() for /api/system.
"""

from adafruit_ticks import ticks_diff

from dinamics import settings as st
from dinamics.mailbox import Actor
from dinamics.version import VERSION

# Settings shown on the charging page; everything else with a topic is an installer setting
# (WiFi credentials on the WiFi page; web_pass only through the password form).
CHARGING = ("c_limit", "c_min_limit", "plugandcharge", "nwpc", "solar", "solar_start",
            "solar_stop_ms", "dinamics", "adjust")
_HIDDEN = ("web_pass",)
_TYPES = ("int", "bool", "choice", "str", "bits")
_STATE_NAMES = {0: "unknown", 1: "not connected", 2: "connected", 3: "charging", 4: "vent required",
                5: "diode check failed", 6: "GFCI fault", 7: "bad ground", 8: "stuck relay",
                9: "GFI self-test failed", 10: "over temperature", 11: "over current",
                254: "sleeping", 255: "disabled"}


class WebStatus(Actor):
    def _shown(self, name):
        r = st.row(name)
        v = self.settings.get(name)
        if r[st.FLAGS] & st.SECRET:
            return "set" if v else "not set"
        return v

    def status(self):
        """The dashboard's data, named as the MQTT topics are (docs/web.md)."""
        out = {"fwversion": VERSION, "breaker": self.settings.get("breaker"),
               "c_limit": self.settings.get("c_limit"), "cte": self.settings.get("cte")}
        ct = self.ct
        if ct is not None:
            for i in range(3):
                out["current%d" % (i + 1)] = round(ct[1][i], 2) if ct[2] & (1 << i) else None
        nph = self.phases[1] if self.phases is not None and self.phases[1] > 0 else 1
        if self.current is not None:
            ma = max(self.current[0], 0)
            mv = self.current[1] if self.current[1] and self.current[1] > 0 else 230000
            out["charging_current"] = round(ma / 1000, 2)
            out["power"] = ma * mv * nph // 1000000
        if self.energy is not None:
            out["energy"] = self.energy[0] // 3600 * nph
        if self.evse is not None:
            out["evse_state"] = _STATE_NAMES.get(self.evse[0], str(self.evse[0]))
            out["pilot"] = self.evse[1]
        if self.pilot is not None:
            out["pilot"] = self.pilot
        if self.target is not None:
            out["max_charging_current"] = 0 if self.target[0] == 0 else (
                self.pilot if self.pilot is not None else self.target[0])
            out["target_reason"] = self.target[1]
        out["state"] = self.plug
        out["connection"] = self.link
        if self.phases is not None:
            out["active_phases"], out["no_of_phases"] = self.phases
        out["broker"] = ("connected" if self.broker else "down") if self.settings.get("mqtt_host") else "none"
        out["wifi"] = self.wifi_status()
        a = self.lora_air
        if self.settings.get("lora"):  # the airtime ledger, named as the MQTT `lora` topic
            out["lora"] = None if a is None else {
                "airtime_ms": a[0], "budget_ms": a[1], "window_s": a[2] // 1000, "frames": a[3],
                "refused": a[4], "rssi": a[5]}
        if self.lcd is not None:  # the unit LCD's lines, as shown
            cols, text = self.lcd
            out["lcd"] = [text[i:i + cols].decode() for i in range(0, len(text), cols)]
        return out

    def wifi_status(self):
        n = self.net
        if n is None:
            return {"mode": "down", "ssid": self.settings.get("wifi_ssid"), "ip": self.port.ip()}
        return {"mode": n[1], "ssid": n[2], "ip": n[0]}

    def forget_plan(self):
        """What Forget (delete_wifi) will do, for the WiFi page to say before it is clicked: the
        network the station is on, whether it leaves it, the networks then tried in order, and
        the setup AP opened when none of them is in sight (dinamics/wifi_book.py decides)."""
        from dinamics.wifi_book import WifiBook, ap_name

        n = self.net
        on = n[2] if n is not None and n[1] == "sta" else ""
        leave, nxt = WifiBook(self.settings, self.port, None).after_forget(on)
        return {"on": on, "leave": leave, "next": nxt,
                "ap": ap_name(self.settings, getattr(self.port, "mac", b"\x00" * 6))}

    def settings_rows(self):
        rows = []
        for r in st.TABLE:
            name = r[st.NAME]
            if name in _HIDDEN:
                continue
            group = "charging" if name in CHARGING else (
                "wifi" if name in st.WIFI_NAMES else "installer")
            t = r[st.TYPE]
            rows.append({"name": name, "topic": r[st.TOPIC], "type": _TYPES[t],
                         "min": None if t == st.CHOICE else r[st.LO],
                         "max": r[st.HI], "choices": list(r[st.LO]) if t == st.CHOICE else None,
                         "unit": r[st.UNIT], "group": group, "secret": bool(r[st.FLAGS] & st.SECRET),
                         "value": self._shown(name)})
        return rows

    def system(self):
        mem = getattr(self.port, "mem_free", None)
        out = {"fwversion": VERSION, "uptime_s": ticks_diff(self.now(), self.started_ms) // 1000,
               "free_heap": mem() if mem else None, "worst_pass_ms": self.sched.worst_pass_ms,
               "last_pass_ms": self.sched.last_pass_ms, "web": dict(self.stats)}
        if self.guard is not None:
            out["web"].update(self.guard.stats)
        out["actors"] = [[a.name, a.crashes, a.lost] for a in self.sched.actors]
        return out
