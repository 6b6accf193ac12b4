"""Every setting, declared once. MQTT topics, the settings/timers JSON, the store, the web UI and
the README's topic reference are all derived from TABLE.

Row: (name, topic, type, lo, hi, default, unit, flags, key)
  topic  MQTT command suffix under Dinamics/<SN>/ ("" = not settable over MQTT)
  type   INT (lo..hi), BOOL (0/1), CHOICE (lo = allowed tuple), STR (hi = max length),
         BITS (hi = exact count of 0/1 digits)
  flags  PERSIST stored in flash; SECRET never published (not even in `wifi`);
         ECHO after a change the value is published on the topic named like the setting
         (seed: `breaker`, `plugandcharge`); NET network/identity: reported in the `wifi` JSON,
         kept by delete_settings (delete_wifi resets the WiFi ones)
  key    short key in the `settings` JSON (the seed's glossary) or ""
Each setting's description lives host-side in tools/settings_help.py (only the docs generator
reads it: on the board they took ~5 KB of heap).
Where each setting is reported: timers (TIMER_NAMES) in `timers`, BITS in `debug`, NET in `wifi`,
everything else in `settings` (see dinamics.mqtt_topics).
"""

INT = 0
BOOL = 1
CHOICE = 2
STR = 3
BITS = 4

PERSIST = 1
SECRET = 2
ECHO = 4
NET = 8

_P = PERSIST
_PS = PERSIST | SECRET
_PE = PERSIST | ECHO
_PN = PERSIST | NET
_PNS = PERSIST | NET | SECRET

# Reserved `setting.set` names (not settings): restore defaults without a reboot.
RESET_SETTINGS = "!defaults"  # delete_settings: everything except NET rows
RESET_WIFI = "!wifi"  # delete_wifi: the WiFi credentials

