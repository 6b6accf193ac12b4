"""The MQTT contract beyond the settings table: requests/commands the unit takes, the topics it
publishes, the JSON reports built from the settings table, the RAPI allow-list and the serial
number. Every topic lives under Dinamics/<SN>/. docs/mqtt-topics.md is generated from this module
and dinamics.settings (tools/gen_topics.py), so the reference cannot drift from the code.

COMMANDS rows use the settings row layout so `settings.parse` validates their payloads:
  (name, topic, type, lo, hi, default, unit, flags, key, help)
  flags  ONESHOT: an action, not a state. A retained copy (delivered at connect) is refused with an
         error reply and never executed, so it cannot loop or repeat.
  key    topic(s) the reply goes to ("" = none besides `error`)
"""

import json

from dinamics import settings as st

ONESHOT = 1
_O = ONESHOT
_INT, _CHOICE, _STR = st.INT, st.CHOICE, st.STR

# RAPI commands rapi_request may send: every G… read command plus these calibration/service ones.
# SC, FE/FD/FS, SY, FR, FF (safety switches), S4/S5/SK/Z0… are refused: the balancer and the link
# own them, or they change safety behaviour.
RAPI_SETTERS = ("SL", "SA", "S2", "T0", "FP", "FB", "ST", "S1", "SV")

COMMANDS = (
    ("get_status", "get_status", _CHOICE, (1,), None, None, "", _O,
     "current1-3, max_charging_current, charging_current, active_phases, no_of_phases, power, energy, state, enable, connection",
     "publish every status value now"),
    ("get_settings", "get_settings", _CHOICE, (1,), None, None, "", _O, "settings", "publish the settings JSON"),
    ("get_timers", "get_timers", _CHOICE, (1,), None, None, "", _O, "timers", "publish the timers JSON"),
    ("get_wifi", "get_wifi", _CHOICE, (1,), None, None, "", _O, "wifi", "publish the network JSON (never a password)"),
    ("get_debug", "get_debug", _CHOICE, (1,), None, None, "", _O, "debug", "publish the debug switches JSON"),
    ("rapi_request", "rapi_request", _STR, 2, 28, None, "", _O, "rapi_response",
     "send one RAPI command (no '$'), e.g. GV or SL 2; allowed: every G… read command and "
     + ", ".join(RAPI_SETTERS)),
    ("set_enable", "set_enable", _CHOICE, (1, 2, 3), None, None, "", _O, "enable",
     "1 = turn off (FD), 2 = enable charging (FE), 3 = sleep (FS); obeyed in plug&charge mode too"),
    ("set_t_limit", "set_t_limit", _INT, 0, 100, None, "x15 min", _O, "responseST",
     "charge time limit for this session in 15 min steps (0 = none); needs a connected vehicle"),
    ("set_e_limit", "set_e_limit", _INT, 0, 100, None, "kWh", _O, "responseSH",
     "charge energy limit for this session, kWh as the EVSE counts them (0 = none); needs a connected vehicle"),
    ("set_lcd", "set_lcd", _STR, 1, 32, None, "", _O, "responseLCD",
     "write this text on the controller's 16x2 LCD (row 0 then row 1, 32 characters)"),
    ("erase_lcd", "erase_lcd", _CHOICE, (1,), None, None, "", _O, "responseEraseLCD", "blank the controller's LCD"),
    ("delete_settings", "delete_settings", _CHOICE, (1,), None, None, "", _O, "settings",
     "restore every setting except network/identity to its default, at once, no reboot"),
    ("delete_wifi", "delete_wifi", _CHOICE, (1,), None, None, "", _O, "wifi",
     "forget the WiFi credentials (default = none), no reboot"),
    ("set_update", "set_update", _CHOICE, (1,), None, None, "", _O, "",
     "firmware update over the air: not supported (error reply); update by USB"),
    ("set_update_spiffs", "set_update_spiffs", _CHOICE, (1,), None, None, "", _O, "",
     "web asset update over the air: not supported (error reply)"),
)


def rapi_allowed(cmd):
    return cmd[:1] == "G" or cmd in RAPI_SETTERS


