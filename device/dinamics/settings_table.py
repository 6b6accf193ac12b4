"""Every setting, declared once. MQTT topics, the settings/timers JSON, the store, the web UI and
the README's topic reference are all derived from TABLE (read through dinamics.settings).

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
On a board this module is read once, by dinamics.settings at import, and dropped after: the
rows are kept packed there (docs/heap.md: a row tuple and its topic string were ~80 B each).
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


def columns():
    """TABLE as dinamics.settings keeps it (its _Rows): names, lo, hi, default, key as tuples;
    units (the distinct units); type, flags and the unit's index as three bytes per row; and the
    topics that are not "set_" + name, by name."""
    units = []
    meta = bytearray()
    odd = {}
    for name, topic, typ, lo, hi, default, unit, flags, key in TABLE:
        if unit not in units:
            units.append(unit)
        meta.append(typ)
        meta.append(flags)
        meta.append(units.index(unit))
        if topic != "set_" + name:
            odd[name] = topic
    return (tuple(r[0] for r in TABLE), tuple(r[3] for r in TABLE), tuple(r[4] for r in TABLE),
            tuple(r[5] for r in TABLE), tuple(r[8] for r in TABLE), tuple(units), bytes(meta), odd)
