"""mqtt_bridge: the unit on an MQTT broker, as the seed README specifies (topic prefix
Dinamics/<SN>/; tables in dinamics.settings and dinamics.mqtt_topics; reference docs/mqtt-topics.md).

In: every settings topic (set_*) goes to the settings actor as `setting.set` (the only writer; it
answers `setting.changed` or `error`), commands and requests (dinamics.mqtt_topics.COMMANDS) are
validated here and become messages (charge.command, rapi.request, …). Anything rejected gets a JSON
reply on Dinamics/<SN>/error and changes nothing. An empty payload is ignored (that is how a
retained message is cleared). A retained copy of a one-shot command (delivered at connect) is
refused, so nothing repeats and nothing loops; a retained set_* value is idempotent and applied.

Out: telemetry from the firmware's messages (CT, EVSE, balancer, link), state topics retained
(state, enable, connection, breaker, fwversion, settings, availability), responses, debug_log
(log lines split into messages < 200 characters), synctime/freeRAM/ip on timer12, Home Assistant
discovery. While the broker is away telemetry is coalesced (latest value per topic wins) and
responses wait in a bounded FIFO; the session is clean, so the broker keeps no commands for us and
nothing is replayed.

Never blocks the scheduler (adafruit_minimqtt caveats, see docs/mqtt.md):
- one connection attempt per timer shot, `connect_retries=1`, our own capped exponential backoff
  with jitter; TCP connect bounded by CONNECT_TIMEOUT_S, CONNACK/SUBACK by RECV_TIMEOUT_S;
- poll() reads at most MAX_PACKETS_PER_POLL packets and only what has arrived: the first byte of a
  packet is read without waiting (socket wrapper `quick`), the rest with SOCKET_TIMEOUT_S;
- a socket at EOF raises at once (MiniMQTT alone spins until recv_timeout), keep-alive pings do
  not wait for the answer (a missing PINGRESP takes the link down later), any exception = down.
This uses a few MiniMQTT internals (_wait_for_msg, _sock_exact_recv, _send_bytes, _sock,
_last_msg_sent_timestamp, _close_socket) of the pinned 8.1.0; tests/test_mqtt_bridge.py checks
they exist.

Board port: socket_pool = socketpool.SocketPool(wifi.radio), ssl_context = ssl.create_default_context(),
mac = wifi.radio.mac_address (or microcontroller.cpu.uid), mem_free = gc.mem_free,
ip() = str(wifi.radio.ipv4_address). The host port provides the same from the stdlib.
"""

import errno
import os

from adafruit_ticks import ticks_diff, ticks_ms

from dinamics import ha_discovery as ha
from dinamics import messages as m
from dinamics import mqtt_topics as mt
from dinamics import rapi
from dinamics import settings as st
from dinamics.mailbox import Actor
from dinamics.mqtt_client import (RECV_TIMEOUT_S, SOCKET_TIMEOUT_S, NonBlockingPool, TlsWrapper,
                                   client_class)
from dinamics.version import VERSION

KEEPALIVE_S = 60
PING_TIMEOUT_MS = 15000  # no PINGRESP this long after a ping: the connection is dead
BACKOFF_FIRST_MS = 1000
BACKOFF_MAX_MS = 60000
RECONFIG_DELAY_MS = 200
MAX_PACKETS_PER_POLL = 8
MAX_SENDS_PER_POLL = 12
FIFO_MAX = 64  # responses waiting for the broker
LOG_RING_MAX = 40  # log lines waiting for debug_log
LOG_FLUSH_CHARS = 190  # flush debug_log early when this much is waiting (seed)
CT_BAND = 0.15  # A
POWER_BAND = 100  # W
ENERGY_BAND = 100  # Wh

_CT_TOPICS = ("current1", "current2", "current3")
_NET_NAMES = ("serial", "mqtt_host", "mqtt_port", "mqtt_user", "mqtt_pass", "mqtt_tls")
_ENABLE_OF_STATE = {rapi.STATE_DISABLED: 1, rapi.STATE_SLEEP: 3}
_RESPONSE_OF_TAG = {"mqtt:rapi": "rapi_response", "mqtt:S3": "responseST", "mqtt:SH": "responseSH",
                    "mqtt:lcd": "responseLCD", "mqtt:erase": "responseEraseLCD"}


def _jitter(ms):
    return ms + (os.urandom(1)[0] * ms) // 1024  # up to +25 %


