"""The MQTT contract beyond the settings table: requests/commands the unit takes, the topics it
publishes, the JSON reports built from the settings table, the RAPI allow-list and the serial
number. Every topic lives under Dinamics/<SN>/. docs/mqtt-topics.md is generated from this
module, dinamics.settings and tools/topics_help.py (tools/gen_topics.py), so the reference cannot
drift from the code.

COMMANDS rows use the settings row layout (up to FLAGS) so `settings.parse` validates their payloads:
  (name, topic, type, lo, hi, default, unit, flags)
  flags  ONESHOT: an action, not a state. A retained copy (delivered at connect) is refused with an
         error reply and never executed, so it cannot loop or repeat.
Their reply topics and descriptions, and the payload formats and descriptions of RESPONSES, are
host-side text (tools/topics_help.py, read by tools/gen_topics.py): on the board they would only
take heap.
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
    ("get_status", "get_status", _CHOICE, (1,), None, None, "", _O),
    ("get_settings", "get_settings", _CHOICE, (1,), None, None, "", _O),
    ("get_timers", "get_timers", _CHOICE, (1,), None, None, "", _O),
    ("get_wifi", "get_wifi", _CHOICE, (1,), None, None, "", _O),
    ("get_debug", "get_debug", _CHOICE, (1,), None, None, "", _O),
    ("rapi_request", "rapi_request", _STR, 2, 28, None, "", _O),
    ("set_enable", "set_enable", _CHOICE, (1, 2, 3), None, None, "", _O),
    ("set_t_limit", "set_t_limit", _INT, 0, 100, None, "x15 min", _O),
    ("set_e_limit", "set_e_limit", _INT, 0, 100, None, "kWh", _O),
    ("set_lcd", "set_lcd", _STR, 1, 32, None, "", _O),
    ("erase_lcd", "erase_lcd", _CHOICE, (1,), None, None, "", _O),
    ("delete_settings", "delete_settings", _CHOICE, (1,), None, None, "", _O),
    ("delete_wifi", "delete_wifi", _CHOICE, (1,), None, None, "", _O),
    ("set_update", "set_update", _CHOICE, (1,), None, None, "", _O),
    ("set_update_spiffs", "set_update_spiffs", _CHOICE, (1,), None, None, "", _O),
)


def rapi_allowed(cmd):
    return cmd[:1] == "G" or cmd in RAPI_SETTERS


# Published topics: (topic, retained). The bridge takes the retain flag from here. Payload formats
# and descriptions: tools/topics_help.py (host side, for docs/mqtt-topics.md).
RESPONSES = (
    ("availability", True), ("error", False), ("fwversion", True), ("breaker", True),
    ("plugandcharge", True), ("current1", False), ("current2", False), ("current3", False),
    ("max_charging_current", False), ("charging_current", False), ("power", False),
    ("energy", False), ("active_phases", False), ("no_of_phases", False), ("enable", True),
    ("state", True), ("connection", True), ("state_change", False), ("timeout", False),
    ("debug_log", False), ("synctime", False), ("freeRAM", False), ("ip", False),
    ("settings", True), ("timers", False), ("wifi", False), ("debug", False),
    ("rapi_response", False), ("responseST", False), ("responseSH", False), ("responseLCD", False),
    ("responseEraseLCD", False),
    ("lora", False),  # LoRa-linked installs: the airtime ledger (docs/lora.md)
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


# --- replies to MQTT requests (resident: dinamics.mqtt_inbound, which makes the requests, is not) --
# rapi.request tags of the MQTT commands (the reply comes back to the bridge with its tag)
TAG_RAPI = "mqtt:rapi"
TAG_S3 = "mqtt:S3"
TAG_SH = "mqtt:SH"
TAG_LCD = "mqtt:lcd"
TAG_ERASE = "mqtt:erase"
RESPONSE_OF_TAG = {TAG_RAPI: "rapi_response", TAG_S3: "responseST", TAG_SH: "responseSH",
                   TAG_LCD: "responseLCD", TAG_ERASE: "responseEraseLCD"}
_LIMIT_TOPIC = {TAG_S3: "set_t_limit", TAG_SH: "set_e_limit"}


class Replies:
    """One response per request, except one for all the $FP lines of one LCD text (the first
    failure wins), and an error naming the value when the EVSE refuses a time/energy limit."""

    def __init__(self):
        self._lcd = {}  # tag -> [replies pending, response text]
        self._limits = {TAG_S3: [], TAG_SH: []}  # tag -> values waiting for their reply

    def sent(self, tag, value=None):
        """A rapi.request with this tag went out (value: the limit's text, for S3/SH)."""
        vals = self._limits.get(tag)
        if vals is not None:
            vals.append(value)
            return
        entry = self._lcd.get(tag)
        if entry is None:
            entry = self._lcd[tag] = [0, None]
        entry[0] += 1

    def reply(self, tag, ok, fields, text):
        """rapi.reply -> None (not an MQTT request, or more $FP replies to come) or
        (response topic, text, refused) with refused = (topic, value, error text) or None."""
        sub = RESPONSE_OF_TAG.get(tag)
        if sub is None:
            return None
        if ok is None:
            out = "No response from EVSE (%s)" % text
        else:
            out = ("$OK" if ok else "$NK") + ("" if not fields else " " + " ".join(fields))
        lcd = self._lcd.get(tag)
        if lcd is not None:
            lcd[0] -= 1
            if lcd[1] is None or (ok is not True and lcd[1][:3] == "$OK"):
                lcd[1] = out
            if lcd[0] > 0:
                return None
            out = lcd[1]
            del self._lcd[tag]
        refused = None
        vals = self._limits.get(tag)
        if vals:
            value = vals.pop(0)
            if ok is not True:
                refused = (_LIMIT_TOPIC[tag], value, "EVSE refused: " + out)
        return (sub, out, refused)
