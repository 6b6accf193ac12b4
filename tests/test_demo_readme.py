"""The README's and docs/mqtt.md's exact mosquitto_pub commands against `python -m hil demo`
started as a newcomer starts it (no --broker: mosquitto on 127.0.0.1:1883). Each command must take
effect. Real processes, real mosquitto, real mosquitto-clients."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from mqtt_fixtures import Recorder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def doc_commands(path):
    text = open(os.path.join(ROOT, path)).read()
    return [re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines()
            if line.startswith("mosquitto_pub ")]


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT is no listener
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.mark.skipif(not shutil.which("mosquitto_pub"), reason="scripts/setup installs mosquitto-clients")
def test_readme_mosquitto_pub_commands_take_effect_on_the_demo():
    deadline = time.monotonic() + 10  # a demo stopped by an earlier test frees it within ~1 s
    while not port_free(1883) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not port_free(1883):
        pytest.skip("port 1883 is taken on this machine: the README's commands name it")
    demo = subprocess.Popen([sys.executable, "-m", "hil", "demo", "--seconds", "90"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rec = None
    seen = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "mqtt_bridge: connected" in line:
                break
        text = "".join(seen)
        assert "MQTT broker 127.0.0.1:1883, unit topic prefix Dinamics/DEMO00000001/" in text, text
        assert "WARNING" not in text  # mosquitto, not the embedded fallback
        pre = "Dinamics/DEMO00000001/"
        rec = Recorder(("127.0.0.1", 1883), topics=(pre + "#",))
        # as a person would: once the unit says its controller link is up (retained topic)
        assert rec.wait(lambda: rec.last(pre + "connection") == "OK", 20)
        commands = doc_commands("README.md") + doc_commands("docs/mqtt.md")
        assert any("set_c_limit -m 10" in c for c in commands)
        for cmd in commands:
            subprocess.run(shlex.split(cmd), check=True, timeout=10)
        # set_c_limit 10 is stored: the settings JSON says so
        assert rec.wait(lambda: rec.last(pre + "max_charging_current") is not None, 15)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-t", pre + "get_settings",
                        "-m", "1"], check=True, timeout=10)
        assert rec.wait(lambda: rec.last(pre + "settings")
                        and json.loads(rec.last(pre + "settings"))["MAXC"] == 10, 15)
        if any("rapi_request -m GV" in c for c in commands):
            assert rec.wait(lambda: (rec.last(pre + "rapi_response") or "").startswith("$OK 8.2.3"), 15), \
                rec.last(pre + "rapi_response")
        if any("get_status" in c for c in commands):
            assert rec.wait(lambda: rec.last(pre + "current1") is not None, 15)
        assert rec.last(pre + "error") is None
    finally:
        if rec is not None:
            rec.close()
        demo.send_signal(signal.SIGINT)
        try:
            demo.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