class MqttBridge(Actor):
    name = "mqtt_bridge"
    subscribes = (m.SETTING_CHANGED, m.ERROR, m.MQTT_OUT, m.CT_READING, m.EVSE_STATE,
                  m.EVSE_ASYNC, m.EVSE_CURRENT, m.EVSE_ENERGY, m.EVSE_PLUG, m.LINK_STATUS,
                  m.BALANCER_TARGET, m.RAPI_REPLY, m.PHASES, m.SETTINGS_RESET)
    polls = True
    inbox_size = 48

    def __init__(self, settings, port, app=None):
        super().__init__()
        self.settings = settings
        self.port = port
        self.app = app
        self._pool = NonBlockingPool(port.socket_pool)
        self._client_cls = client_class()  # import MiniMQTT now, not inside a scheduler pass
        self.stats = {"connects": 0, "connect_failures": 0, "downs": 0, "published": 0,
                      "published_bytes": 0, "received": 0, "rejected": 0, "handler_errors": 0,
                      "fifo_dropped": 0, "log_lost": 0, "worst_connect_ms": 0}
        self._ring = []
        self._ring_chars = 0
        self._tapped = None
        self.client = None
        self.connected = False
        self.reset()

    # --- lifecycle -----------------------------------------------------------------------------
    def reset(self):
        self._close_client()
        self.connected = False
        self.prefix = ""
        self.sn = ""
        self._cfg = None
        self._backoff = BACKOFF_FIRST_MS
        self._conn_timer = None
        self._timers = {}
        self._failing = False
        self._latest = {}  # topic suffix -> (payload, retain): newest wins
        self._fifo = []  # (topic suffix, payload, retain) in order
        self._due = []  # reports to build at send time: settings, timers, wifi, debug
        self._limit_vals = {"mqtt:S3": [], "mqtt:SH": []}
        self._ha_next = None  # index of the next HA config to send, None = nothing to do
        self._ha_remove = False
        self._log_due = False
        self._lcd = {}  # tag -> [replies pending, reply text to publish]
        # what the unit knows, and what it last published
        self._ct = None
        self._sent_ct = [None, None, None]
        self._ma = None
        self._mv = 0
        self._ws = None
        self._phases = None
        self._target = None
        self.plug = None  # 0 not connected, 1 connected, 2 unknown
        self.enable = None
        self._link = None
        self._sent = {}  # charging_current / power / energy -> last published number

    def start(self):
        self._install_log_tap()
        self._identity()
        self._arm("tele", "timer")
        self._arm("sync", "timer12")
        self._arm("dlog", "timer10")
        if self.settings.get("mqtt_host"):
            self._schedule_connect(1)

    def _identity(self):
        self.sn = mt.serial_number(self.settings, getattr(self.port, "mac", b"\x00" * 6))
        self.prefix = "Dinamics/" + self.sn + "/"

    def _config(self):
        g = self.settings.get
        return (self.sn, g("mqtt_host"), g("mqtt_port"), g("mqtt_user"), g("mqtt_pass"), g("mqtt_tls"))

    def _arm(self, tag, setting):
        old = self._timers.get(tag)
        if old is not None:
            self.cancel(old)
        self._timers[tag] = self.every(self.settings.get(setting), tag)

    def close(self):
        """Leave the broker cleanly (host shutdown): offline is published, then DISCONNECT."""
        c = self.client
        if c is not None and self.connected:
            try:
                c.publish(self.prefix + "availability", "offline", True)
                c.disconnect()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self._close_client()
        self.connected = False
        try:
            from adafruit_connection_manager import connection_manager_close_all
            connection_manager_close_all(self._pool, release_references=True)
        except Exception:  # noqa: BLE001
            pass

    # --- log tap for debug_log -----------------------------------------------------------------
    def _install_log_tap(self):
        sched = self.sched
        if sched.console is self._tapped and self._tapped is not None:
            return
        inner = sched.console

        def tap(level, text):
            if inner is not None:
                inner(level, text)
            self._log_line(level, text)

        self._tapped = tap
        sched.console = tap

    def _log_line(self, level, text):
        if level < m.WARNING and not (level >= m.INFO and mt.debug_on(self.settings, mt.DBG_INFO_LOG)):
            return
        ring = self._ring
        if len(ring) >= LOG_RING_MAX:
            self._ring_chars -= len(ring.pop(0))
            self.stats["log_lost"] += 1
        ring.append(text)
        self._ring_chars += len(text) + 2
        if self._ring_chars > LOG_FLUSH_CHARS:
            self._log_due = True

    # --- connection ----------------------------------------------------------------------------
    def _schedule_connect(self, ms):
        self.cancel(self._conn_timer)
        self._conn_timer = self.after(ms, "connect")

    def _connect(self):
        self._conn_timer = None
        if self.connected:
            return
        self._identity()
        cfg = self._config()
        self._cfg = cfg
        sn, host, port, user, password, tls = cfg
        if not host:
            return
        t0 = ticks_ms()
        try:
            ctx = None
            if tls:
                ctx = getattr(self.port, "ssl_context", None)
                if ctx is None:
                    raise ValueError("TLS needs an ssl context on this port")
                ctx = TlsWrapper(ctx)
            c = self._client_cls(
                broker=host, port=port, username=user or None,
                password=(password or "") if user else None, client_id="Dinamics-" + sn,
                is_ssl=bool(tls), keep_alive=KEEPALIVE_S, recv_timeout=RECV_TIMEOUT_S,
                socket_pool=self._pool, ssl_context=ctx, use_binary_mode=True,
                socket_timeout=SOCKET_TIMEOUT_S, connect_retries=1)
            c.will_set(self.prefix + "availability", "offline", True, 0)
            c.on_message = self._on_client_message
            self.client = c
            c.connect(clean_session=True)
            # Retained set_*/commands may arrive inside subscribe(); on_mqtt handles them there.
            c.subscribe([(self.prefix + t, 0) for t in self._command_topics()])
        except Exception as e:  # noqa: BLE001 - any failure: close, back off, try again
            self.connected = False
            self._close_client()
            self.stats["connect_failures"] += 1
            wait = _jitter(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_MS)
            level = m.DEBUG if self._failing else m.WARNING
            self._failing = True
            self.log(level, "broker %s:%d unavailable (%s); retry in %d ms" % (host, port, _why(e), wait))
            self._schedule_connect(wait)
            return
        finally:
            took = ticks_diff(ticks_ms(), t0)
            if took > self.stats["worst_connect_ms"]:
                self.stats["worst_connect_ms"] = took
        self.connected = True
        self.stats["connects"] += 1
        self._failing = False
        self._backoff = BACKOFF_FIRST_MS
        self.log(m.INFO, "connected to %s:%d as %s" % (host, port, self.prefix[:-1]))
        self._on_connected()

    def _command_topics(self):
        out = [r[st.TOPIC] for r in st.TABLE if r[st.TOPIC]]
        out.extend(r[1] for r in mt.COMMANDS)
        return out

    def _on_connected(self):
        # A snapshot of everything a late subscriber needs, then whatever waited.
        self._pub("availability", "online")
        self._pub("fwversion", VERSION)
        for name in ("breaker", "plugandcharge"):
            self._pub(name, str(self.settings.get(name)))
        if self.plug is not None:
            self._pub("state", str(self.plug))
        if self.enable is not None:
            self._pub("enable", str(self.enable))
        if self._link is not None:
            self._pub("connection", self._link)
        self._report("settings")
        self._pub("ip", self._ip())
        if self.settings.get("ha_discovery"):
            self._ha_next = 0
            self._ha_remove = False
        self.post(m.NET_STATUS, True)

    def _close_client(self):
        c = self.client
        self.client = None
        if c is None:
            return
        try:
            c._close_socket()
        except Exception:  # noqa: BLE001 - the socket may already be gone
            pass
        c._is_connected = False

    def _down(self, exc):
        self.stats["downs"] += 1
        self.connected = False
        self._close_client()
        self.log(m.WARNING, "broker connection lost (%s)" % _why(exc))
        self.post(m.NET_STATUS, False)
        self._backoff = BACKOFF_FIRST_MS
        self._schedule_connect(_jitter(BACKOFF_FIRST_MS))

    def poll(self, budget_ms):
        if not self.connected:
            return
        c = self.client
        try:
            c.poll(MAX_PACKETS_PER_POLL)
            if c.ping_at is not None and ticks_diff(ticks_ms(), c.ping_at) > PING_TIMEOUT_MS:
                raise OSError(errno.ETIMEDOUT, "no PINGRESP")
            if self.connected:
                self._flush()
        except Exception as e:  # noqa: BLE001 - anything from the socket: reconnect
            if self.connected:
                self._down(e)

    # --- outgoing ------------------------------------------------------------------------------
    def _pub(self, sub, payload, fifo=False, retain=None):
        """Queue a publish. Telemetry/state (fifo False) coalesces per topic; responses keep order.
        Retained or not comes from mqtt_topics.RESPONSES unless given."""
        if retain is None:
            retain = sub in mt.RETAINED
        if fifo:
            if len(self._fifo) >= FIFO_MAX:
                self._fifo.pop(0)
                self.stats["fifo_dropped"] += 1
            self._fifo.append((sub, payload, retain))
        else:
            self._latest[sub] = (payload, retain)

    def _send(self, topic, payload, retain):
        self.client.publish(topic, payload, retain)
        self.stats["published"] += 1
        self.stats["published_bytes"] += len(topic) + len(payload)

    def _flush(self):
        n = MAX_SENDS_PER_POLL
        pre = self.prefix
        fifo = self._fifo
        while fifo and n > 0:
            sub, payload, retain = fifo[0]
            self._send(pre + sub, payload, retain)
            fifo.pop(0)
            n -= 1
        latest = self._latest
        while latest and n > 0:
            sub, item = latest.popitem()
            try:
                self._send(pre + sub, item[0], item[1])
            except Exception:
                latest[sub] = item  # keep it for the next connection
                raise
            n -= 1
        due = self._due
        while due and n > 0:
            name = due[0]
            if name == "settings":
                text = mt.settings_json(self.settings, VERSION)
            elif name == "timers":
                text = mt.timers_json(self.settings)
            elif name == "debug":
                text = mt.debug_json(self.settings)
            else:
                text = mt.wifi_json(self.settings, self._ip(), self.sn)
            self._send(pre + name, text, name in mt.RETAINED)
            due.pop(0)
            n -= 1
        if n > 0 and self._ha_next is not None:
            i = self._ha_next
            self._send(ha.topic(self.sn, i),
                       "" if self._ha_remove else ha.config(self.sn, pre[:-1], VERSION, i), True)
            i += 1
            self._ha_next = i if i < len(ha.ENTITIES) else None
            n -= 1
        if n > 0 and self._log_due:
            self._flush_log()

    def _flush_log(self):
        self._log_due = False
        ring = self._ring
        if not ring:
            return
        lost = self.stats["log_lost"]
        texts = ring[:]
        del ring[:]
        self._ring_chars = 0
        if lost:
            texts.insert(0, "(%d log lines lost)" % lost)
            self.stats["log_lost"] = 0
        for chunk in mt.split_log(texts):
            self._pub("debug_log", chunk, True)

    def _report(self, name):
        """settings/timers/wifi/debug JSON, built when sent so it shows the settings of that moment."""
        if name not in self._due:
            self._due.append(name)

    def _reject(self, sub, value, text):
        self.stats["rejected"] += 1
        self._pub("error", mt.error_json(sub, value, text), True)

    # --- incoming ------------------------------------------------------------------------------
    def _on_client_message(self, client, topic, message):
        self.on_mqtt(topic, message, bool(client.header & 1))

    def on_mqtt(self, topic, payload, retained=False):
        """Entry point for every received message (the MiniMQTT callback calls this)."""
        self.stats["received"] += 1
        try:
            self._dispatch(topic, payload, retained)
        except Exception as e:  # noqa: BLE001 - a bad message must not cost the connection
            self.stats["handler_errors"] += 1
            self.log(m.ERROR_LEVEL, "handling %s failed: %s %s" % (topic, type(e).__name__, e))

    def _dispatch(self, topic, payload, retained):
        pre = self.prefix
        if not topic.startswith(pre):
            return
        sub = topic[len(pre):]
        if isinstance(payload, (bytes, bytearray)):
            try:
                text = bytes(payload).decode("utf-8")
            except UnicodeError:
                self._reject(sub, payload, "not UTF-8 text")
                return
        else:
            text = payload
        if not text:
            return  # an empty message clears a retained one: nothing to do
        if mt.debug_on(self.settings, mt.DBG_ECHO):
            self.log(m.INFO, "in %s%s = %s" % (sub, " (retained)" if retained else "", text[:60]))
        r = st.by_topic(sub)
        if r is not None:
            if not self.post(m.SETTING_SET, (r[st.NAME], text, "mqtt")):
                self._reject(sub, text, "busy: not applied, send it again")
            return
        c = mt.command(sub)
        if c is None:
            self._reject(sub, text, "unknown topic")
            return
        if retained and c[st.FLAGS] & mt.ONESHOT:
            self._reject(sub, text, "retained command not executed (clear it with an empty retained message)")
            return
        try:
            v = st.parse(c, text)
        except ValueError as e:
            self._reject(sub, text, str(e))
            return
        self._command(sub, v, text)

    def _command(self, sub, v, text):
        if sub == "get_status":
            self._status(True)
        elif sub[:4] == "get_":
            self._report(sub[4:])
        elif sub == "rapi_request":
            self._rapi_request(text)
        elif sub == "set_enable":
            self._post_or_reject(sub, text, m.CHARGE_COMMAND, v)
        elif sub == "set_t_limit" or sub == "set_e_limit":
            if self.plug != 1:
                why = "link to the EVSE is down" if self.plug == 2 or self.plug is None else "no vehicle connected"
                self._reject(sub, text, "only with a vehicle connected: " + why)
                return
            cmd = "S3" if sub == "set_t_limit" else "SH"
            if self._post_or_reject(sub, text, m.RAPI_REQUEST, ("mqtt:" + cmd, cmd, (v,))):
                self._limit_vals["mqtt:" + cmd].append(text)
        elif sub == "set_lcd":
            self._lcd_write(sub, text, "mqtt:lcd", rapi.fp_commands(v))
        elif sub == "erase_lcd":
            self._lcd_write(sub, text, "mqtt:erase", rapi.erase_commands())
        elif sub == "delete_settings" or sub == "delete_wifi":
            reset = st.RESET_SETTINGS if sub == "delete_settings" else st.RESET_WIFI
            # The reply (the report) follows the settings actor's settings.reset.
            self._post_or_reject(sub, text, m.SETTING_SET, (reset, text, "mqtt"))
        else:  # set_update, set_update_spiffs
            self._reject(sub, text, "over-the-air update is not supported; update over USB")

    def _post_or_reject(self, sub, text, kind, payload):
        if not self.post(kind, payload):
            self._reject(sub, text, "busy: not executed, send it again")
            return False
        return True

    def _rapi_request(self, text):
        try:
            rapi.build_raw(text, 0x41)  # the link adds an id: check the length with one
        except ValueError as e:
            self._reject("rapi_request", text, str(e))
            return
        toks = [t for t in text.split(" ") if t]
        cmd = toks[0]
        if not mt.rapi_allowed(cmd):
            self._reject("rapi_request", text, "command %s not allowed over MQTT (allowed: G*, %s)"
                         % (cmd, ",".join(mt.RAPI_SETTERS)))
            return
        self._post_or_reject("rapi_request", text, m.RAPI_REQUEST,
                             ("mqtt:rapi", cmd, tuple(toks[1:]) or None))

    def _lcd_write(self, sub, text, tag, cmds):
        entry = self._lcd.get(tag)
        if entry is None:
            entry = self._lcd[tag] = [0, None]
        for cmd, args in cmds:
            if not self.post(m.RAPI_REQUEST, (tag, cmd, args)):
                self._reject(sub, text, "busy: LCD text incomplete, send it again")
                break
            entry[0] += 1
        if entry[0] == 0:
            del self._lcd[tag]

    # --- firmware messages ---------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.TIMER:
            self._timer(payload)
        elif kind == m.CT_READING:
            self._ct = payload
        elif kind == m.EVSE_CURRENT:
            self._ma, self._mv = payload
        elif kind == m.EVSE_ENERGY:
            self._ws = payload[0]
        elif kind == m.EVSE_STATE:
            self._evse_state(payload)
        elif kind == m.EVSE_PLUG:
            self._set_plug(payload)
        elif kind == m.LINK_STATUS:
            self._link = payload[1]
            self._pub("connection", payload[1])
            if not payload[0]:
                self._set_plug(2)
        elif kind == m.EVSE_ASYNC:
            self._pub("state_change", payload, True)
        elif kind == m.BALANCER_TARGET:
            if payload[0] != self._target:
                self._target = payload[0]
                self._pub("max_charging_current", str(payload[0]))
        elif kind == m.PHASES:
            if payload != self._phases:
                self._phases = payload
                self._pub("active_phases", str(payload[0]))
                self._pub("no_of_phases", str(payload[1]))
        elif kind == m.RAPI_REPLY:
            self._rapi_reply(payload)
        elif kind == m.SETTING_CHANGED:
            self._setting_changed(payload[0], payload[1])
        elif kind == m.SETTINGS_RESET:
            self._report("settings" if payload == st.RESET_SETTINGS else "wifi")
        elif kind == m.ERROR:
            topic, value, text = payload
            self._reject(topic, value, text)
        elif kind == m.MQTT_OUT:
            sub, text, retain = payload
            if sub == "timeout" and not mt.debug_on(self.settings, mt.DBG_TIMEOUT):
                return
            self._pub(sub, text, False, bool(retain))

    def _timer(self, tag):
        if tag == "connect":
            self._connect()
        elif tag == "tele":
            self._status(False)
        elif tag == "sync":
            self._pub("synctime", str(self.sched.clock.epoch()))
            mem = getattr(self.port, "mem_free", None)
            self._pub("freeRAM", str((mem() if mem else 0) // 1024))
            self._pub("ip", self._ip())
        elif tag == "dlog":
            self._log_due = True

    def _ip(self):
        f = getattr(self.port, "ip", None)
        try:
            return (f() if f else "") or ""
        except Exception:  # noqa: BLE001
            return ""

    def _evse_state(self, payload):
        state, pilot, amps, vflags = payload
        if state in (rapi.STATE_B, rapi.STATE_C, rapi.STATE_D):
            self._set_plug(1)
        elif state == rapi.STATE_A:
            self._set_plug(0)
        elif vflags is not None and state in (rapi.STATE_SLEEP, rapi.STATE_DISABLED):
            self._set_plug(1 if vflags & rapi.VF_EV_CONNECTED else 0)
        if state != 0:
            en = _ENABLE_OF_STATE.get(state, 2)
            if en != self.enable:
                self.enable = en
                self._pub("enable", str(en))

    def _set_plug(self, p):
        if p != self.plug:
            self.plug = p
            self._pub("state", str(p))

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
                        self._pub(_CT_TOPICS[i], "%.2f" % a)
        if self._ma is not None:
            amps = max(self._ma, 0) / 1000
            self._number("charging_current", amps, CT_BAND, "%.2f", force)
            volts = self._mv / 1000 if self._mv and self._mv > 0 else 230
            self._number("power", int(amps * volts * self._nphases()), POWER_BAND, "%d", force)
        if self._ws is not None:
            self._number("energy", self._ws // 3600 * self._nphases(), ENERGY_BAND, "%d", force)
        if force:
            if self._target is not None:
                self._pub("max_charging_current", str(self._target))
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
            self._pub(sub, fmt % v)

    def _rapi_reply(self, payload):
        tag, ok, fields, text = payload
        sub = _RESPONSE_OF_TAG.get(tag)
        if sub is None:
            return
        if ok is None:
            out = "No response from EVSE (%s)" % text
        else:
            out = ("$OK" if ok else "$NK") + ("" if not fields else " " + " ".join(fields))
        lcd = self._lcd.get(tag)
        if lcd is not None:  # one reply for all the FP lines of one text: the first failure
            lcd[0] -= 1
            if lcd[1] is None or (ok is not True and lcd[1][:3] == "$OK"):
                lcd[1] = out
            if lcd[0] > 0:
                return
            out = lcd[1]
            del self._lcd[tag]
        self._pub(sub, out, True)
        vals = self._limit_vals.get(tag)
        if vals:
            value = vals.pop(0)
            if ok is not True:
                self._reject("set_t_limit" if tag == "mqtt:S3" else "set_e_limit", value,
                             "EVSE refused: " + out)

    def _setting_changed(self, name, value):
        if name not in st.NAMES:
            return
        r = st.row(name)
        if r[st.FLAGS] & st.ECHO:
            self._pub(name, str(value))
        group = mt.group_of(name)
        if group == "settings" or group == "wifi":
            self._report(group)
        if name == "timer":
            self._arm("tele", "timer")
        elif name == "timer10":
            self._arm("dlog", "timer10")
        elif name == "timer12":
            self._arm("sync", "timer12")
        elif name == "ha_discovery":
            self._ha_next = 0
            self._ha_remove = not value
        elif name in _NET_NAMES:
            self._identity()
            if self._config() != self._cfg:
                self._reconfigure()

    def _reconfigure(self):
        """Broker or identity changed: leave the old session cleanly and connect with the new one."""
        if self.connected:
            c = self.client
            try:
                self._flush()
                c.publish(c._lw_topic, "offline", True)
                c.disconnect()
            except Exception:  # noqa: BLE001
                pass
            self._close_client()
            self.connected = False
            self.post(m.NET_STATUS, False)
        self._cfg = self._config()
        self._backoff = BACKOFF_FIRST_MS
        if self.settings.get("mqtt_host"):
            self._schedule_connect(RECONFIG_DELAY_MS)
        else:
            self.cancel(self._conn_timer)
            self._conn_timer = None


def _why(e):
    text = str(e)
    return type(e).__name__ + (": " + text if text else "")
