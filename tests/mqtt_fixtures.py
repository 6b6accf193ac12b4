"""Shared MQTT test parts: a real mosquitto on 127.0.0.1 (own config, free port, started and killed
by the tests) and a real paho-mqtt client that records what it receives. Waiting is always on an
event with a timeout, never a fixed sleep."""
import os
import socket
import threading
import time

import pytest



def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


from hil.broker import Mosquitto  # noqa: E402  (one mosquitto launcher for tests and the rig)


class Recorder:
    """A paho-mqtt 2.x client subscribed to `topics`, recording (topic, payload str, retain)."""

    def __init__(self, broker, topics=("#",), client_id=None):
        import paho.mqtt.client as paho

        self.messages = []
        self.lock = threading.Lock()
        self.event = threading.Event()
        self.bytes = 0
        self.connected = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or "rec-%d" % free_port())
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p=None: (
            [c.subscribe(t, 0) for t in topics], self.connected.set())
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(broker[0], broker[1], keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "paho could not connect"
        assert self._subscribed.wait(10), "paho subscription not acknowledged"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode("utf-8", "replace"), bool(msg.retain)))
            self.bytes += len(msg.topic) + len(msg.payload)
        self.event.set()

    def publish(self, topic, payload, retain=False, wait=True):
        """QoS 1 publish; wait=False for bursts (then flush() before relying on delivery)."""
        self._last_info = self.client.publish(topic, payload, qos=1, retain=retain)
        if wait:
            self.flush()

    def flush(self, timeout=10):
        info = getattr(self, "_last_info", None)
        if info is not None:
            info.wait_for_publish(timeout)

    def of(self, topic):
        with self.lock:
            return [p for t, p, r in self.messages if t == topic]

    def last(self, topic):
        got = self.of(topic)
        return got[-1] if got else None

    def clear(self):
        with self.lock:
            del self.messages[:]

    def wait(self, predicate, timeout=5.0, step=None):
        """Wait until predicate() holds; `step` (e.g. a world step) runs between checks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.event.clear()
            if step is not None:
                step()
                self.event.wait(0.0005)
            else:
                self.event.wait(0.05)
        return predicate()

    def close(self):
        self.client.disconnect()  # wakes the network thread at once; loop_stop then joins it
        self.client.loop_stop()


@pytest.fixture(scope="module")
def mosquitto():
    b = Mosquitto().start()
    yield b
    b.close()


@pytest.fixture
def own_mosquitto():
    """A broker for one test (it may be killed and restarted)."""
    b = Mosquitto().start()
    yield b
    b.close()


# --- the bridge alone on the virtual clock -------------------------------------------------------
class FakeClient:
    """Stands in for MiniMQTT once 'connected': records publishes, receives nothing by itself."""

    def __init__(self, lw_topic="x/availability"):
        self.sent = []
        self.ping_pending = False
        self.pings = 0
        self.silent = False
        self._is_connected = True
        self._lw_topic = lw_topic
        self.closed = False

    def poll(self, max_packets):
        return 0

    def ping(self):
        self.pings += 1
        self.ping_pending = self.silent  # a live broker answers at once; a silent one never
        return []

    def publish(self, topic, payload, retain=False):
        self.sent.append((topic, payload, bool(retain)))

    def disconnect(self):
        self.closed = True

    def _close_socket(self):
        self.closed = True


class NoNetwork:
    """A socket pool where every name lookup fails at once (the fuzz sets random broker hosts)."""
    SOCK_STREAM = 1
    AF_INET = 2

    @staticmethod
    def getaddrinfo(*a):
        raise OSError("no network in this test")

    @staticmethod
    def socket(*a):
        raise OSError("no network in this test")


class RigPort:
    def __init__(self, clock, mac=b"\x24\x6f\x28\xaa\xbb\xcc", pool=None):
        import socket as _socket

        self.clock = clock
        self.socket_pool = pool or _socket
        self.ssl_context = None
        self.mac = mac

    def mem_free(self):
        return 150 * 1024

    def ip(self):
        return "192.168.1.50"


class BridgeRig:
    """Scheduler + settings actor + mqtt_bridge + a sink for what the bridge asks of others.
    No broker: `connect()` gives the bridge a FakeClient, `send()` goes through on_mqtt, the same
    entry point the MiniMQTT callback uses."""

    def __init__(self, mac=b"\x24\x6f\x28\xaa\xbb\xcc", pool=None, **settings):
        from actors.mqtt_bridge import MqttBridge
        from actors.settings_actor import SettingsActor
        from dinamics import messages as m
        from dinamics.mailbox import Scheduler
        from dinamics.settings import Settings
        from dinamics.store import SlotStore
        from hil.clock import VirtualClock
        from hil.host_fs import CuttingFs

        from hil.recorder import Recorder

        def Sink():
            return Recorder("sink", (m.CHARGE_COMMAND, m.RAPI_REQUEST, m.NET_STATUS,
                                     m.SETTING_CHANGED), 4096)

        self.m = m
        self.clock = VirtualClock()
        self.logs = []
        self.sched = Scheduler(self.clock, console=lambda lvl, t: self.logs.append((lvl, t)))
        self.settings = Settings()
        for k, v in settings.items():
            self.settings.apply(k, v)
        self.fs = CuttingFs()
        self.store = SlotStore(self.fs)
        self.port = RigPort(self.clock, mac, pool)
        self.settings_actor = self.sched.add(SettingsActor(self.settings, self.store))
        self.sink = self.sched.add(Sink())
        self.bridge = self.sched.add(MqttBridge(self.settings, self.port))
        self.client = None
        self.run()

    @property
    def prefix(self):
        return self.bridge.prefix

    def requests(self):
        """The rapi.requests the bridge posted, as (tag, cmd, args): each names the bridge as
        its requester (the reply is sent back to it)."""
        out = []
        for p in self.sink.of(self.m.RAPI_REQUEST):
            assert p[0] is self.bridge
            out.append(p[1:])
        return out

    def reply(self, tag, ok, fields, text):
        """rapi_link's answer to one of the bridge's requests: sent to the bridge alone."""
        self.sched.send(self.bridge, self.m.RAPI_REPLY, (tag, ok, fields, text))

    def connect(self):
        self.client = FakeClient(self.prefix + "availability")
        s = self.bridge.session
        s.client = self.client
        s.cfg = self.bridge.config()
        s.prefix = self.prefix
        s.up()
        self.run()
        return self.client

    def run(self, ms=0, step=10):
        self.sched.run_once()
        self.sched.run_once()
        for _ in range(ms // step):
            self.clock.advance(step)
            self.sched.run_once()

    def send(self, sub, payload, retained=False):
        """One message as if from the broker; returns what the bridge published because of it."""
        n = len(self.client.sent) if self.client else 0
        if isinstance(payload, str):
            payload = payload.encode()
        self.bridge.on_mqtt(self.prefix + sub, payload, retained)
        for _ in range(4):
            self.sched.run_once()
        return self.client.sent[n:] if self.client else []

    def published(self, sub):
        return [p for t, p, r in self.client.sent if t == self.prefix + sub]

    def errors(self, out=None):
        import json

        src = out if out is not None else self.client.sent
        return [json.loads(p) for t, p, r in src if t == self.prefix + "error"]


# --- a whole unit (World: firmware + emulated EVSE on a pty pair) on a real broker ---------------
class Unit:
    """World(broker=…) plus a paho recorder of its topics. Virtual clock: the firmware runs as
    fast as the test steps it; the MQTT traffic is real."""

    def __init__(self, broker, serial, recorder=True, **world_kwargs):
        from hil.world import World

        self.broker = broker
        self.serial = serial
        self.pre = "Dinamics/%s/" % serial
        self.rec = Recorder(broker.address, topics=(self.pre + "#", "homeassistant/#")) if recorder else None
        self.w = World(broker=broker.address, serial=serial, **world_kwargs)
        self.bridge = self.w.mqtt

    def step(self, ms=10):
        self.w.step(ms)

    def wait(self, predicate, timeout=15.0, ms=10):
        return self.rec.wait(predicate, timeout, step=lambda: self.w.step(ms))

    def wait_quiet(self, predicate, timeout=15.0, ms=10):
        """Step the world until predicate() (no recorder needed, e.g. while the broker is dead)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.w.step(ms)
        return predicate()

    def wait_online(self, timeout=15.0):
        assert self.wait(lambda: self.rec.last(self.pre + "availability") == "online", timeout), \
            "unit did not come online"

    def pub(self, sub, payload, retain=False, wait=False):
        self.rec.publish(self.pre + sub, payload, retain, wait)

    def last(self, sub):
        return self.rec.last(self.pre + sub)

    def of(self, sub):
        return self.rec.of(self.pre + sub)

    def errors(self):
        import json

        return [json.loads(p) for p in self.rec.of(self.pre + "error")]

    def close(self):
        if self.rec is not None:
            self.rec.close()
        self.w.close()


