"""Inbound MQTT: what one received message asks for. Pure: no I/O, no clock, no settings, so the
whole command surface is fuzzed directly (tests/test_mqtt_inbound.py).

translate(topic, payload, retained) -> None (ignore) or (action, topic, text, arg):
  topic   the topic under Dinamics/<SN>/ (the bridge strips and checks the prefix)
  text    the payload as str (for ERROR: the offending value, bytes when it is not UTF-8)
  action  arg
  ERROR   reply text for Dinamics/<SN>/error; nothing is done
  SETTING setting name -> setting.set (name, text, "mqtt"); the settings actor validates
  CHARGE  1 off / 2 on / 3 sleep -> charge.command
  RAPI    (tag, cmd, args) -> rapi.request (bridge, tag, cmd, args) (rapi_request; the command
          passed the allow-list); the reply is sent back to the bridge
  LIMIT   (tag, cmd, args) -> rapi.request, only while a vehicle is connected (the bridge knows)
  LCD     (tag, ((cmd, args), ...)) -> one rapi.request per $FP line, one reply for them all
  REPORT  "status" / "settings" / "timers" / "wifi" / "debug" -> publish that report
  RESET   settings.RESET_SETTINGS / RESET_WIFI -> setting.set (reset, text, "mqtt")
An empty payload is ignored (that clears a retained message). A retained one-shot command is an
ERROR (never executed); a retained set_* value is a SETTING like a live one.

Not resident: the bridge imports this module when a message arrives and drops it once messages
stop (heap, docs/heap.md). Replies (the bookkeeping that turns the EVSE's rapi.reply into the
command's response topic) is resident, in dinamics.mqtt_topics; imported here for the tests.
"""

from dinamics import mqtt_topics as mt
from dinamics import settings as st
# rapi.request tags of the MQTT commands: in mqtt_topics, where the resident Replies needs them
from dinamics.mqtt_topics import TAG_ERASE, TAG_LCD, TAG_RAPI, TAG_S3, TAG_SH, Replies  # noqa: F401

ERROR = 0
SETTING = 1
CHARGE = 2
RAPI = 3
LIMIT = 4
LCD = 5
REPORT = 6
RESET = 7

_RETAINED = "retained command not executed (clear it with an empty retained message)"


def translate(topic, payload, retained=False):
    if isinstance(payload, (bytes, bytearray)):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeError:
            return (ERROR, topic, payload, "not UTF-8 text")
    else:
        text = payload
    if not text:
        return None  # an empty message clears a retained one: nothing to do
    r = st.by_topic(topic)
    if r is not None:
        return (SETTING, topic, text, r[st.NAME])
    c = mt.command(topic)
    if c is None:
        return (ERROR, topic, text, "unknown topic")
    if retained and c[st.FLAGS] & mt.ONESHOT:
        return (ERROR, topic, text, _RETAINED)
    try:
        v = st.parse(c, text)
    except ValueError as e:
        return (ERROR, topic, text, str(e))
    return _command(topic, v, text)


def _command(topic, v, text):
    if topic[:4] == "get_":
        return (REPORT, topic, text, topic[4:])
    if topic == "rapi_request":
        return _rapi_request(text)
    if topic == "set_enable":
        return (CHARGE, topic, text, v)
    if topic == "set_t_limit" or topic == "set_e_limit":
        cmd = "S3" if topic == "set_t_limit" else "SH"
        return (LIMIT, topic, text, (TAG_S3 if cmd == "S3" else TAG_SH, cmd, (v,)))
    if topic == "set_lcd" or topic == "erase_lcd":
        from dinamics import rapi_more  # the $FP encoder: loaded the first time it is needed

        if topic == "set_lcd":
            return (LCD, topic, text, (TAG_LCD, tuple(rapi_more.fp_commands(v))))
        return (LCD, topic, text, (TAG_ERASE, tuple(rapi_more.erase_commands())))
    if topic == "delete_settings":
        return (RESET, topic, text, st.RESET_SETTINGS)
    if topic == "delete_wifi":
        return (RESET, topic, text, st.RESET_WIFI)
    # set_update, set_update_spiffs
    return (ERROR, topic, text, "over-the-air update is not supported; update over USB")


def _rapi_request(text):
    try:
        from dinamics import rapi_more  # loaded with the first rapi_request (or set_lcd)

        rapi_more.build_raw(text, 0x41)  # the link adds an id: check the length with one
    except ValueError as e:
        return (ERROR, "rapi_request", text, str(e))
    toks = [t for t in text.split(" ") if t]
    cmd = toks[0]
    if not mt.rapi_allowed(cmd):
        return (ERROR, "rapi_request", text, "command %s not allowed over MQTT (allowed: G*, %s)"
                % (cmd, ",".join(mt.RAPI_SETTERS)))
    return (RAPI, "rapi_request", text, (TAG_RAPI, cmd, tuple(toks[1:]) or None))
