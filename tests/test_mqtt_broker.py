"""The unit against a real mosquitto on 127.0.0.1 (started by the tests), driven and watched with a
real paho-mqtt client, the firmware on the host port talking RAPI over a pty pair to the HIL
OpenEVSE emulator. The firmware runs on the virtual clock; the MQTT traffic is real, so waits are
event waits on what paho receives (with a wall-clock timeout), never fixed sleeps."""
import json
import random
import time

import pytest

from dinamics import messages as m
from dinamics import mqtt_topics as mt
from dinamics import settings as st
from hil.ev_model import EvModel
from mqtt_fixtures import Mosquitto, Recorder, Unit, apply_expectation, expect

_NET = tuple(r[st.NAME] for r in st.TABLE if r[st.FLAGS] & st.NET)


@pytest.fixture
def unit(mosquitto, request):
    u = Unit(mosquitto, "T%05d" % (abs(hash(request.node.name)) % 100000), build="full")
    u.wait_online()
    yield u
    u.close()


def _cases(row):
    """(payload, valid?) for one settings row: boundaries, inside, just outside, malformed."""
    t, lo, hi = row[st.TYPE], row[st.LO], row[st.HI]
    if t == st.BOOL:
        return [("1", True), ("0", True), ("2", False), ("-1", False), ("true", False)]
    if t == st.INT:
        valid = [(str(hi), True), (str(lo), True)]
        if row[st.NAME] == "c_limit":  # end high, so c_min_limit's top value is allowed later
            valid.reverse()
        return valid + [(str(lo - 1), False), (str(hi + 1), False), ("1.5", False), ("abc", False),
                        (str(lo) + "x", False)]
    if t == st.CHOICE:
        return ([(str(v), True) for v in lo]
                + [(str(max(lo) + 1), False), ("-1", False), ("x", False)])
    if t == st.BITS:
        return [("1" * hi, True), ("0" * hi, True), ("0" * (hi - 1), False), ("2" * hi, False)]
    return [("a" * hi, True), ("a" * (hi + 1), False), ("a\x01b", False)]


def test_every_set_topic_valid_boundary_and_invalid_values(unit):
    """All settings topics of the table (network ones below), each with valid, boundary and invalid
    payloads, published in one burst: every invalid one gets its error reply and changes nothing,
    every valid one is applied."""
    rows = [r for r in st.TABLE if r[st.TOPIC] and r[st.NAME] not in _NET]
    rows.sort(key=lambda r: r[st.NAME] != "c_limit")
    want = dict(unit.w.app.settings.values)
    bad = []
    for r in rows:
        for payload, valid in _cases(r):
            unit.pub(r[st.TOPIC], payload)
            if valid and not st.check_together(want, r[st.NAME], st.parse(r, payload)):
                want[r[st.NAME]] = st.parse(r, payload)
            else:  # out of range, malformed, or against a cross-field rule (e.g. TFO 1000)
                # the error topic cuts the offending value to 64 characters (mqtt_topics.error_json)
                # and never echoes a secret setting's value
                shown = payload if len(payload) <= 64 else payload[:64] + "..."
                bad.append((r[st.TOPIC], "(secret, not shown)" if r[st.FLAGS] & st.SECRET else shown))
    ok = unit.wait(lambda: len(unit.errors()) >= len(bad)
                   and unit.w.app.settings.values == want, timeout=30)
    got = sorted((e["topic"], e["value"]) for e in unit.errors())
    assert ok, (len(got), len(bad), set(bad) ^ set(got))
    assert got == sorted(bad)
    assert unit.last("breaker") == str(want["breaker"])
    assert unit.last("plugandcharge") == str(want["plugandcharge"])
    assert unit.bridge.stats["handler_errors"] == 0
    assert sum(a.crashes for a in unit.w.sched.actors) == 0


def test_network_settings_validate_and_never_leak_passwords(unit):
    bridge = unit.bridge
    for sub, raw in (("set_mqtt_port", "0"), ("set_mqtt_port", "65536"), ("set_mqtt_port", "x"),
                     ("set_mqtt_tls", "2"), ("set_mqtt_host", "h" * 65), ("set_wifi_ssid", "s" * 33),
                     ("set_wifi_pass", "p\x02")):
        unit.pub(sub, raw)
    assert unit.wait(lambda: len(unit.errors()) == 7)
    unit.pub("set_mqtt_port", str(unit.broker.port))  # the same value: no reconnect
    unit.pub("set_mqtt_host", "127.0.0.1")
    unit.pub("set_wifi_ssid", "HomeNet")
    unit.pub("set_wifi_pass", "s3cret-wifi")
    unit.pub("get_wifi", "1")
    assert unit.wait(lambda: unit.last("wifi") and json.loads(unit.last("wifi"))["wifi_pass_set"] == 1)
    wifi = json.loads(unit.last("wifi"))
    assert wifi["wifi_ssid"] == "HomeNet" and wifi["mqtt_port"] == unit.broker.port
    assert bridge.stats["connects"] == 1 and bridge.connected
    mine = [p for t, p, r in unit.rec.messages if t.split("/")[-1] not in ("set_wifi_pass",)]
    assert mine and not any("s3cret" in p for p in mine)