# Published topics: (topic, retained, payload, help). The bridge takes the retain flag from here.
RESPONSES = (
    ("availability", True, "online / offline", "last will: offline when the unit drops off the broker"),
    ("error", False, '{"topic":…,"value":…,"error":…}', "reply to a rejected command or value (nothing was changed); also a balancer auto-stop/refusal and an actor stopped after repeated crashes (topic \"actor\")"),
    ("fwversion", True, "e.g. 1.0.0", "firmware version (published at connect)"),
    ("breaker", True, "6-100 [A]", "breaker setting, after set_breaker and at connect"),
    ("plugandcharge", True, "0 / 1", "plug&charge setting, after set_plugandcharge and at connect"),
    ("current1", False, "e.g. 12.34 [A]", "CT 1 current; every `timer` ms when changed by >= 0.15 A, and on get_status"),
    ("current2", False, "[A]", "CT 2 current, as current1"),
    ("current3", False, "[A]", "CT 3 current, as current1"),
    ("max_charging_current", False, "0-80 [A]", "pilot current the EVSE controller accepted ($SC reply, $AT, $GC); 0 while the balancer pauses; the balancer's target until the controller has told; on change and on get_status"),
    ("charging_current", False, "e.g. 15.98 [A]", "EVSE charging current, when changed by >= 0.15 A"),
    ("power", False, "0-22000 [W]", "charging power = current x voltage x phases, when changed by >= 100 W"),
    ("energy", False, "[Wh]", "session energy (EVSE reading x phases), when changed by >= 100 Wh"),
    ("active_phases", False, "0,1,2,3,12,13,23,123,99", "phases the car draws from this session"),
    ("no_of_phases", False, "0-3", "number of active phases"),
    ("enable", True, "1 / 2 / 3", "EVSE enable state: 1 off (disabled), 2 enabled, 3 sleeping"),
    ("state", True, "0 / 1 / 2", "vehicle: 0 not connected, 1 connected, 2 unknown (link down); as the link decides it from $AT/$GS/$G0"),
    ("connection", True, "OK / CON_ERROR_FAILED_COM :<cmd> / CON_ERROR_STOPPED :<actor>", "link to the EVSE (STOPPED: the link actor kept crashing)"),
    ("state_change", False, "$AT …", "raw asynchronous line from the EVSE ($AT/$AB/…)"),
    ("timeout", False, "ms", "a RAPI reply took more than timer13/2 ms (debug switch d1_MQTT)"),
    ("debug_log", False, "$msg$$msg$…", "log lines (WARNING+, INFO with switch d2_MQTT), each framed in $…$, every message < 200 characters; a frame starting with + continues the line before; inside a line % is %25, $ is %24, a leading + is %2B"),
    ("synctime", False, "epoch s", "wall-clock time, every timer12 ms"),
    ("freeRAM", False, "kB", "free heap (gc.mem_free) in kB, every timer12 ms"),
    ("ip", False, "a.b.c.d", "local IP address, at connect and every timer12 ms"),
    ("settings", True, "JSON", "settings report (glossary keys), at connect, after a change and on get_settings"),
    ("timers", False, '{"T":[15 ints]}', "timer, timer1 … timer14 in ms, on get_timers"),
    ("wifi", False, "JSON", "network report (SSID, IP, broker; never a password), on get_wifi"),
    ("debug", False, '{"Debugs":[40 ints]}', "debug switches, on get_debug"),
    ("rapi_response", False, "$OK … / $NK … / No response from EVSE (…)", "EVSE reply to rapi_request (one per request, in order)"),
    ("responseST", False, "$OK / $NK", "EVSE reply to set_t_limit ($S3)"),
    ("responseSH", False, "$OK / $NK", "EVSE reply to set_e_limit ($SH)"),
    ("responseLCD", False, "$OK / $NK …", "EVSE reply to set_lcd ($FP …)"),
    ("responseEraseLCD", False, "$OK / $NK …", "EVSE reply to erase_lcd ($FP …)"),
)

RETAINED = tuple(r[0] for r in RESPONSES if r[1])
_PUBLISHED = tuple(r[0] for r in RESPONSES)


def published(sub):
    """A topic the unit publishes itself (under its prefix): not a command."""
    return sub in _PUBLISHED

# Debug switches (set_debug, 40 digits: d1, d1_MQTT, d2, d2_MQTT, … d20, d20_MQTT).
DBG_TIMEOUT = 1  # d1_MQTT: publish `timeout`
DBG_INFO_LOG = 3  # d2_MQTT: INFO lines go to debug_log too (else WARNING and worse only)
DBG_ECHO = 5  # d3_MQTT: echo every accepted incoming command into debug_log


