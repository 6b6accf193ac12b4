"""Host-side text of the MQTT contract: what docs/mqtt-topics.md says about each request/command
and each published topic. Kept off the board (heap: ~10 KB as .mpy on a 32-bit VM, docs/heap.md);
the device tables (dinamics.mqtt_topics.COMMANDS / RESPONSES) hold only what the firmware needs.
tools/gen_topics.py joins them; tests/test_mqtt_topics.py checks every topic has its text."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device"))

from dinamics import mqtt_topics as mt  # noqa: E402

# request/command topic -> (reply topic(s), "" = none besides `error`; description)
COMMAND_DOC = {
    'get_status': ('current1-3, max_charging_current, charging_current, active_phases, no_of_phases, power, energy, state, enable, connection',
        'publish every status value now'),
    'get_settings': ('settings',
        'publish the settings JSON'),
    'get_timers': ('timers',
        'publish the timers JSON'),
    'get_wifi': ('wifi',
        'publish the network JSON (never a password)'),
    'get_debug': ('debug',
        'publish the debug switches JSON'),
    'rapi_request': ('rapi_response',
        "send one RAPI command (no '$'), e.g. GV or SL 2; allowed: every G… read command and "
        + ", ".join(mt.RAPI_SETTERS)),
    'set_enable': ('enable',
        '1 = turn off (FD), 2 = enable charging (FE), 3 = sleep (FS); obeyed in plug&charge mode too'),
    'set_t_limit': ('responseST',
        'charge time limit for this session in 15 min steps (0 = none); needs a connected vehicle'),
    'set_e_limit': ('responseSH',
        'charge energy limit for this session, kWh as the EVSE counts them (0 = none); needs a connected vehicle'),
    'set_lcd': ('responseLCD',
        "write this text on the controller's 16x2 LCD (row 0 then row 1, 32 characters)"),
    'erase_lcd': ('responseEraseLCD',
        "blank the controller's LCD"),
    'delete_settings': ('settings',
        'restore every setting except network/identity to its default, at once, no reboot'),
    'delete_wifi': ('wifi',
        'forget the WiFi credentials (default = none), no reboot'),
    'set_update': ('',
        'firmware update over the air: not supported (error reply); update by USB'),
    'set_update_spiffs': ('',
        'web asset update over the air: not supported (error reply)'),
}

# published topic -> (payload, description)
RESPONSE_DOC = {
    'availability': ('online / offline',
        'last will: offline when the unit drops off the broker'),
    'error': ('{"topic":…,"value":…,"error":…}',
        'reply to a rejected command or value (nothing was changed); also a balancer auto-stop/refusal and an actor stopped after repeated crashes (topic "actor")'),
    'fwversion': ('e.g. 1.0.0',
        'firmware version (published at connect)'),
    'breaker': ('6-100 [A]',
        'breaker setting, after set_breaker and at connect'),
    'plugandcharge': ('0 / 1',
        'plug&charge setting, after set_plugandcharge and at connect'),
    'current1': ('e.g. 12.34 [A]',
        'CT 1 current; every `timer` ms when changed by >= 0.15 A, and on get_status'),
    'current2': ('[A]',
        'CT 2 current, as current1'),
    'current3': ('[A]',
        'CT 3 current, as current1'),
    'max_charging_current': ('0-80 [A]',
        "pilot current the EVSE controller accepted ($SC reply, $AT, $GC); 0 while the balancer pauses; the balancer's target until the controller has told; on change and on get_status"),
    'charging_current': ('e.g. 15.98 [A]',
        'EVSE charging current as the controller measures it ($GG: every timer7 ms, at once when a charge starts, and when it ends or pauses 0.4 s after the state leaves C, then every second while it still shows a current, up to 5 reads: 0 A once the relay opened); every `timer` ms when changed by >= 0.15 A'),
    'power': ('0-22000 [W]',
        'charging power = current x voltage x phases, when changed by >= 100 W'),
    'energy': ('[Wh]',
        'session energy (EVSE reading x phases), when changed by >= 100 Wh'),
    'active_phases': ('0,1,2,3,12,13,23,123,99',
        'phases the car draws from this session'),
    'no_of_phases': ('0-3',
        'number of active phases'),
    'enable': ('1 / 2 / 3',
        'EVSE enable state: 1 off (disabled), 2 enabled, 3 sleeping'),
    'state': ('0 / 1 / 2',
        'vehicle: 0 not connected, 1 connected, 2 unknown (link down); as the link decides it from $AT/$GS/$G0'),
    'connection': ('OK / CON_ERROR_FAILED_COM :<cmd> / CON_ERROR_STOPPED :<actor>',
        'link to the EVSE (STOPPED: the link actor kept crashing)'),
    'state_change': ('$AT …',
        'raw asynchronous line from the EVSE ($AT/$AB/…)'),
    'timeout': ('ms',
        'a RAPI reply took more than timer13/2 ms (debug switch d1_MQTT)'),
    'debug_log': ('$msg$$msg$…',
        'log lines (WARNING+, INFO with switch d2_MQTT), each framed in $…$, every message < 200 characters; a frame starting with + continues the line before; inside a line % is %25, $ is %24, a leading + is %2B'),
    'synctime': ('epoch s',
        'wall-clock time, every timer12 ms'),
    'freeRAM': ('kB',
        'free heap (gc.mem_free) in kB, every timer12 ms'),
    'ip': ('a.b.c.d',
        'local IP address, at connect and every timer12 ms'),
    'settings': ('JSON',
        'settings report (glossary keys), at connect, after a change and on get_settings'),
    'timers': ('{"T":[15 ints]}',
        'timer, timer1 … timer14 in ms, on get_timers'),
    'wifi': ('JSON',
        'network report (SSID, IP, broker; never a password), on get_wifi'),
    'debug': ('{"Debugs":[40 ints]}',
        'debug switches, on get_debug'),
    'rapi_response': ('$OK … / $NK … / No response from EVSE (…)',
        'EVSE reply to rapi_request (one per request, in order)'),
    'responseST': ('$OK / $NK',
        'EVSE reply to set_t_limit ($S3)'),
    'responseSH': ('$OK / $NK',
        'EVSE reply to set_e_limit ($SH)'),
    'responseLCD': ('$OK / $NK …',
        'EVSE reply to set_lcd ($FP …)'),
    'responseEraseLCD': ('$OK / $NK …',
        'EVSE reply to erase_lcd ($FP …)'),
    'lora': ('{"airtime_ms":…,"budget_ms":…,"window_s":…,"frames":…,"refused":…,"rssi":…}',
        'LoRa-linked installs: time on air in the rolling window (an hour; 20 s on US915), the '
        "band's budget, frames sent and refused by the ledger, last RSSI; every minute (docs/lora.md)"),
}


def commands():
    """COMMANDS rows in the settings row layout, with the reply topics (KEY) and the help (HELP)."""
    return [c[:8] + COMMAND_DOC[c[1]] for c in mt.COMMANDS]


def responses():
    """(topic, retained, payload, description) for every published topic."""
    return [(r[0], r[1]) + RESPONSE_DOC[r[0]] for r in mt.RESPONSES]