def test_every_get_topic(unit):
    assert unit.wait(lambda: unit.last("connection") == "OK" and unit.last("state") == "0")
    want = ("current1", "max_charging_current", "charging_current", "power", "energy", "state",
            "enable", "connection", "settings", "timers", "wifi", "debug", "rapi_response")
    unit.rec.clear()
    for sub in ("get_status", "get_settings", "get_timers", "get_wifi", "get_debug"):
        unit.pub(sub, "1")
    unit.pub("rapi_request", "GV")
    assert unit.wait(lambda: all(unit.last(s) is not None for s in want if s != "current1"))
    assert json.loads(unit.last("settings"))["B"] == 16
    assert json.loads(unit.last("timers"))["T"][7] == 30000
    assert json.loads(unit.last("debug")) == {"Debugs": [0] * 40}
    assert json.loads(unit.last("wifi"))["SN"] == unit.serial
    assert unit.last("rapi_response") == "$OK 8.2.3 5.2.1"
    assert unit.last("max_charging_current") == "16" and unit.last("enable") == "2"
    unit.pub("rapi_request", "FR")
    unit.pub("rapi_request", "SC 6")
    assert unit.wait(lambda: len(unit.errors()) == 2)
    assert all("not allowed" in e["error"] for e in unit.errors())
    assert unit.w.emu.booting is False and unit.w.emu.current_capacity == 16


def test_charge_control_lcd_and_limits_through_the_broker(unit):
    w = unit.w
    assert unit.wait(lambda: unit.last("connection") == "OK")
    # set_t_limit / set_e_limit only with a vehicle connected
    unit.pub("set_t_limit", "4")
    assert unit.wait(lambda: unit.errors())
    assert "vehicle" in unit.errors()[0]["error"]
    w.emu.plug(EvModel(max_amps=32, phases=1))
    assert unit.wait(lambda: unit.last("state") == "1")
    assert unit.wait(lambda: w.emu.state == 3, timeout=20)  # plug & charge (default) starts it
    unit.pub("set_t_limit", "4")
    unit.pub("set_e_limit", "10")
    assert unit.wait(lambda: unit.last("responseST") and unit.last("responseSH"))
    assert unit.last("responseST") == "$OK" and unit.last("responseSH") == "$OK"
    # set_enable obeyed in plug&charge mode too: off stays off
    unit.pub("set_enable", "1")
    assert unit.wait(lambda: unit.last("enable") == "1" and w.emu.state == 0xFF)
    w.run_for(60000)
    assert w.emu.state == 0xFF
    unit.pub("set_enable", "3")
    assert unit.wait(lambda: unit.last("enable") == "3" and w.emu.state == 0xFE)
    unit.pub("set_enable", "2")
    assert unit.wait(lambda: w.emu.state == 3 and unit.last("enable") == "2", timeout=20)
    # the current limit
    unit.pub("set_c_limit", "10")
    assert unit.wait(lambda: w.emu.current_capacity == 10 and unit.last("max_charging_current") == "10")
    assert unit.wait(lambda: unit.last("charging_current") not in (None, "0.00"), timeout=20)
    # the controller's LCD
    unit.pub("set_lcd", "Hello from MQTT")
    assert unit.wait(lambda: unit.last("responseLCD") == "$OK")
    assert b"Hello" in b" ".join(w.emu.lcd.values())
    unit.pub("erase_lcd", "1")
    assert unit.wait(lambda: unit.last("responseEraseLCD") == "$OK")


def test_retained_commands_present_at_connect_do_not_repeat_or_loop(mosquitto):
    serial = "RET01"
    pre = "Dinamics/%s/" % serial
    setter = Recorder(mosquitto.address, topics=("none/#",))
    for sub, raw in (("set_breaker", "20"), ("delete_settings", "1"), ("set_enable", "1"),
                     ("rapi_request", "GV"), ("erase_lcd", "1")):
        setter.publish(pre + sub, raw, retain=True)
    u = Unit(mosquitto, serial)
    try:
        u.w.set("c_limit", 12)  # a setting delete_settings would reset
        u.wait_online()
        assert u.wait(lambda: len(u.errors()) == 4 and u.w.app.settings.get("breaker") == 20)
        refused = sorted(e["topic"] for e in u.errors())
        assert refused == ["delete_settings", "erase_lcd", "rapi_request", "set_enable"]
        assert all("retained" in e["error"] for e in u.errors())
        assert u.w.app.settings.get("c_limit") == 12
        # the connection drops and comes back: the retained messages come again, still no action
        u.bridge.session.down(OSError("test: connection dropped"))
        assert u.wait(lambda: u.bridge.connected and len(u.errors()) == 8, timeout=20)
        assert u.w.app.settings.get("c_limit") == 12
        u.w.run_for(10000)
        assert u.w.emu.state != 0xFF  # set_enable 1 never ran
        assert u.bridge.stats["connects"] == 2
    finally:
        for sub in ("set_breaker", "delete_settings", "set_enable", "rapi_request", "erase_lcd"):
            setter.publish(pre + sub, "", retain=True)
        setter.close()
        u.close()


