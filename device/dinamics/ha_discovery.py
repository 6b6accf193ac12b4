"""Home Assistant MQTT discovery: retained config messages under homeassistant/… that make the unit
appear in HA with its sensors, a number for the current limit and a select for enable.
Availability comes from the bridge's last will (Dinamics/<SN>/availability online/offline).
Switched by the `ha_discovery` setting; turning it off publishes empty retained configs, which
removes the entities. Payloads use HA's documented abbreviations (stat_t, uniq_id, …) to stay
small; one config is built at a time (the bridge sends them one per pass)."""

import json

from dinamics import settings as st

PREFIX = "homeassistant"

# (component, object id, name, state topic, unit, device_class, state_class, extra JSON or "")
_ENUM_STATE = '"val_tpl":"{{ {\'0\':\'not connected\',\'1\':\'connected\'}.get(value, \'unknown\') }}",' \
    '"ops":["not connected","connected","unknown"]'
_ENABLE = '"ops":["off","on","sleep"],' \
    '"val_tpl":"{{ {\'1\':\'off\',\'2\':\'on\',\'3\':\'sleep\'}.get(value, \'off\') }}",' \
    '"cmd_tpl":"{{ {\'off\':1,\'on\':2,\'sleep\':3}[value] }}","cmd_t":"~/set_enable"'

ENTITIES = (
    ("sensor", "current1", "CT 1 current", "current1", "A", "current", "measurement", ""),
    ("sensor", "current2", "CT 2 current", "current2", "A", "current", "measurement", ""),
    ("sensor", "current3", "CT 3 current", "current3", "A", "current", "measurement", ""),
    ("sensor", "charging_current", "Charging current", "charging_current", "A", "current", "measurement", ""),
    ("sensor", "max_charging_current", "Allowed charging current", "max_charging_current", "A", "current", "measurement", ""),
    ("sensor", "power", "Charging power", "power", "W", "power", "measurement", ""),
    ("sensor", "energy", "Session energy", "energy", "Wh", "energy", "total_increasing", ""),
    ("sensor", "state", "Vehicle", "state", "", "enum", "", _ENUM_STATE),
    ("sensor", "connection", "EVSE link", "connection", "", "", "", '"ent_cat":"diagnostic"'),
    ("number", "c_limit", "Current limit", "settings", "A", "current", "", None),
    ("select", "enable", "Charging", "enable", "", "", "", _ENABLE),
)


def topic(sn, i):
    e = ENTITIES[i]
    return "%s/%s/dinamics_%s/%s/config" % (PREFIX, e[0], sn, e[1])


def config(sn, base, fw, i):
    """Config payload (str) of entity i. base = the unit's topic prefix without the trailing /."""
    comp, obj, name, stat, unit, dev_cla, stat_cla, extra = ENTITIES[i]
    p = ['"~":' + json.dumps(base), '"name":' + json.dumps(name),
         '"uniq_id":"dinamics_%s_%s"' % (sn, obj), '"stat_t":"~/%s"' % stat,
         '"avty_t":"~/availability"']
    if unit:
        p.append('"unit_of_meas":"%s"' % unit)
    if dev_cla:
        p.append('"dev_cla":"%s"' % dev_cla)
    if stat_cla:
        p.append('"stat_cla":"%s"' % stat_cla)
    if extra is None:  # the number: limits and key come from the settings table
        r = st.row("c_limit")
        p.append('"cmd_t":"~/%s","val_tpl":"{{ value_json.%s }}","min":%d,"max":%d,"step":1'
                 % (r[st.TOPIC], r[st.KEY], r[st.LO], r[st.HI]))
    elif extra:
        p.append(extra)
    p.append('"dev":{"ids":["dinamics_%s"],"name":"Dinamics %s","mf":"Implera","mdl":"Dinamics",'
             '"sw":%s}' % (sn, sn, json.dumps(fw)))
    return "{" + ",".join(p) + "}"
