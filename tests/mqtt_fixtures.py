"""Shared MQTT test parts: a real mosquitto on 127.0.0.1 (own config, free port, started and killed
by the tests) and a real paho-mqtt client that records what it receives. Waiting is always on an
event with a timeout, never a fixed sleep."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Mosquitto:
    """One mosquitto process on a fixed port; stop() kills it (SIGKILL: no goodbye to clients),
    start() brings it back on the same port (retained messages are lost: no persistence)."""

    def __init__(self, port=None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="mosq-")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        lines = ["listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                 "persistence false", "log_dest none"]
        if os.geteuid() == 0:
            lines.append("user root")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    @property
    def address(self):
        return (self.host, self.port)

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % self.proc.stderr.read().decode())
            try:
                socket.create_connection(self.address, timeout=0.2).close()
                return self
            except OSError:
                # Not listening yet: wait for the process (an event), not a fixed sleep.
                try:
                    self.proc.wait(0.02)
                except subprocess.TimeoutExpired:
                    pass
        raise RuntimeError("mosquitto did not listen on %d" % self.port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


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

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

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
        self.client.loop_stop()
        self.client.disconnect()


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