# Timers are milliseconds. timer1-4 were loop passes and timer13 wait-loop iterations in the seed;
# here they are real milliseconds (defaults converted, see README "Timers").
TABLE = (
    ("breaker", "set_breaker", INT, 6, 100, 16, "A", _PE, "B"),
    ("c_limit", "set_c_limit", INT, 6, 80, 16, "A", _P, "MAXC"),
    ("c_min_limit", "set_c_min_limit", INT, 6, 32, 6, "A", _P, "MINC"),
    ("calibration", "set_calibration", INT, 10, 2000, 277, "", _P, "C"),
    ("plugandcharge", "set_plugandcharge", BOOL, 0, 1, 1, "", _PE, "P&C"),
    ("nwpc", "set_nwpc", BOOL, 0, 1, 0, "", _P, "NWPC"),
    ("neg_amp", "set_neg_amp", BOOL, 0, 1, 0, "", _P, "NA"),
    ("adjust", "set_adjust", BOOL, 0, 1, 1, "", _P, "A"),
    ("autoupdate", "set_autoupdate", BOOL, 0, 1, 1, "", _P, "AU"),
    ("lcd", "set_lcd_enabled", BOOL, 0, 1, 1, "", _P, "LCD"),
    ("TFO", "set_TFO", INT, 1, 1000, 30, "x", _P, "TFO"),
    ("cte", "set_cte", CHOICE, (0, 1, 2, 3, 12, 13, 23, 123), None, 0, "", _P, "CTE"),
    ("dinamics", "set_dinamics", BOOL, 0, 1, 0, "", _P, "DA"),
    ("lora", "set_lora", BOOL, 0, 1, 0, "", _P, "L"),
    ("debug", "set_debug", BITS, 0, 40, "0" * 40, "", _P, ""),
    ("timer", "set_timer", INT, 100, 500000, 2000, "ms", _P, ""),
    ("timer1", "set_timer1", INT, 1000, 500000, 300000, "ms", _P, ""),
    ("timer2", "set_timer2", INT, 1000, 500000, 300000, "ms", _P, ""),
    ("timer3", "set_timer3", INT, 1000, 500000, 60000, "ms", _P, ""),
    ("timer4", "set_timer4", INT, 100, 500000, 1000, "ms", _P, ""),
    ("timer5", "set_timer5", INT, 100, 500000, 200000, "ms", _P, ""),
    ("timer6", "set_timer6", INT, 100, 500000, 30000, "ms", _P, ""),
    ("timer7", "set_timer7", INT, 100, 500000, 30000, "ms", _P, ""),
    ("timer8", "set_timer8", INT, 100, 500000, 200000, "ms", _P, ""),
    ("timer9", "set_timer9", INT, 100, 500000, 120000, "ms", _P, ""),
    ("timer10", "set_timer10", INT, 100, 500000, 5000, "ms", _P, ""),
    ("timer11", "set_timer11", INT, 1000, 500000, 10000, "ms", _P, ""),
    ("timer12", "set_timer12", INT, 1000, 500000, 100000, "ms", _P, ""),
    ("timer13", "set_timer13", INT, 50, 10000, 500, "ms", _P, ""),
    ("timer14", "set_timer14", INT, 1000, 500000, 10000, "ms", _P, ""),
    # Load management beyond the seed.
    ("hb_interval", "set_hb_interval", INT, 0, 60, 5, "s", _P, ""),
    ("hb_amps", "set_hb_amps", INT, 0, 32, 6, "A", _P, ""),
    ("link_silence_ms", "set_link_silence_ms", INT, 1000, 60000, 3000, "ms", _P, ""),
    ("stale_ms", "set_stale_ms", INT, 500, 5000, 3000, "ms", _P, ""),
    ("stale_action", "set_stale_action", CHOICE, (0, 1), None, 0, "", _P, ""),
    ("min_off_ms", "set_min_off_ms", INT, 0, 3600000, 30000, "ms", _P, ""),
    ("min_on_ms", "set_min_on_ms", INT, 0, 3600000, 60000, "ms", _P, ""),
    ("resume_margin", "set_resume_margin", INT, 0, 10, 1, "A", _P, ""),
    ("mains_hz", "set_mains_hz", CHOICE, (50, 60), None, 50, "Hz", _P, ""),
    ("ct_cycles", "set_ct_cycles", INT, 1, 20, 5, "", _P, ""),
    ("solar", "set_solar", BOOL, 0, 1, 0, "", _P, ""),
    ("solar_start", "set_solar_start", INT, 0, 100, 6, "A", _P, ""),
    ("solar_stop_ms", "set_solar_stop_ms", INT, 0, 3600000, 300000, "ms", _P, ""),
    ("ha_discovery", "set_ha_discovery", BOOL, 0, 1, 1, "", _P, ""),
    # Network and identity.
    ("serial", "", STR, 0, 12, "", "", _PN, "SN"),
    ("mqtt_host", "set_mqtt_host", STR, 0, 64, "", "", _PN, ""),
    ("mqtt_port", "set_mqtt_port", INT, 1, 65535, 1883, "", _PN, ""),
    ("mqtt_user", "set_mqtt_user", STR, 0, 64, "", "", _PN, ""),
    ("mqtt_pass", "set_mqtt_pass", STR, 0, 64, "", "", _PNS, ""),
    ("mqtt_tls", "set_mqtt_tls", BOOL, 0, 1, 0, "", _PN, ""),
    ("wifi_ssid", "set_wifi_ssid", STR, 0, 32, "", "", _PN, ""),
    ("wifi_pass", "set_wifi_pass", STR, 0, 64, "", "", _PNS, ""),
    # Web UI (device/actors/web.py, docs/web.md).
    ("web_port", "set_web_port", INT, 0, 65535, 80, "", _PN, ""),
    ("web_pass", "", STR, 0, 63, "", "", _PNS, ""),
    # Unit LCD (actors/lcd.py, docs/lcd.md); `lcd` above switches it on and off.
    ("lcd_size", "set_lcd_size", CHOICE, (1602, 2004), None, 1602, "", _P, ""),
    ("lcd_addr", "set_lcd_addr", CHOICE, (0, 32, 39, 63), None, 0, "", _P, ""),
    ("lcd_backlight_s", "set_lcd_backlight_s", INT, 0, 86400, 600, "s", _P, ""),
    ("lcd_pages", "set_lcd_pages", INT, 0, 15, 15, "", _P, ""),
    ("lcd_text_s", "set_lcd_text_s", INT, 1, 3600, 30, "s", _P, ""),
    # WiFi manager (actors/wifi.py): the service network (empty: none; never a published
    # default password), an open setup AP (installer's choice), the NTP server (empty: no NTP),
    # and whether a join longer than the heartbeat lets the controller fall back (rapi_evse.hold).
    ("wifi_service_ssid", "set_wifi_service_ssid", STR, 0, 32, "", "", _PN, ""),
    ("wifi_service_pass", "set_wifi_service_pass", STR, 0, 64, "", "", _PNS, ""),
    ("wifi_ap_open", "set_wifi_ap_open", BOOL, 0, 1, 0, "", _PN, ""),
    ("ntp_server", "set_ntp_server", STR, 0, 64, "pool.ntp.org", "", _PN, ""),
    ("hold_fallback", "set_hold_fallback", BOOL, 0, 1, 0, "", _P, ""),
    # LoRa-linked installs (docs/lora.md): the radio's key and parameters, slower traffic on radio.
    ("lora_key", "set_lora_key", STR, 0, 64, "", "", _PS, ""),
    ("lora_band", "set_lora_band", CHOICE, (868, 869, 915), None, 868, "", _P, ""),
    ("lora_sf", "set_lora_sf", INT, 7, 12, 7, "", _P, ""),
    ("lora_bw", "set_lora_bw", CHOICE, (125, 250, 500), None, 125, "kHz", _P, ""),
    ("lora_poll_x", "set_lora_poll_x", INT, 1, 20, 4, "x", _P, ""),
    ("lora_hb_s", "set_lora_hb_s", INT, 10, 60, 60, "s", _P, ""),
    ("lora_timeout_ms", "set_lora_timeout_ms", INT, 500, 10000, 1500, "ms", _P, ""),
    # LoRa bridge failsafe (docs/lora.md "Safety"): the bridge cuts the pilot to hb_amps after this
    # long without an authenticated frame from the unit (0: off).
    ("lora_failsafe_s", "set_lora_failsafe_s", INT, 0, 600, 60, "s", _P, ""),
)