def test_broker_killed_and_restarted_mid_charge(own_mosquitto):
    """Kill -9 the broker while a car charges: the firmware keeps polling, pulsing the heartbeat
    and regulating (a new limit reaches the EVSE), no scheduler pass stalls, it reconnects when the
    broker is back and publishes the latest state (coalesced), not a replay."""
    u = Unit(own_mosquitto, "KILL1")
    w = u.w
    try:
        u.wait_online()
        w.emu.plug(EvModel(max_amps=32, phases=1))
        assert u.wait(lambda: w.emu.state == 3 and u.last("charging_current") not in (None, "0.00"),
                      timeout=20)
        u.rec.close()
        own_mosquitto.stop()
        assert u.wait_quiet(lambda: not u.bridge.connected, 5)
        w.sched.worst_pass_us = 0
        passes, sent = w.sched.passes, w.app.rapi.stats["sent"]
        w.run_for(30000)
        w.set("c_limit", 10)  # the balancer still regulates while the broker is away
        w.run_for(60000)
        worst_down_ms = w.sched.worst_pass_us / 1000
        assert w.emu.state == 3 and w.emu.current_capacity == 10
        assert w.app.rapi.up and w.app.rapi.stats["sent"] > sent + 10
        assert w.emu.heartbeat[2] == 0  # never missed a $SY pulse
        assert w.sched.passes > passes
        assert worst_down_ms < 50, worst_down_ms
        assert u.bridge.stats["connect_failures"] >= 3
        own_mosquitto.start()
        u.rec = Recorder(own_mosquitto.address, topics=(u.pre + "#",))
        assert u.wait(lambda: u.last("availability") == "online", timeout=20, ms=50)
        assert u.wait(lambda: u.last("max_charging_current") == "10")
        assert u.last("state") == "1" and u.last("connection") == "OK"
        assert u.of("max_charging_current") == ["10"]  # only the latest value, once
        assert u.bridge.stats["downs"] == 1 and u.bridge.stats["connects"] == 2
        print("broker down 90 virtual s: worst scheduler pass %.2f ms, %d connect attempts failed"
              % (worst_down_ms, u.bridge.stats["connect_failures"]))
    finally:
        u.close()


def test_real_broker_fuzz_loses_no_setting_and_answers_every_bad_input(unit):
    """500 random or malformed messages on every (non-network) topic through mosquitto."""
    rng = random.Random(1234)
    topics = [r[st.TOPIC] for r in st.TABLE if r[st.TOPIC] and r[st.NAME] not in _NET]
    topics += [c[1] for c in mt.COMMANDS if c[1] not in ("delete_wifi",)]
    alphabet = "0123456789 -+.xGSLV$^\x01é"
    assert unit.wait(lambda: unit.last("connection") == "OK")
    want = dict(unit.w.app.settings.values)
    bad = 0
    for _ in range(500):
        sub = rng.choice(topics)
        kind = rng.random()
        if kind < 0.3:
            payload = str(rng.randint(-100, 600000)).encode()
        elif kind < 0.5:
            payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        else:
            payload = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))).encode()
        exp = expect(want, sub, payload, False, plug=0)
        apply_expectation(want, exp)
        bad += exp[0] == "error"
        unit.rec.client.publish(unit.pre + sub, payload, qos=1)
    ok = unit.wait(lambda: len(unit.errors()) >= bad and unit.bridge.stats["received"] >= 500,
                   timeout=30)
    unit.w.run_for(1000)
    assert ok and len(unit.errors()) == bad, (len(unit.errors()), bad)
    assert unit.w.app.settings.values == want
    assert unit.bridge.stats["handler_errors"] == 0
    assert sum(a.crashes for a in unit.w.sched.actors) == 0
    assert unit.bridge.connected and unit.bridge.stats["downs"] == 0


def test_the_embedded_broker_serves_the_unit():
    from hil.broker import EmbeddedBroker

    b = EmbeddedBroker().start()
    try:
        u = Unit(b, "EMB01")
        try:
            u.wait_online()
            u.pub("set_breaker", "32")
            assert u.wait(lambda: u.last("breaker") == "32")
        finally:
            u.close()
    finally:
        b.stop()
