"""The one table of message kinds. Every message in the firmware is `(kind, payload)`.

A kind is a small int (its index in _TABLE). Each row says, as data, who sends it and who receives
it; the comment gives the payload. The routing rule: a kind with receivers is POSTED (the
scheduler delivers it to every actor that subscribes to it, and exactly the actors listed here do;
tests/test_routing.py checks both against the actors in device/actors and their post calls); a
kind whose receiver is REQUESTER is a reply, SENT (`sched.send`) to the actor that asked, which
the request carries; OWNER is the scheduler's `timer`, sent to the actor that armed it. Host-side
rig actors (hil/) may subscribe to anything: this table describes the firmware.

The overflow policy: LATEST kinds are telemetry (a newer value replaces an older queued one of the
same kind, or evicts the oldest telemetry), COMMAND kinds are never dropped silently (the post is
refused, counted and reported), DROP_NEW kinds (log lines) are dropped and counted when the inbox
is three quarters full, so they never crowd out or evict anything else.
"""

import sys

LATEST = 0
COMMAND = 1
DROP_NEW = 2

REQUESTER = "(requester)"  # receivers: the actor named in the request (a reply, sent)
OWNER = "(timer owner)"  # receivers: the actor that armed the timer (sent)

# Actor names (the `name` of each device actor; "scheduler" is mailbox.Scheduler itself).
_SCHED = "scheduler"
_LINK = "rapi_link"
_UART = "uart_link"
_BAL = "balancer"
_MQTT = "mqtt_bridge"
_SET = "settings"
_CT = "ct_meter"
_NET = "net_console"
_LCD = "lcd"
_WIFI = "wifi"
_LORA = "lora_link"
_WEB = "web"

# name, policy, senders, receivers                      payload
_TABLE = (
    ("timer", LATEST, (_SCHED,), OWNER),                 # tag given to every()/after()
    ("log", DROP_NEW, (_SCHED,), (_MQTT,)),              # (level, text) from sched.log (console too); debug_log
    ("ct.reading", LATEST, (_CT,), (_BAL, _MQTT, _LCD, _WEB)),     # CtReading tuple (see below)
    ("evse.state", LATEST, (_LINK,), (_BAL, _MQTT, _LCD, _WEB)),   # (state, pilot, amps, vflags) from $AT/$GS
    ("evse.async", COMMAND, (_LINK,), (_MQTT,)),         # raw async line as str (state_change)
    ("evse.current", LATEST, (_LINK,), (_BAL, _MQTT, _LCD, _WEB)),   # (mA, mV) from $GG
    ("evse.energy", LATEST, (_LINK,), (_MQTT, _LCD, _WEB)),     # (session Ws, lifetime Wh) from $GU
    ("evse.plug", LATEST, (_LINK,), (_BAL, _MQTT, _WEB)),      # 0 not connected, 1 connected, 2 unknown (link down): decided once, in rapi_link
    ("evse.boot", COMMAND, (_LINK,), (_BAL,)),           # (postcode, fw) from $AB ((0, "") at POST), after re-sync is queued
    ("rapi.request", COMMAND, (_BAL, _MQTT, _WEB), (_LINK,)),  # (requester, tag, cmd, args): requester an Actor or None (no reply); args tuple or None
    ("rapi.reply", COMMAND, (_LINK,), REQUESTER),        # (tag, ok, fields, text) ok None = failed (timeout, link down, superseded ...)
    ("rapi.tx_line", COMMAND, (_LINK,), (_UART, _LORA)),       # bytes of one line incl. CR
    ("rapi.rx_line", COMMAND, (_UART, _LORA), (_LINK,)),       # bytes of one line ($ .. before CR)
    ("link.status", COMMAND, (_LINK,), (_BAL, _MQTT, _LCD, _WEB)),   # (up, cmd): cmd "" when up, else the command left unanswered (the bridge: OK / CON_ERROR_FAILED_COM :GS)
    ("balancer.target", LATEST, (_BAL,), (_MQTT, _WEB)),      # (amps, reason) what it commands now
    ("charge.command", COMMAND, (_MQTT,), (_BAL,)),      # enable 1 off, 2 on, 3 sleep
    ("setting.set", COMMAND, (_MQTT, _WEB), (_SET,)),    # (name, raw value, source): source "mqtt"/"rig", or the requesting actor (answered by setting.reply)
    ("setting.changed", COMMAND, (_SET,), (_LINK, _BAL, _CT, _MQTT, _WIFI, _LORA)),  # names: tuple of the settings applied in one pass (values: read Settings); one message per pass, so a burst never fills an inbox
    ("setting.rejected", COMMAND, (_SET,), (_MQTT,)),    # (name, raw value, why): nothing changed (name: the setting, or what was asked for)
    ("net.status", COMMAND, (_MQTT,), (_BAL, _NET, _LCD, _WEB)),     # True broker up / False down
    ("phases", LATEST, (_BAL,), (_MQTT, _WEB)),               # (active_phases e.g. 0/1/12/123/99, no_of_phases)
    ("settings.reset", COMMAND, (_SET,), (_MQTT,)),      # settings.RESET_SETTINGS / RESET_WIFI done
    ("evse.pilot", LATEST, (_LINK,), (_MQTT, _LCD, _WEB)),     # amps the controller accepted / advertises
    ("evse.slow_reply", LATEST, (_LINK,), (_MQTT,)),     # round trip ms of a reply slower than timer13/2
    ("actor.stopped", COMMAND, (_SCHED,), (_MQTT,)),     # actor name: supervision stopped it for good; the port's fatal hook follows
    ("settings.stored", COMMAND, (_SET,), (_MQTT,)),     # names: made durable by the write that just completed (the bridge confirms them now)
    ("balancer.fault", COMMAND, (_BAL,), (_MQTT, _LCD)),      # (code, detail, text): "auto_stop" (timer1-3), "ct" (age ms / "ok"), "solar"; the bridge picks the error topic
    # Unit LCD (actors/lcd.py)
    ("lcd.text", COMMAND, (_MQTT,), (_LCD,)),            # set_lcd text (str) shown for lcd_text_s, or None (erase_lcd): back to the pages
    # WiFi (actors/wifi.py)
    ("net.up", COMMAND, (_WIFI,), (_MQTT, _LCD, _WEB)),  # (ip, mode, ssid, ap_password): mode "sta"/"ap"; ap_password "" in sta mode or for an open AP; every (re)connect / AP start
    ("net.down", COMMAND, (_WIFI,), (_MQTT, _LCD, _WEB)),  # reason str: the station lost its network (the AP, if any, stays)
    ("wifi.networks", COMMAND, (_WIFI,), REQUESTER),     # tuple of (ssid, rssi, is_open) strongest first: the answer to wifi.scan
    ("link.hold", COMMAND, (_BAL,), (_LINK,)),           # (requester, ms): a blocking call of up to ms comes; pulse $SY (raise the heartbeat margin if ms needs it), rapi.reply tag "hold" to the requester when done; posted by the balancer after any blind cut (net.blocking)
    ("net.blocking", COMMAND, (_WIFI,), (_BAL,)),        # (requester, ms): the requester will block every pass for up to ms once link.hold answers; the balancer cuts a charging car to hb_amps first when ms > blind_cap.BLIND_OK_MS, then posts link.hold (requester, ms)
    # LoRa (actors/lora_link.py)
    ("lora.air", LATEST, (_LORA,), (_MQTT, _WEB)),           # (used ms in the window, budget ms, window ms, frames, refused, rssi): the airtime ledger, every minute
    # web UI (actors/web.py)
    ("wifi.scan", COMMAND, (_WEB,), (_WIFI,)),           # the requesting actor: answered by wifi.networks
    ("setting.reply", COMMAND, (_SET,), REQUESTER),      # (name, raw value, why or None = applied): to a setting.set whose source is an actor
    # integration: web <-> wifi
    ("web.busy", LATEST, (_WEB,), (_WIFI,)),             # ms: a web client is mid-request for up to ms more (wifi: client_busy; at most once a second)
    ("lcd.shown", LATEST, (_LCD,), (_WEB,)),             # (cols, bytes): the unit LCD's text, row after row, whenever it changes
    ("link.medium", LATEST, (_LINK,), (_BAL,)),          # True: the LoRa radio carries the RAPI lines, False: the cable; at link up and on every swap
)