NAMES = tuple(row[0] for row in TABLE)
# Fields of a row
NAME, TOPIC, TYPE, LO, HI, DEFAULT, UNIT, FLAGS, KEY = range(9)
TIMER_NAMES = ("timer",) + tuple("timer%d" % i for i in range(1, 15))
WIFI_NAMES = ("wifi_ssid", "wifi_pass")


def row(name):
    return TABLE[NAMES.index(name)]


def by_topic(topic):
    for r in TABLE:
        if r[TOPIC] and r[TOPIC] == topic:
            return r
    return None


def parse(r, raw):
    """Validate a raw payload (str or bytes) for row r. Returns the typed value or raises
    ValueError with a message fit for the error topic. Nothing is wrapped or truncated."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeError:
            raise ValueError("not UTF-8 text")
    t = r[TYPE]
    if t == STR:
        if len(raw) > r[HI]:
            raise ValueError("longer than %d characters" % r[HI])
        for ch in raw:
            if ord(ch) < 32:
                raise ValueError("control characters are not allowed")
        return raw
    s = raw.strip(" \t\r\n")
    if t == BITS:
        if len(s) != r[HI] or s.strip("01"):
            raise ValueError("expected exactly %d digits 0/1" % r[HI])
        return s
    if not s or not (_digits(s) or (s[0] in "+-" and _digits(s[1:]))):
        raise ValueError("expected a whole number")
    v = int(s)
    if t == CHOICE:
        if v not in r[LO]:
            raise ValueError("allowed: " + ",".join(str(x) for x in r[LO]))
        return v
    if v < r[LO] or v > r[HI]:
        raise ValueError("out of range %d-%d" % (r[LO], r[HI]))
    return v


def text_of(raw):
    """A received payload as text for a reply: UTF-8, or with each non-ASCII byte shown as
    U+FFFD when it is not UTF-8. (CircuitPython ignores decode's `errors=` and raises.)"""
    if not isinstance(raw, (bytes, bytearray)):
        return raw if isinstance(raw, str) else str(raw)
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeError:
        return "".join([chr(c) if c < 128 else "\ufffd" for c in raw])


def _digits(s):
    """ASCII digits only (str.isdigit also takes '²' and other scripts' digits on CPython)."""
    if not s or len(s) > 12:
        return False
    for ch in s:
        if not "0" <= ch <= "9":
            return False
    return True


# Cross-field limits (see check_together, and settings_load.repair for stored values;
# docs/balancer.md "Settings rules").
# A poll period is timerN (N = 5..9) times TFO while the slow-down applies: the product must stay
# a sane period and far below adafruit_ticks' limit (ticks_add refuses |delta| >= 2**28 ms).
MAX_POLL_MS = 86400000  # 24 h: the longest timerN x TFO
POLL_TIMERS = ("timer5", "timer6", "timer7", "timer8", "timer9")
LINK_SILENCE_PER_TIMEOUT = 2  # link_silence_ms >= 2 x timer13 (a silence shorter than two reply
#                               timeouts would call the link down while a request still waits)


def _hex_key(text):
    if len(text) % 2 or not 32 <= len(text) <= 64:
        return False
    for ch in text:
        if ch not in "0123456789abcdefABCDEF":
            return False
    return True


def _poll_problem(timer, t, tfo):
    if t * tfo > MAX_POLL_MS:
        return "%s x TFO = %d x %d = %d ms is above the limit %d ms (24 h)" % (
            timer, t, tfo, t * tfo, MAX_POLL_MS)
    return None


def check_together(values, name, value):
    """Cross-field rules, applied before a value is stored. Returns an error text or None.
      c_min_limit <= c_limit
      timerN x TFO <= MAX_POLL_MS for N = 5..9
      link_silence_ms >= 2 x timer13"""
    get = values.get
    if name == "c_min_limit" and value > get("c_limit", 80):
        return "minimum above c_limit (%d)" % get("c_limit")
    if name == "c_limit" and value < get("c_min_limit", 6):
        return "c_limit below the minimum (%d)" % get("c_min_limit")
    if name in POLL_TIMERS:
        return _poll_problem(name, value, get("TFO", 1))
    if name == "TFO":
        for t in POLL_TIMERS:
            problem = _poll_problem(t, get(t, 0), value)
            if problem:
                return problem
    if name == "timer13" and value * LINK_SILENCE_PER_TIMEOUT > get("link_silence_ms", 60000):
        return "2 x timer13 = %d ms is above link_silence_ms (%d ms)" % (
            value * LINK_SILENCE_PER_TIMEOUT, get("link_silence_ms"))
    if name == "lora_key" and value and not _hex_key(value):
        return "expected 32-64 hex digits (a 16-32 byte key), or empty"
    if name == "link_silence_ms" and value < get("timer13", 0) * LINK_SILENCE_PER_TIMEOUT:
        return "link_silence_ms below 2 x timer13 = %d ms" % (
            get("timer13") * LINK_SILENCE_PER_TIMEOUT)
    return None


def defaults():
    return dict((r[NAME], r[DEFAULT]) for r in TABLE)


class Settings:
    """The live values. Only the settings actor writes (via `apply`); other actors read."""

    def __init__(self, stored=None):
        self.values = defaults()
        self.fixes = []  # (name, stored value, used value) from the last load(); the actor logs it
        if stored:
            self.load(stored)

    def load(self, stored):
        """Take values from the store, re-validating each against the table (a newer firmware may
        narrow a range, a file may be hand-made) and then the cross-field rules. Returns and keeps
        in `fixes` the list of (name, stored value, used value) for every stored value that was
        not used as is. Boot-time code: dinamics.settings_load, dropped after (heap)."""
        import sys

        from dinamics import settings_load

        try:
            self.fixes = settings_load.load(self.values, stored)
        finally:
            sys.modules.pop("dinamics.settings_load", None)
            import dinamics

            if hasattr(dinamics, "settings_load"):
                delattr(dinamics, "settings_load")
        return self.fixes

    def get(self, name):
        return self.values[name]

    def apply(self, name, value):
        self.values[name] = value

    def persisted(self):
        out = {}
        for r in TABLE:
            if r[FLAGS] & PERSIST and self.values[r[NAME]] != r[DEFAULT]:
                out[r[NAME]] = self.values[r[NAME]]
        return out
