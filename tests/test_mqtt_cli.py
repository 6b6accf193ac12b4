"""The command line: `python -m hil unit --broker … --serial … --state-dir …` as a real process
against the EVSE emulator process on a pty pair and a real mosquitto (settings persist across a
restart), and `python -m hil demo` printing the broker address and the topic prefix."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from hil.null_modem import NullModem
from mqtt_fixtures import Recorder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _hil(*args):
    return subprocess.Popen([sys.executable, "-m", "hil"] + list(args), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stdout.read() if proc.stdout else ""


def test_unit_cli_on_a_broker_persists_settings_in_the_state_dir(mosquitto):
    modem = NullModem().start()
    unit_end, evse_end = modem.paths
    state = tempfile.mkdtemp(prefix="dinamics-cli-")
    pre = "Dinamics/CLI01/"
    rec = Recorder(mosquitto.address, topics=(pre + "#",))
    evse = _hil("evse", "--port", evse_end)
    unit = None
    try:
        unit = _hil("unit", "--evse-port", unit_end, "--broker", "%s:%d" % mosquitto.address,
                    "--serial", "CLI01", "--state-dir", state)
        assert rec.wait(lambda: rec.last(pre + "availability") == "online", 20), _stop(unit)
        assert rec.wait(lambda: rec.last(pre + "connection") == "OK", 20), _stop(unit)
        rec.publish(pre + "set_breaker", "33")
        assert rec.wait(lambda: rec.last(pre + "breaker") == "33", 10)
        out = _stop(unit)
        assert unit.returncode == 0, out
        assert rec.wait(lambda: rec.last(pre + "availability") == "offline", 10)
        # Again with only the state dir: broker, serial and breaker come from the stored settings.
        rec.clear()
        unit = _hil("unit", "--evse-port", unit_end, "--state-dir", state)
        assert rec.wait(lambda: rec.last(pre + "availability") == "online", 20), _stop(unit)
        rec.publish(pre + "get_settings", "1")
        assert rec.wait(lambda: rec.last(pre + "settings")
                        and json.loads(rec.last(pre + "settings"))["B"] == 33, 10)
    finally:
        if unit is not None:
            _stop(unit)
        _stop(evse)
        rec.close()
        modem.close()


def test_unit_cli_rejects_a_malformed_broker_or_serial():
    """Refused before any port is opened, with the reason."""
    for args, why in ((("--broker", "host:notaport"), "broker must be HOST:PORT"),
                      (("--serial", "a/b"), "--serial: 1-12 letters")):
        p = subprocess.run([sys.executable, "-m", "hil", "unit", "--evse-port", "/nonexistent"]
                           + list(args), cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and why in p.stderr, p.stderr[-500:]


def test_demo_prints_the_broker_address_and_topic_prefix(mosquitto):
    demo = _hil("demo", "--broker", "%s:%d" % mosquitto.address, "--serial", "DEMO42")
    seen = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "mqtt_bridge: connected" in line:
                break
    finally:
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=20)[0]
    text = "".join(seen)
    assert "MQTT broker %s:%d, unit topic prefix Dinamics/DEMO42/" % mosquitto.address in text
    assert "mosquitto_sub -h %s -p %d -t 'Dinamics/DEMO42/#' -v" % mosquitto.address in text
    assert "mqtt_bridge: connected" in text, text + rest
    assert demo.returncode == 0


def test_mqtt_traffic_counts_what_the_unit_publishes_on_the_broker(mosquitto):
    """A short run of `python -m hil mqtt-traffic` (2 simulated minutes per phase)."""
    import io

    from hil.mqtt_traffic import measure

    out = io.StringIO()
    res = measure(mosquitto.address, minutes=2, out=out)
    text = out.getvalue()
    for key in ("idle_wire_bytes_per_hour", "charging_wire_bytes_per_hour", "connect_burst_wire_bytes",
                "worst_scheduler_pass_ms"):
        assert "\n%s: " % key in "\n" + text
    assert 0 < res["idle_wire_bytes_per_hour"] < 200000
    assert res["charging_wire_bytes_per_hour"] > 0
    # The car's current is what moves while charging (the house base stays within the 0.15 A band
    # over a 2-minute phase, so current1 need not be published at all).
    assert "charging_current" in res["charging_top_topics"]
    assert res["bridge_downs"] == 0
