"""mqtt_bridge: the unit on an MQTT broker, as the seed README specifies (topic prefix
Dinamics/<SN>/; tables in dinamics.settings and dinamics.mqtt_topics; reference docs/mqtt-topics.md).
This actor maps messages to topics and back. The broker session (connect, back-off, keep-alive,
outgoing queues) is dinamics.mqtt_session; what a received message asks for is the pure
dinamics.mqtt_inbound.translate (set_* -> setting.set for the settings actor, commands -> messages
or reports, anything rejected -> a JSON reply on Dinamics/<SN>/error, nothing changed), which the
actor's inbound half (its mixin, actors/mqtt_commands.py) applies; this file is the outbound half.

Out: telemetry from the firmware's messages, state topics retained (state, enable, connection,
breaker, fwversion, settings, availability), responses, errors (setting.rejected, balancer.fault,
actor.stopped: the lower layers speak the domain, the topic names are chosen here), debug_log from `log` messages, synctime/freeRAM/ip on timer12, Home Assistant
discovery. `state` is the plug state rapi_link decides (evse.plug); `enable` follows evse.state;
`max_charging_current` is 0 while the balancer's target is 0, else what the controller accepted
(evse.pilot), or the target until the controller has told.

Board port: socket_pool = socketpool.SocketPool(wifi.radio), ssl_context = ssl.create_default_context(),
mac = wifi.radio.mac_address (or microcontroller.cpu.uid), mem_free = gc.mem_free,
ip() (dinamics/app.py: the port contract). The host port provides the same from the stdlib.
"""

from actors.balancer import FAULT_ENABLE
from actors.balancer_regulation import FAULT_SOLAR
from actors.mqtt_commands import MqttCommands
from dinamics import messages as m
from dinamics import mqtt_topics as mt
from dinamics import rapi
from dinamics import settings as st
from dinamics.mqtt_session import T_CONNECT, Session, forget
from dinamics.version import VERSION

RECONFIG_DELAY_MS = 200
CT_BAND = 0.15  # A
POWER_BAND = 100  # W
ENERGY_BAND = 100  # Wh

_CT_TOPICS = ("current1", "current2", "current3")
_NET_NAMES = ("serial", "mqtt_host", "mqtt_port", "mqtt_user", "mqtt_pass", "mqtt_tls")
_LINK_ACTORS = ("rapi_link", "uart_link")
_ENABLE_OF_STATE = {rapi.STATE_DISABLED: 1, rapi.STATE_SLEEP: 3}
# balancer.fault code -> the "topic" of its error JSON (any other code: the code itself, e.g. "ct")
_FAULT_TOPIC = {FAULT_ENABLE: "enable", FAULT_SOLAR: "set_solar"}
# timer tags (T_CONNECT: the session's connect attempt)
_T_TELE = "tele"  # telemetry every `timer`
_T_SYNC = "sync"  # synctime / freeRAM / ip every `timer12`
_T_DLOG = "dlog"  # debug_log flush every `timer10`
_HA = "dinamics.ha_discovery"


def _ha(drop=False):
    """Home Assistant discovery is loaded while its configs go out and dropped after (heap,
    docs/heap.md): imported again at the next connect or ha_discovery change."""
    import sys

    if drop:
        sys.modules.pop(_HA, None)
        import dinamics

        if hasattr(dinamics, "ha_discovery"):
            delattr(dinamics, "ha_discovery")
        return None
    from dinamics import ha_discovery

    return ha_discovery