NAMES = tuple(row[0] for row in _TABLE)
POLICY = bytes(row[1] for row in _TABLE)
COUNT = len(_TABLE)
if sys.implementation.name == "cpython":
    # Who sends and who receives, for the host only (tests/test_routing.py, tools/gen_routing.py):
    # on a board (and the VMs) the rows are dropped once NAMES and POLICY are built (heap).
    SENDERS = tuple(row[2] for row in _TABLE)
    RECEIVERS = tuple(row[3] for row in _TABLE)
else:
    del _TABLE


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
EVSE_PLUG = kind("evse.plug")
EVSE_BOOT = kind("evse.boot")
RAPI_REQUEST = kind("rapi.request")
RAPI_REPLY = kind("rapi.reply")
RAPI_TX_LINE = kind("rapi.tx_line")
RAPI_RX_LINE = kind("rapi.rx_line")
LINK_STATUS = kind("link.status")
BALANCER_TARGET = kind("balancer.target")
CHARGE_COMMAND = kind("charge.command")
SETTING_SET = kind("setting.set")
SETTING_CHANGED = kind("setting.changed")
SETTING_REJECTED = kind("setting.rejected")
NET_STATUS = kind("net.status")
PHASES = kind("phases")
SETTINGS_RESET = kind("settings.reset")
EVSE_PILOT = kind("evse.pilot")
EVSE_SLOW_REPLY = kind("evse.slow_reply")
ACTOR_STOPPED = kind("actor.stopped")
BALANCER_FAULT = kind("balancer.fault")
SETTINGS_STORED = kind("settings.stored")
NET_UP = kind("net.up")
NET_DOWN = kind("net.down")
LCD_TEXT = kind("lcd.text")
WIFI_NETWORKS = kind("wifi.networks")
LINK_HOLD = kind("link.hold")
LORA_AIR = kind("lora.air")
WIFI_SCAN = kind("wifi.scan")
SETTING_REPLY = kind("setting.reply")
NET_BLOCKING = kind("net.blocking")
WEB_BUSY = kind("web.busy")
LCD_SHOWN = kind("lcd.shown")
LINK_MEDIUM = kind("link.medium")

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
