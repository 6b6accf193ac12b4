"""dinamics.mqtt_client (our own MQTT 3.1.1 client, docs/mqtt.md) against a real mosquitto, watched
with paho: QoS 0/1 both ways with the retain bit, the last will, refused connects, a username
without a password, TLS through an ssl context, a killed broker seen at once, long packets."""
import os
import socket
import ssl
import subprocess
import time

import pytest

from dinamics.mqtt_client import Client, MqttError, NonBlockingPool
from hil.broker import Mosquitto
from mqtt_fixtures import Recorder


def _client(broker, cid="c1", **kw):
    host, port = broker.address
    return Client(host, port, cid, 60, NonBlockingPool(socket), **kw)


def _poll_until(c, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.poll(8)
        if pred():
            return True
        time.sleep(0.005)
    return pred()


def _broker(extra=(), anonymous=True):
    b = Mosquitto()
    with open(b.conf) as f:
        lines = f.read().splitlines()
    if not anonymous:
        lines = [ln for ln in lines if not ln.startswith("allow_anonymous")]
        lines.append("allow_anonymous false")
    with open(b.conf, "w") as f:
        f.write("\n".join(lines + list(extra)) + "\n")
    return b.start()


def test_qos_0_and_1_both_ways_retain_bit_will_and_pingresp(mosquitto):
    rec = Recorder(mosquitto.address, topics=("u/#",))
    got = []
    c = _client(mosquitto)
    c.will_set("u/availability", "offline", True)
    c.on_message = lambda cl, t, p: got.append((t, p, cl.header & 1))
    try:
        rec.publish("u/cmd/retained", "r1", retain=True)
        c.connect(clean_session=True)
        c.subscribe([("u/cmd/#", 0)])
        assert _poll_until(c, lambda: got)
        assert got[0] == ("u/cmd/retained", b"r1", 1)
        rec.client.publish("u/cmd/q1", b"\xff\x00bin", qos=1)
        rec.client.publish("u/cmd/q0", "x" * 1000, qos=0)  # longer than the preallocated buffer
        assert _poll_until(c, lambda: len(got) == 3)
        assert got[1] == ("u/cmd/q1", b"\xff\x00bin", 0) and got[2] == ("u/cmd/q0", b"x" * 1000, 0)
        c.publish("u/out/a", "1", True)
        c.publish("u/out/b", b"2", False, qos=1)
        assert rec.wait(lambda: rec.of("u/out/b"))
        assert ("u/out/a", "1", False) in rec.messages  # live delivery: retain cleared by broker
        c.ping()
        assert c.ping_pending
        assert _poll_until(c, lambda: not c.ping_pending)
        c._sock.raw.close()  # the unit drops off without DISCONNECT: the will goes out
        assert rec.wait(lambda: rec.last("u/availability") == "offline")
    finally:
        c._close_socket()
        rec.client.publish("u/cmd/retained", b"", retain=True)
        rec.close()


def test_refused_connect_raises_once_and_the_right_password_connects():
    b = _broker(anonymous=False)
    try:
        pw = os.path.join(b.dir, "passwd")
        open(pw, "w").close()
        subprocess.run(["mosquitto_passwd", "-b", pw, "unit", "s3cret"], check=True)
        b.stop()
        with open(b.conf, "a") as f:
            f.write("password_file %s\n" % pw)
        b.start()
        t0 = time.monotonic()
        with pytest.raises(MqttError, match="refused"):
            _client(b, username="unit", password="wrong").connect()
        with pytest.raises(MqttError, match="refused"):
            _client(b).connect()  # anonymous
        assert time.monotonic() - t0 < 2  # no retries inside connect()
        c = _client(b, username="unit", password="s3cret")
        c.connect()
        assert c._is_connected
        c.disconnect()
        assert c._sock is None
    finally:
        b.close()


def test_username_without_password(mosquitto):
    for password in (None, ""):
        c = _client(mosquitto, cid="np", username="someone", password=password)
        c.connect()
        c.subscribe([("np/#", 0)])
        c.disconnect()


def test_connect_to_nothing_fails_fast():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = Client("127.0.0.1", port, "x", 60, NonBlockingPool(socket))
    t0 = time.monotonic()
    with pytest.raises(OSError):
        c.connect()
    assert time.monotonic() - t0 < 2 and c._sock is None


def test_a_killed_broker_is_seen_at_the_next_poll():
    b = _broker()
    try:
        c = _client(b)
        c.connect()
        c.subscribe([("k/#", 0)])
        b.stop()  # SIGKILL: the kernel closes the socket
        deadline = time.monotonic() + 3
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                c.poll(8)
                time.sleep(0.01)
    finally:
        b.close()


def test_tls_through_the_ports_ssl_context(tmp_path):
    key, crt = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    os.chmod(key, 0o644)
    b = Mosquitto()
    with open(b.conf) as f:
        text = f.read()
    with open(b.conf, "w") as f:
        f.write(text + "certfile %s\nkeyfile %s\n" % (crt, key))
    b.start()
    try:
        ctx = ssl.create_default_context(cafile=crt)
        got = []
        c = _client(b, cid="tls", ssl_context=ctx)
        c.on_message = lambda cl, t, p: got.append((t, p))
        c.connect()
        assert isinstance(c._sock.raw, ssl.SSLSocket)
        c.subscribe([("tls/#", 0)])
        c.publish("tls/echo", "over tls")
        assert _poll_until(c, lambda: got == [("tls/echo", b"over tls")])
        c.disconnect()
        with pytest.raises(ssl.SSLError):  # a context that does not trust the broker
            _client(b, cid="tls2", ssl_context=ssl.create_default_context()).connect()
    finally:
        b.close()