class MqttBridge(MqttCommands):
    name = "mqtt_bridge"
    subscribes = (m.LOG, m.SETTING_CHANGED, m.SETTING_REJECTED, m.CT_READING, m.EVSE_STATE,
                  m.EVSE_ASYNC, m.EVSE_CURRENT, m.EVSE_ENERGY, m.EVSE_PLUG, m.EVSE_PILOT,
                  m.EVSE_SLOW_REPLY, m.LINK_STATUS, m.BALANCER_TARGET, m.BALANCER_FAULT,
                  m.ACTOR_STOPPED, m.PHASES, m.SETTINGS_RESET, m.SETTINGS_STORED,
                  m.NET_UP, m.NET_DOWN, m.LORA_AIR)  # + rapi.reply, sent to it
    polls = True
    inbox_size = 48

    def __init__(self, settings, port):
        super().__init__()
        self.settings = settings
        self.port = port
        self.session = Session(self, port, self.on_mqtt, self._on_connected, self._more)
        self.stats = self.session.stats
        self._ring = mt.LogRing(40, 190)  # log lines for debug_log; early flush at 190 (seed)
        self.reset()

    @property
    def connected(self):
        return self.session.connected

    # --- lifecycle -----------------------------------------------------------------------------
    def reset(self):
        self.session.reset()
        self.prefix = ""
        self.sn = ""
        self._timers = {}
        self._due = []  # reports to build at send time: settings, timers, wifi, debug
        self._replies = mt.Replies()
        self._inb = None  # dinamics.mqtt_inbound while messages arrive (see _inbound)
        self._inb_used = False
        self._ha_next = None  # index of the next HA config to send, None = nothing to do
        self._ha_remove = False
        # what the unit knows, and what it last published
        self._ct = None
        self._sent_ct = [None, None, None]
        self._ma = None
        self._mv = 0
        self._ws = None
        self._phases = None
        self._target = None
        self._pilot = None
        self._mcc = None  # max_charging_current last published
        self.plug = None  # 0 not connected, 1 connected, 2 unknown
        self.enable = None
        self._link = None
        self._sent = {}  # charging_current / power / energy -> last published number

    def start(self):
        self._identity()
        self._arm(_T_TELE, "timer")
        self._arm(_T_SYNC, "timer12")
        self._arm(_T_DLOG, "timer10")
        if self.settings.get("mqtt_host"):
            self.session.schedule(1)

    def _identity(self):
        self.sn = mt.serial_number(self.settings, getattr(self.port, "mac", b"\x00" * 6))
        self.prefix = "Dinamics/" + self.sn + "/"

    def config(self):
        g = self.settings.get
        return (self.sn, g("mqtt_host"), g("mqtt_port"), g("mqtt_user"), g("mqtt_pass"), g("mqtt_tls"))

    def _arm(self, tag, setting):
        old = self._timers.get(tag)
        if old is not None:
            self.cancel(old)
        self._timers[tag] = self.every(self.settings.get(setting), tag)

    def close(self):
        """Leave the broker cleanly (host shutdown): offline is published, then DISCONNECT."""
        self.session.close()

    def poll(self, budget_ms):
        self.session.poll()

    def _log_line(self, level, text):
        if level >= m.WARNING or (level >= m.INFO and mt.debug_on(self.settings, mt.DBG_INFO_LOG)):
            self._ring.add(text)

    # --- connection ----------------------------------------------------------------------------
    def _connect(self):
        self._identity()
        self.session.connect(self.config(), self.prefix, self._command_topics())

    def _command_topics(self):
        # One wildcard: an unknown or misspelt topic under the prefix gets an error reply (the
        # unit also hears its own telemetry back and drops it by name), and the SUBSCRIBE packet
        # is a few bytes instead of one entry per setting (~1.5 KB to build at every connect).
        return ("#",)

    def _on_connected(self):
        # A snapshot of everything a late subscriber needs, then whatever waited.
        self._pub("availability", "online")
        self._pub("fwversion", VERSION)
        for name in ("breaker", "plugandcharge"):
            self._pub(name, str(self.settings.get(name)))
        for sub, v in (("state", self.plug), ("enable", self.enable), ("connection", self._link)):
            if v is not None:
                self._pub(sub, str(v))
        self._report("settings")
        self._pub("ip", self.port.ip())
        if self.settings.get("ha_discovery"):
            self._ha_next = 0
            self._ha_remove = False
        self.post(m.NET_STATUS, True)

    def _reconfigure(self):
        """Broker or identity changed: leave the old session cleanly and connect with the new one."""
        if self.session.reconfigure(self.config(), RECONFIG_DELAY_MS):
            self.post(m.NET_STATUS, False)

    # --- outgoing ------------------------------------------------------------------------------
    def _pub(self, sub, payload, fifo=False, retain=None):
        """Queue a publish (retained or not from mqtt_topics.RESPONSES unless given)."""
        self.session.pub(sub, payload, fifo, sub in mt.RETAINED if retain is None else retain)

    def _more(self, n):
        """Content built when sent (the session's spare budget): reports, HA configs, debug_log."""
        if not self._due and self._ha_next is None and not self._ring.due:
            return  # the idle path: nothing to build, nothing allocated
        send = self.session.send
        pre = self.prefix
        due = self._due
        if due:
            from dinamics import mqtt_reports  # loaded while reports are due (heap)

            while due and n > 0:
                name = due[0]
                send(pre + name, mqtt_reports.report_json(name, self.settings, VERSION,
                                                          self.port.ip(), self.sn),
                     name in mt.RETAINED)
                due.pop(0)
                n -= 1
            if not due:
                forget("mqtt_reports")
        if n > 0 and self._ha_next is not None:
            i = self._ha_next
            ha = _ha()
            send(ha.topic(self.sn, i), "" if self._ha_remove else ha.config(self.sn, pre[:-1], VERSION, i), True)
            i += 1
            self._ha_next = i if i < len(ha.ENTITIES) else _ha(True)
            n -= 1
        if n > 0 and self._ring.due:
            for chunk in self._ring.take():
                self._pub("debug_log", chunk, True)

    def _report(self, name):
        """settings/timers/wifi/debug JSON, built when sent so it shows the settings of that moment."""
        if name not in self._due:
            self._due.append(name)

    def _reject(self, sub, value, text):
        self.stats["rejected"] += 1
        r = st.by_topic(sub)
        if r is not None and r[st.FLAGS] & st.SECRET:
            value = "(secret, not shown)"  # a refused key or password is still (nearly) a secret
        self._pub("error", mt.error_json(sub, value, text), True)

    # --- firmware messages ---------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.TIMER:
            self._timer(payload)
        elif kind == m.LOG:
            self._log_line(payload[0], payload[1])
        elif kind == m.CT_READING:
            self._ct = payload
        elif kind == m.EVSE_CURRENT:
            self._ma, self._mv = payload
        elif kind == m.EVSE_ENERGY:
            self._ws = payload[0]
        elif kind == m.EVSE_STATE:
            en = _ENABLE_OF_STATE.get(payload[0], 2) if payload[0] != 0 else self.enable
            if en != self.enable:
                self.enable = en
                self._pub("enable", str(en))
        elif kind == m.EVSE_PLUG:
            if payload != self.plug:
                self.plug = payload
                self._pub("state", str(payload))
        elif kind == m.LINK_STATUS:  # (up, the command left unanswered when down)
            self._connection("OK" if payload[0] else "CON_ERROR_FAILED_COM :" + payload[1])
        elif kind == m.EVSE_ASYNC:
            self._pub("state_change", payload, True)
        elif kind == m.BALANCER_TARGET:
            self._target = payload[0]
            self._max_current(False)
        elif kind == m.EVSE_PILOT:
            self._pilot = payload
            self._max_current(False)
        elif kind == m.PHASES:
            if payload != self._phases:
                self._phases = payload
                self._pub("active_phases", str(payload[0]))
                self._pub("no_of_phases", str(payload[1]))
        elif kind == m.RAPI_REPLY:
            self._rapi_reply(payload)
        elif kind == m.SETTING_CHANGED:
            for name in payload:
                self._setting_changed(name, self.settings.get(name))
        elif kind == m.SETTINGS_STORED:  # the confirmations: only once a change is durable
            for name in payload:
                self._confirm(name)
        elif kind == m.SETTINGS_RESET:
            self._report("settings" if payload == st.RESET_SETTINGS else "wifi")
        elif kind == m.BALANCER_FAULT:  # (code, detail, text)
            self._reject(_FAULT_TOPIC.get(payload[0], payload[0]), payload[1], payload[2])
        elif kind == m.SETTING_REJECTED:  # (name, raw value, why)
            self._reject(_setting_topic(payload[0]), payload[1], payload[2])
        elif kind == m.ACTOR_STOPPED:
            self._reject("actor", payload, "stopped after repeated crashes")
            if payload in _LINK_ACTORS:
                self._connection("CON_ERROR_STOPPED :" + payload)
        elif kind == m.NET_UP:  # (ip, mode, ssid, ap_password): joined (sta) or setup AP (ap)
            if payload[1] == "sta":
                self._pub("ip", payload[0])  # queued: goes out with the session
                if self.settings.get("mqtt_host"):
                    self.session.kick()  # connect now, not at the end of a long back-off
        elif kind == m.NET_DOWN:  # the station lost its network: the broker socket is dead
            if self.session.connected:
                self.session.down(OSError("network lost: " + payload))
        elif kind == m.EVSE_SLOW_REPLY:
            if mt.debug_on(self.settings, mt.DBG_TIMEOUT):
                self._pub("timeout", str(payload))
        elif kind == m.LORA_AIR:  # (used ms, budget ms, window ms, frames, refused, rssi)
            self._pub("lora", '{"airtime_ms":%d,"budget_ms":%d,"window_s":%d,"frames":%d,'
                      '"refused":%d,"rssi":%d}' % (payload[0], payload[1], payload[2] // 1000,
                                                   payload[3], payload[4], payload[5]))

    def _timer(self, tag):
        if tag == T_CONNECT:
            self._connect()
        elif tag == _T_TELE:
            self._status(False)
            self._drop_inbound()
        elif tag == _T_SYNC:
            self._pub("synctime", str(self.sched.clock.epoch()))
            mem = getattr(self.port, "mem_free", None)
            self._pub("freeRAM", str((mem() if mem else 0) // 1024))
            self._pub("ip", self.port.ip())
        elif tag == _T_DLOG:
            self._ring.due = True

    def _connection(self, text):
        self._link = text
        self._pub("connection", text)

    def _max_current(self, force):
        t = self._target
        if t is None and self._pilot is None:
            return
        v = 0 if t == 0 else (self._pilot if self._pilot is not None else t)
        if force or v != self._mcc:
            self._mcc = v
            self._pub("max_charging_current", str(v))

    def _status(self, force):
        ct = self._ct
        if ct is not None:
            amps, valid = ct[1], ct[2]
            for i in range(3):
                if valid & (1 << i):
                    a = amps[i]
                    last = self._sent_ct[i]
                    if force or last is None or abs(a - last) >= CT_BAND or (a == 0 and last != 0):
                        self._sent_ct[i] = a
                        self._pub(_CT_TOPICS[i], mt.amps_text(a))
        if self._ma is not None:
            ma = max(self._ma, 0)
            self._number("charging_current", ma / 1000, CT_BAND, None, force)
            mv = self._mv if self._mv and self._mv > 0 else 230000
            # whole numbers all the way: the same watts on a board (single-precision floats)
            self._number("power", ma * mv * self._nphases() // 1000000, POWER_BAND, "%d", force)
        if self._ws is not None:
            self._number("energy", self._ws // 3600 * self._nphases(), ENERGY_BAND, "%d", force)
        if force:
            self._max_current(True)
            if self._phases is not None:
                self._pub("active_phases", str(self._phases[0]))
                self._pub("no_of_phases", str(self._phases[1]))
            for sub, v in (("state", self.plug), ("enable", self.enable), ("connection", self._link)):
                if v is not None:
                    self._pub(sub, str(v))

    def _nphases(self):
        p = self._phases
        return p[1] if p is not None and p[1] > 0 else 1

    def _number(self, sub, v, band, fmt, force):
        last = self._sent.get(sub)
        if force or last is None or abs(v - last) >= band or (v == 0 and last != 0):
            self._sent[sub] = v
            self._pub(sub, mt.amps_text(v) if fmt is None else fmt % v)

    def _confirm(self, name):
        """A stored setting: its echo topic (breaker, plugandcharge) and its report JSON."""
        if name not in st.NAMES:
            return
        if st.row(name)[st.FLAGS] & st.ECHO:
            self._pub(name, str(self.settings.get(name)))
        self._report(mt.group_of(name))  # settings / timers / debug / wifi

    def _setting_changed(self, name, value):
        if name not in st.NAMES:
            return
        if name == "timer":
            self._arm(_T_TELE, "timer")
        elif name == "timer10":
            self._arm(_T_DLOG, "timer10")
        elif name == "timer12":
            self._arm(_T_SYNC, "timer12")
        elif name == "ha_discovery":
            self._ha_next = 0
            self._ha_remove = not value
        elif name in _NET_NAMES:
            self._identity()
            if self.config() != self.session.cfg:
                self._reconfigure()


def _setting_topic(name):
    """The topic a rejected setting is reported under: its set_* topic, else its name."""
    if name in st.NAMES:
        return st.row(name)[st.TOPIC] or name
    return name
