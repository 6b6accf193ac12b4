"""The web UI with the other pieces, in virtual time: the LoRa airtime ledger (lora.air) in
/api/status as on the MQTT `lora` topic, and the unit LCD's lines (lcd.shown)."""
from dinamics import messages as m
from hil.recorder import Recorder
from hil.world import World


def test_lora_airtime_in_api_status_when_lora_is_on():
    w = World(link="lora", port_kwargs={"web_port": 0})
    try:
        rec = w.sched.add(Recorder("airrec", (m.LORA_AIR,), 16))
        st = w.app.web.status()
        assert "lora" in st and st["lora"] is None  # lora on, no ledger yet
        assert w.run_until(lambda: rec.of(m.LORA_AIR), 8000)  # the first ledger comes soon
        air = rec.of(m.LORA_AIR)[-1]
        lora = w.app.web.status()["lora"]
        assert lora == {"airtime_ms": air[0], "budget_ms": air[1], "window_s": air[2] // 1000,
                        "frames": air[3], "refused": air[4], "rssi": air[5]}
        assert lora["frames"] > 0 and 0 < lora["airtime_ms"] < lora["budget_ms"] == 36000
        w.set("lora", 0)  # back on the cable: the ledger leaves the page
        w.run_for(200)
        assert "lora" not in w.app.web.status()
    finally:
        w.close()


def test_the_unit_lcd_lines_in_api_status():
    from hil.hd44780 import FakeI2C, attach

    bus = FakeI2C()
    glass = attach(bus, "pcf8574")
    w = World(port_kwargs={"web_port": 0, "i2c": bus})
    try:
        assert "lcd" not in w.app.web.status()
        assert w.run_until(lambda: glass.lines()[0].strip() and
                           w.app.web.status().get("lcd") == glass.lines(), 10000)
        w.set("lcd_text_s", 30)
        w.sched.post(m.LCD_TEXT, "hello from MQTT")
        assert w.run_until(lambda: "hello from MQTT" in " ".join(w.app.web.status()["lcd"]), 3000), (
            w.app.web.status()["lcd"])
    finally:
        w.close()


def _joined_radio():
    from hil.sim_radio import SimRadio

    radio = SimRadio()
    radio.add("home", password="homepass1")
    radio.connected, radio._ssid, radio._ip = True, "home", "192.168.1.77"  # CircuitPython joined
    return radio


def test_a_network_joined_before_code_py_reaches_every_actor_and_the_web_listens():
    """A board whose settings.toml let CircuitPython join before code.py (and the VM gate's shim):
    the wifi actor adopts it at start; its net.up must reach the actors added after it too (the
    web, the lcd), or the web UI never listens on a board."""
    from hil.hd44780 import FakeI2C, attach

    bus = FakeI2C()
    attach(bus, "pcf8574")
    w = World(port_kwargs={"radio": _joined_radio(), "i2c": bus, "web_port": 0})
    try:
        w.run_for(100)
        up = ("192.168.1.77", "sta", "home", "")
        assert w.app.wifi.sta_up and w.app.web.net == up and w.app.lcd.net == up
    finally:
        w.close()


def test_the_setup_ap_after_a_hung_join_reaches_the_web_and_the_lcd():
    from dinamics.store import SlotStore
    from hil.hd44780 import FakeI2C, attach
    from hil.host_fs import DirFs
    from hil.sim_radio import SimRadio
    import tempfile

    state = tempfile.mkdtemp(prefix="dinamics-integ-")
    SlotStore(DirFs(state), "wifiap").save({"try": "home", "pw": "abcdefgh23"})  # reset mid-join
    bus = FakeI2C()
    attach(bus, "pcf8574")
    w = World(state_dir=state, port_kwargs={"radio": SimRadio(), "i2c": bus, "web_port": 0})
    try:
        w.run_for(100)
        assert w.app.wifi.ap_on and w.app.wifi.stats["hangs"] == 1
        assert w.app.web.net is not None and w.app.web.net[1] == "ap"
        assert w.app.lcd.net is not None and w.app.lcd.net[1] == "ap"
    finally:
        w.close()