def debug_on(settings, index):
    return settings.get("debug")[index] == "1"


def command(topic):
    for r in COMMANDS:
        if r[1] == topic:
            return r
    return None


def amps_text(a):
    """A current in A as the seed prints it (two decimals), from whole milliamps rounded half away
    from zero: a board's single-precision float and a PC's double give the same text whenever they
    round to the same mA ("%.2f" % 12.345 is 12.34 on a board, 12.35 on a PC)."""
    ma = int(a * 1000 + (0.5 if a >= 0 else -0.5))
    c = (abs(ma) + 5) // 10
    return "%s%d.%02d" % ("-" if ma < 0 and c else "", c // 100, c % 100)


def serial_number(settings, mac):
    """The `serial` setting if set, else the factory MAC bytes reversed as 12 upper-case hex digits
    (the seed's SN: MAC 24:6F:28:AA:BB:CC -> CCBBAA286F24)."""
    sn = settings.get("serial")
    if sn and valid_serial(sn):
        return sn
    return "".join("%02X" % b for b in reversed(bytes(mac)))


def valid_serial(sn):
    if not sn or len(sn) > 12:
        return False
    for ch in sn:
        if not (ch.isalpha() or ch.isdigit() or ch in "-_"):
            return False
    return True


# --- reports derived from the settings table -----------------------------------------------------
def _public(r):
    return not r[st.FLAGS] & st.SECRET


def _group(r):
    if r[st.NAME] in st.TIMER_NAMES:
        return "timers"
    if r[st.TYPE] == st.BITS:
        return "debug"
    if r[st.FLAGS] & st.NET:
        return "wifi"
    return "settings"


def group_of(name):
    return _group(st.row(name))


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


def error_json(topic, value, text):
    """Payload for Dinamics/<SN>/error. The offending value is cut to 64 characters."""
    value = st.text_of(value)
    if len(value) > 64:
        value = value[:64] + "..."
    # built in the seed's key order (a board's dicts keep no order)
    return '{"topic": %s, "value": %s, "error": %s}' % (json.dumps(topic), json.dumps(value),
                                                         json.dumps(text))


def escape_log(text):
    """'$' frames debug_log messages and a leading '+' marks a continuation: inside a text '%'
    becomes %25, '$' %24, and a leading '+' %2B."""
    if "%" in text:
        text = text.replace("%", "%25")
    if "$" in text:
        text = text.replace("$", "%24")
    if text[:1] == "+":
        text = "%2B" + text[1:]
    return text


def split_log(texts, limit=199):
    """Pack log texts into debug_log payloads of at most `limit` characters, each text framed as
    $text$ (escaped with escape_log). A text longer than one frame is cut into several frames in
    order; every frame after the first of a text starts with '+'. Nothing is lost.
    -> list of payload strings."""
    out = []
    cur = ""
    room = limit - 2
    for text in texts:
        text = escape_log(text)
        first = True
        while True:
            if first:
                piece = text[:room]
                text = text[room:]
            else:
                piece = "+" + text[:room - 1]
                text = text[room - 1:]
            first = False
            frame = "$" + piece + "$"
            if len(cur) + len(frame) > limit:
                out.append(cur)
                cur = ""
            cur += frame
            if not text:
                break
    if cur:
        out.append(cur)
    return out


class LogRing:
    """Log lines waiting for debug_log: at most `size` (the oldest go first and are counted in
    `lost`); `due` turns True once more than `flush_chars` characters wait."""

    def __init__(self, size=40, flush_chars=190):
        self.size = size
        self.flush_chars = flush_chars
        self.lines = []
        self.chars = 0
        self.lost = 0
        self.due = False

    def add(self, text):
        lines = self.lines
        if len(lines) >= self.size:
            self.chars -= len(lines.pop(0)) + 2
            self.lost += 1
        lines.append(text)
        self.chars += len(text) + 2
        if self.chars > self.flush_chars:
            self.due = True

    def take(self):
        """-> debug_log payloads for everything waiting (a "lost" line first if any were lost)."""
        self.due = False
        if not self.lines:
            return []
        texts = self.lines
        self.lines = []
        self.chars = 0
        if self.lost:
            texts.insert(0, "(%d log lines lost)" % self.lost)
            self.lost = 0
        return split_log(texts)
