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
