"""The one table of message kinds. Every message in the firmware is `(kind, payload)`.

A kind is a small int (its index in _TABLE). Each row says who sends it to whom, what the payload
is, and the inbox overflow policy: LATEST kinds are telemetry (a newer value replaces an older
queued one of the same kind, or evicts the oldest telemetry), COMMAND kinds are never dropped
silently (the post is refused, counted and reported), DROP_NEW kinds (log lines) are dropped and
counted when the inbox is three quarters full, so they never crowd out or evict anything else.
"""

LATEST = 0
COMMAND = 1
DROP_NEW = 2

# name, policy                 sender -> receivers: payload
_TABLE = (
    ("timer", LATEST),          # scheduler -> timer owner: tag given to every()/after()
    ("log", DROP_NEW),          # scheduler.log -> mqtt_bridge (debug_log): (level, text); console too
    ("ct.reading", LATEST),     # ct_meter -> balancer, mqtt, lcd: CtReading tuple (see below)
    ("evse.state", LATEST),     # rapi_link -> all: (state, pilot, amps, vflags) from $AT/$GS
    ("evse.async", COMMAND),    # rapi_link -> mqtt_bridge: raw async line as str (state_change)
    ("evse.current", LATEST),   # rapi_link -> all: (mA, mV) from $GG
    ("evse.energy", LATEST),    # rapi_link -> all: (session Ws, lifetime Wh) from $GU
    ("evse.capacity", LATEST),  # rapi_link -> all: (min, hmax, pilot, cmax) from $GC
    ("evse.plug", LATEST),      # rapi_link -> all (mqtt `state`): 0 not connected, 1 connected, 2 unknown ($AT/$GS/$G0)
    ("evse.boot", COMMAND),     # rapi_link -> all: (postcode, fw) from $AB, after re-sync is queued
    ("evse.version", LATEST),   # rapi_link -> all: (fw, rapi) from $GV
    ("rapi.request", COMMAND),  # any -> rapi_link: (tag, cmd, args) ; args tuple or None
    ("rapi.reply", COMMAND),    # rapi_link -> requesters: (tag, ok, fields, text) ok None = failed
    ("rapi.tx_line", COMMAND),  # rapi_link -> active transport: bytes of one line incl. CR
    ("rapi.rx_line", COMMAND),  # transport -> rapi_link: bytes of one line ($ .. before CR)
    ("link.status", COMMAND),   # rapi_link -> all: (up, text) text "OK" / "CON_ERROR_FAILED_COM :GS"
    ("balancer.target", LATEST),  # balancer -> mqtt, lcd: (amps, reason) what it commands now
    ("charge.command", COMMAND),  # mqtt/web -> balancer: enable 1 off, 2 on, 3 sleep
    ("setting.set", COMMAND),   # mqtt/web -> settings: (name, raw value, source)
    ("setting.changed", COMMAND),  # settings -> all: (name, value) after validation and storing
    ("error", COMMAND),         # any -> mqtt_bridge: (topic, value, text) for Dinamics/<SN>/error (old; see balancer.fault)
    ("net.status", COMMAND),    # mqtt_bridge -> all: True broker up / False down
    ("mqtt.out", COMMAND),      # any -> mqtt_bridge: (subtopic, payload str, retain) (old; see evse.slow_reply)
    ("status.request", COMMAND),  # mqtt/web -> actors owning status: which (e.g. "status")
    ("ct.sample", LATEST),      # ct feed/ADC -> ct_meter (host rig and HIL mode): raw reading
    ("phases", LATEST),         # balancer -> mqtt, lcd: (active_phases e.g. 0/1/12/123/99, no_of_phases)
    ("settings.reset", COMMAND),  # settings -> mqtt, web: settings.RESET_SETTINGS / RESET_WIFI done
    ("evse.pilot", LATEST),     # rapi_link -> mqtt_bridge, balancer: amps the controller accepted/advertises
    ("evse.slow_reply", LATEST),  # rapi_link -> mqtt_bridge: round trip ms of a reply slower than timer13/2
    ("actor.stopped", COMMAND),  # scheduler -> mqtt_bridge: actor name (str) supervision stopped for good (> 5 crashes in 60 s, or a failed restart); the port's fatal hook follows
    ("balancer.fault", COMMAND),  # balancer -> mqtt_bridge: (code, detail, text) e.g. ("enable", "timer3", why)
)

NAMES = tuple(row[0] for row in _TABLE)
POLICY = bytes(row[1] for row in _TABLE)
COUNT = len(_TABLE)


def kind(name):
    """Kind number for a name; raises at import time of the caller on a typo."""
    return NAMES.index(name)


TIMER = kind("timer")
LOG = kind("log")
CT_READING = kind("ct.reading")
EVSE_STATE = kind("evse.state")
EVSE_ASYNC = kind("evse.async")
EVSE_CURRENT = kind("evse.current")
EVSE_ENERGY = kind("evse.energy")
EVSE_CAPACITY = kind("evse.capacity")
EVSE_PLUG = kind("evse.plug")
EVSE_BOOT = kind("evse.boot")
EVSE_VERSION = kind("evse.version")
RAPI_REQUEST = kind("rapi.request")
RAPI_REPLY = kind("rapi.reply")
RAPI_TX_LINE = kind("rapi.tx_line")
RAPI_RX_LINE = kind("rapi.rx_line")
LINK_STATUS = kind("link.status")
BALANCER_TARGET = kind("balancer.target")
CHARGE_COMMAND = kind("charge.command")
SETTING_SET = kind("setting.set")
SETTING_CHANGED = kind("setting.changed")
ERROR = kind("error")
NET_STATUS = kind("net.status")
MQTT_OUT = kind("mqtt.out")
STATUS_REQUEST = kind("status.request")
CT_SAMPLE = kind("ct.sample")
PHASES = kind("phases")
SETTINGS_RESET = kind("settings.reset")
EVSE_PILOT = kind("evse.pilot")
EVSE_SLOW_REPLY = kind("evse.slow_reply")
ACTOR_STOPPED = kind("actor.stopped")
BALANCER_FAULT = kind("balancer.fault")

# Log levels for LOG payloads.
DEBUG = 10
INFO = 20
WARNING = 30
ERROR_LEVEL = 40

# ct.reading payload: (t_ms, amps, valid, flags)
#   t_ms  tick (wrapping ms) when the window ended
#   amps  tuple of 3 floats, A rms per CT (0.0 where not valid)
#   valid bit mask: bit0 CT1 .. bit2 CT3 delivered a plausible reading
#   flags tuple of 3 ints from dinamics.ct_math (0 = ok)
