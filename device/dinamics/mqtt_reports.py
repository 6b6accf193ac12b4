"""The report JSONs (settings, timers, debug, wifi) built from the settings table. Not resident:
the MQTT bridge imports this module when a report is due and drops it once the reports are out
(heap, docs/heap.md). What goes in which report: dinamics.mqtt_topics.group_of."""

import json

from dinamics import settings as st
from dinamics.mqtt_topics import _group, _public


def settings_json(settings, fw):
    """Glossary keys first (FW, B, MAXC, …), then the settings the seed did not have by name."""
    v = settings.values
    parts = ['{"FW":' + json.dumps(fw)]
    for r in st.TABLE:
        if r[st.KEY] and _group(r) == "settings":
            parts.append(json.dumps(r[st.KEY]) + ":" + json.dumps(v[r[st.NAME]]))
    for r in st.TABLE:
        if not r[st.KEY] and _group(r) == "settings" and _public(r):
            parts.append(json.dumps(r[st.NAME]) + ":" + json.dumps(v[r[st.NAME]]))
    return ",".join(parts) + "}"


def timers_json(settings):
    return '{"T":[' + ",".join([str(settings.get(n)) for n in st.TIMER_NAMES]) + "]}"


def debug_json(settings):
    return '{"Debugs":[' + ",".join(settings.get("debug")) + "]}"


def wifi_json(settings, ip, sn):
    """Network report. Secret rows appear only as "<name>_set": 0/1, never their value."""
    parts = ['"SN":' + json.dumps(sn), '"ip":' + json.dumps(ip or "")]
    for r in st.TABLE:
        if _group(r) != "wifi" or r[st.NAME] == "serial":
            continue
        name = r[st.NAME]
        if _public(r):
            parts.append(json.dumps(name) + ":" + json.dumps(settings.get(name)))
        else:
            parts.append(json.dumps(name + "_set") + ":" + ("1" if settings.get(name) else "0"))
    return "{" + ",".join(parts) + "}"


def report_json(name, settings, fw, ip, sn):
    """The JSON of one report topic: settings, timers, debug or wifi."""
    if name == "settings":
        return settings_json(settings, fw)
    if name == "timers":
        return timers_json(settings)
    if name == "debug":
        return debug_json(settings)
    return wifi_json(settings, ip, sn)