# --- oracle: what the README contract says should happen to one message --------------------------
def spec_value(row, text):
    """The documented payload rules, restated independently of dinamics.settings.parse.
    -> typed value, or raises ValueError."""
    import re

    from dinamics import settings as st

    t = row[st.TYPE]
    if t == st.STR:
        if len(text) > row[st.HI] or any(ord(c) < 32 for c in text):
            raise ValueError("bad text")
        return text
    s = text.strip(" \t\r\n")
    if t == st.BITS:
        if not re.fullmatch("[01]{%d}" % row[st.HI], s):
            raise ValueError("bad bits")
        return s
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", s):
        raise ValueError("not a whole number")
    v = int(s)
    if t == st.CHOICE:
        if v not in row[st.LO]:
            raise ValueError("not allowed")
        return v
    if not row[st.LO] <= v <= row[st.HI]:
        raise ValueError("out of range")
    return v


def expect(values, sub, payload, retained=False, plug=None):
    """-> ("ignore",) | ("error",) | ("set", name, value) | ("reset", names) | ("ok", command).
    `values` is the current settings dict (for the cross-field rules)."""
    from dinamics import mqtt_topics as mt
    from dinamics import rapi_more
    from dinamics import settings as st

    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeError:
        return ("error",)
    if not text:
        return ("ignore",)
    row = st.by_topic(sub)
    if row is not None:
        try:
            v = spec_value(row, text)
        except ValueError:
            return ("error",)
        name = row[st.NAME]
        if name == "c_min_limit" and v > values["c_limit"]:
            return ("error",)
        if name == "c_limit" and v < values["c_min_limit"]:
            return ("error",)
        # issue 8: timerN x TFO <= 24 h (N = 5..9), link_silence_ms >= 2 x timer13
        polls = ("timer5", "timer6", "timer7", "timer8", "timer9")
        if name in polls and v * values["TFO"] > 86400000:
            return ("error",)
        if name == "TFO" and any(values[t] * v > 86400000 for t in polls):
            return ("error",)
        if name == "timer13" and 2 * v > values["link_silence_ms"]:
            return ("error",)
        if name == "link_silence_ms" and v < 2 * values["timer13"]:
            return ("error",)
        # issue 13: the LoRa key is empty or 32-64 hex digits (an even count)
        if name == "lora_key" and v and not __import__("re").fullmatch("([0-9a-fA-F]{2}){16,32}", v):
            return ("error",)
        return ("set", name, v)
    cmd = mt.command(sub)
    if cmd is None:
        return ("error",)
    if retained:
        return ("error",)
    try:
        v = spec_value(cmd, text)
    except ValueError:
        return ("error",)
    if sub in ("set_update", "set_update_spiffs"):
        return ("error",)
    if sub in ("set_t_limit", "set_e_limit") and plug != 1:
        return ("error",)
    if sub == "rapi_request":
        try:
            rapi_more.build_raw(text, 0x41)
        except ValueError:
            return ("error",)
        if not mt.rapi_allowed(text.split(" ")[0]):
            return ("error",)
    if sub == "delete_settings":
        return ("reset", [r[st.NAME] for r in st.TABLE if not r[st.FLAGS] & st.NET])
    if sub == "delete_wifi":
        return ("reset", list(st.WIFI_NAMES))
    return ("ok", sub, v)


def apply_expectation(values, exp):
    from dinamics import settings as st

    if exp[0] == "set":
        values[exp[1]] = exp[2]
    elif exp[0] == "reset":
        for name in exp[1]:
            values[name] = st.row(name)[st.DEFAULT]
