"""The unit's LCD (actors/lcd.py) against the HD44780 model on a fake I2C bus (hil/hd44780.py):
the MCP23008 backpack through the REAL adafruit_character_lcd + adafruit_mcp230xx, the PCF8574
backpack through the firmware's own driver (dinamics/lcd_driver.py), and the PCF8574 through the
real adafruit_pcf8574 + Character_LCD_Mono as well (the alternative docs/lcd.md compares).
The library's sleeps are charged to a cost counter, not slept: tests assert on the glass text,
on what reached the controller and on the blocking time a board would see per pass."""
import pytest

from actors.lcd import Lcd
from dinamics import messages as m
from dinamics.mailbox import Scheduler
from dinamics.settings import Settings
from hil.clock import VirtualClock
from hil.hd44780 import Cost, FakeI2C, attach, charge_library_sleeps

KINDS = ("pcf8574", "mcp23008")


class LcdPort:
    def __init__(self, bus):
        self.i2c_bus = lambda: bus

    def ip(self):
        return "192.168.1.20"


class Rig:
    def __init__(self, kind="pcf8574", cols=16, rows=2, attached=True, sched=None, clock=None,
                 settings=None, **values):
        self.cost = Cost()
        self.restore = charge_library_sleeps(self.cost)
        self.clock = clock or VirtualClock()
        self.logs = []
        self.sched = sched or Scheduler(self.clock, console=lambda lvl, t: self.logs.append(t))
        self.settings = settings or Settings()
        if (cols, rows) == (20, 4):
            self.settings.apply("lcd_size", 2004)
        for k, v in values.items():
            self.settings.apply(k, v)
        self.bus = FakeI2C(self.cost)
        self.kind, self.cols, self.rows = kind, cols, rows
        self.model = attach(self.bus, kind, cols=cols, rows=rows) if attached else None
        self.lcd = self.sched.add(Lcd(self.settings, LcdPort(self.bus)))
        self.pass_us = []

    def plug_display(self):
        self.model = attach(self.bus, self.kind, cols=self.cols, rows=self.rows)

    def run(self, ms=0, step=10):
        """At least one pass; `ms` of virtual time in `step` ms steps."""
        for _ in range(max(1, ms // step)):
            self.clock.advance(step if ms else 0)
            c0 = self.cost.us
            self.sched.run_once()
            self.pass_us.append(self.cost.us - c0)

    def settle(self, limit=400):
        """Passes until the glass shows what the actor wants."""
        for _ in range(limit):
            self.run()
            if not self.lcd._dirty:
                return
        raise AssertionError("the display never caught up")

    def post(self, kind, payload):
        self.sched.post(kind, payload)
        self.run()

    def lines(self):
        return self.model.lines()


@pytest.fixture
def rigs():
    made = []

    def make(*a, **kw):
        r = Rig(*a, **kw)
        made.append(r)
        return r

    yield make
    for r in reversed(made):
        r.restore()


def charging(r, amps=32, car_ma=15900):
    r.sched.post(m.EVSE_STATE, (3, 3, amps, 0))
    r.sched.post(m.EVSE_CURRENT, (car_ma, 230000))
    r.run(1000)
    r.settle()


def test_the_pcf8574_also_works_through_the_adafruit_libraries(rigs):
    """adafruit_pcf8574 pins driving Character_LCD_Mono: the actor writes through it exactly as
    through the firmware's driver (it is not used for its cost, docs/lcd.md)."""
    import dinamics.lcd_driver as drv
    from hil.hd44780 import open_pcf8574_library

    saved = drv.Pcf8574Lcd
    drv.Pcf8574Lcd = open_pcf8574_library
    try:
        r = rigs("pcf8574", 20, 4, lcd_pages=1)
        r.run()
        charging(r)
    finally:
        drv.Pcf8574Lcd = saved
    assert type(r.lcd.lcd).__name__ == "Character_LCD_Mono"
    assert r.lines()[:2] == ["charging".ljust(20), "Car 15.9A  Pilot 32A"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(16, 2), (20, 4)])
def test_both_backpacks_show_the_state_page(rigs, kind, size):
    r = rigs(kind, *size, lcd_pages=1)
    r.run()
    assert r.lcd.lcd is not None and r.model.display_on and r.model.backlight
    charging(r)
    w = size[0]
    assert r.lines()[0] == "charging".ljust(w)
    assert r.lines()[1] == ("Car 15.9A  Pilot 32A" if w == 20 else "Car 15.9A  P32A ")
    assert r.model.clears == 1  # the init's clear only


def test_no_display_keeps_it_off_and_one_plugged_in_after_boot_is_picked_up(rigs):
    r = rigs("mcp23008", attached=False)
    r.run(100)
    assert r.lcd.lcd is None and r.bus.scans == 1
    charging(r)  # nothing to write to: nothing happens
    r.plug_display()
    r.run(10000, step=100)
    assert r.lcd.lcd is not None and r.lcd.address == 0x20
    r.settle()
    assert r.lines()[0].startswith("charging")
    assert any("16x2 display at 0x20" in t for t in r.logs)


def test_a_display_that_stops_answering_is_dropped_and_found_again(rigs):
    r = rigs("pcf8574", lcd_pages=1)
    charging(r)
    r.bus.fail = True
    r.sched.post(m.EVSE_STATE, (2, 2, None, 0))
    r.run(1000)
    r.run()
    assert r.lcd.lcd is None and r.lcd.crashes == 0
    r.bus.fail = False
    r.plug_display()  # a fresh glass (power-cycled with the cable)
    r.run(10000, step=100)
    r.settle()
    assert r.lines()[0].startswith("connected")


def test_only_changed_cells_are_written_and_never_cleared(rigs):
    r = rigs("pcf8574", lcd_pages=1)
    charging(r, amps=32)
    r.model.keep_log = True
    r.sched.post(m.EVSE_PILOT, 16)  # "32" -> "16": two cells
    r.run(1000)
    r.settle()
    assert r.lines()[1] == "Car 15.9A  P16A "
    data = [b for rs, b in r.model.log if rs]
    cmds = [b for rs, b in r.model.log if not rs]
    assert data == [ord("1"), ord("6")]
    assert len(cmds) == 1 and cmds[0] & 0x80  # one cursor move, no clear/home
    r.model.log.clear()
    r.run(3000)  # nothing changed: nothing is written
    assert r.model.log == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_20x4_rewrite_spreads_over_passes_within_the_byte_bound(rigs, kind):
    r = rigs(kind, 20, 4, lcd_pages=15)
    r.settle()
    r.sched.post(m.LCD_TEXT, "X" * 80)
    bound = r.lcd._budget
    assert bound == {"pcf8574": 9, "mcp23008": 2}[kind]
    before = r.model.commands + r.model.data
    r.run()  # delivers the text (the pass polls before it delivers: nothing written yet)
    assert r.lcd._dirty
    worst = 0
    passes = 0
    while r.lcd._dirty:
        b0 = r.model.commands + r.model.data
        c0 = r.cost.us
        r.run()
        passes += 1
        worst = max(worst, r.cost.us - c0)
        assert r.model.commands + r.model.data - b0 <= bound
    assert r.lines() == ["X" * 20] * 4
    assert passes >= 80 // (bound - 1)
    assert r.model.commands + r.model.data - before <= 80 * 2
    # the bound in time (docs/lcd.md, python -m hil lcd-bench): under the CT capture's 20 ms
    assert worst < 15000


def test_fault_page_holds_until_the_fault_clears(rigs):
    r = rigs("mcp23008", lcd_pages=15)
    charging(r)
    r.post(m.LINK_STATUS, (False, "GS"))
    r.run(1000)
    r.settle()
    assert r.lines() == ["EVSE LINK DOWN  ", "no reply to GS  "]
    r.run(12000, step=100)  # pages rotate underneath; the fault stays
    r.settle()
    assert r.lines()[0] == "EVSE LINK DOWN  "
    r.post(m.LINK_STATUS, (True, ""))
    r.sched.post(m.EVSE_STATE, (6, 1, None, 0))
    r.run(1000)
    r.settle()
    assert r.lines() == ["EVSE FAULT      ", "GFCI fault      "]
    r.sched.post(m.EVSE_STATE, (3, 3, 32, 0))
    r.sched.post(m.BALANCER_FAULT, ("ct", 3500, "CT data stale"))
    r.run(1000)
    r.settle()
    assert r.lines()[0] == "CT STALE        "
    r.sched.post(m.BALANCER_FAULT, ("ct", "ok", "CT data fresh"))
    r.run(1000)
    r.settle()
    assert "STALE" not in r.model.text() and "FAULT" not in r.model.text()


def test_20x4_shows_the_fault_on_top_and_a_page_below(rigs):
    r = rigs("pcf8574", 20, 4, lcd_pages=1)
    charging(r)
    r.post(m.LINK_STATUS, (False, "GG"))
    r.run(1000)
    r.settle()
    assert r.lines()[0].strip() == "EVSE LINK DOWN"
    assert r.lines()[2].strip() == "charging"


def test_ct_page_bars_against_the_breaker_and_energy_page(rigs):
    r = rigs("pcf8574", 20, 4, lcd_pages=2 | 4, breaker=25)
    r.sched.post(m.CT_READING, (0, (12.5, 25.0, 0.0), 0b011, (0, 0, 0)))
    r.sched.post(m.EVSE_ENERGY, (3600 * 1000 * 7 + 360000, 123456))
    r.run(1000)
    r.settle()
    assert r.lines()[0] == "12.5 25.0  -.-A/ 25 "
    assert r.lines()[1] == "###... ###### ------"
    assert r.lines()[2] == "Sess  7.10 kWh      "
    assert r.lines()[3] == "Tot     123kWh      "


def test_network_page_ip_broker_setup_ap_and_wifi_down(rigs):
    r = rigs("pcf8574", lcd_pages=8)
    r.run(1000)
    r.settle()
    assert r.lines() == ["192.168.1.20    ", "MQTT none       "]  # no net.up yet: the port's IP
    r.sched.post(m.NET_UP, ("10.1.2.3", "sta", "home", ""))
    r.sched.post(m.NET_STATUS, True)
    r.run(1000)
    r.settle()
    assert r.lines() == ["10.1.2.3        ", "MQTT connected  "]
    r.sched.post(m.NET_UP, ("192.168.4.1", "ap", "Dinamics-4ED1", "k3y-7Qx2"))
    r.run(1000)
    r.settle()
    assert r.lines() == ["AP Dinamics-4ED1", "PW k3y-7Qx2     "]
    r.sched.post(m.NET_DOWN, "auth failed")
    r.run(1000)
    r.settle()
    assert r.lines() == ["WiFi down       ", "auth failed     "]


def test_pages_rotate_over_the_enabled_ones(rigs):
    r = rigs("pcf8574", lcd_pages=1 | 4)
    charging(r)
    seen = set()
    for _ in range(4):
        r.run(5000, step=100)
        r.settle()
        seen.add(r.lines()[0][:4])
    assert seen == {"char", "Sess"}


def test_text_fits_the_width_and_numbers_keep_their_width(rigs):
    r = rigs("pcf8574", lcd_pages=15, breaker=100)
    r.run()
    lcd = r.lcd
    from dinamics.lcd_pages import page_lines
    for w in (16, 20):
        widths = {}
        for st, pilot, ma, ws, wh, ct in (
                (3, 6, 0, 0, 0, (0.0, 0.0, 0.0)),
                (3, 80, 99000, 3.6e6 * 999, 10 ** 9, (150.0, 99.9, 100.0)),
                (1, 10, 5300, 1234, 5, (5.5, 0.4, 33.3))):
            lcd.state, lcd.pilot, lcd.car_ma, lcd.session_ws, lcd.total_wh = st, pilot, ma, ws, wh
            lcd.ct = (0, ct, 0b111, (0, 0, 0))
            for p in range(3):
                for i, ln in enumerate(page_lines(lcd, p, w)[:2]):
                    assert len(ln) <= w, (p, ln)
                    if p and (p, i) in widths:
                        assert len(ln) == widths[(p, i)], (p, ln)  # fixed-width fields
                    widths[(p, i)] = len(ln)
            assert len(page_lines(lcd, 0, w)[1]) <= w
    for ln in r.lines():
        assert len(ln) == 16


def test_backlight_goes_off_after_the_timeout_and_news_lights_it(rigs):
    r = rigs("mcp23008", lcd_backlight_s=5)
    charging(r)
    r.run(7000, step=100)
    assert not r.model.backlight
    r.post(m.EVSE_STATE, (2, 2, None, 0))
    r.run(1000)
    assert r.model.backlight
    r.post(m.LINK_STATUS, (False, "GS"))
    r.run(10000, step=100)
    assert r.model.backlight  # a fault keeps it on


def test_lcd_setting_off_blanks_it_and_the_address_setting_is_obeyed(rigs):
    r = rigs("pcf8574", lcd_addr=63)
    r.run(1000)
    assert r.lcd.lcd is None  # the display is at 0x27, the setting says 0x3F
    r.bus.devices[0x3F] = r.bus.devices.pop(0x27)
    r.run(10000, step=100)
    assert r.lcd.address == 0x3F
    charging(r)
    r.settings.apply("lcd", 0)
    r.run(1000)
    assert r.lcd.lcd is None and not r.model.backlight and r.model.text().strip() == ""


def test_set_lcd_and_erase_lcd_reach_both_lcds():
    """The controller's LCD gets the $FP lines as before; the unit's LCD shows the text for
    lcd_text_s, erase_lcd brings the pages back at once."""
    from mqtt_fixtures import BridgeRig

    b = BridgeRig()
    b.connect()
    r = Rig("pcf8574", sched=b.sched, clock=b.clock, settings=b.settings)
    try:
        b.settings.apply("lcd_pages", 1)
        b.settings.apply("lcd_text_s", 10)
        r.run()
        charging(r)
        text = "Charging at 16 A  tariff: low"
        assert not b.errors(b.send("set_lcd", text))
        fp = [q for q in b.requests() if q[1] == "FP"]
        toks = [t for q in fp for t in q[2][2:]]  # the controller's 16x2 gets it as before
        assert toks[:4] == [b"Charging", b"at", b"16", b"A"] and toks[-1] == b"low"
        r.settle()
        assert r.lines() == [text[:16], text[16:].ljust(16)]
        r.run(5000, step=100)
        r.settle()
        assert r.lines()[0] == text[:16]  # still there
        r.run(6000, step=100)
        r.settle()
        assert r.lines()[0].startswith("charging")  # lcd_text_s later: the pages
        assert not b.errors(b.send("set_lcd", "hello"))
        r.settle()
        assert r.lines()[0] == "hello".ljust(16)
        n = len(b.requests())
        assert not b.errors(b.send("erase_lcd", "1"))
        assert len(b.requests()) > n  # the controller's LCD is blanked with $FP
        r.settle()
        assert r.lines()[0].startswith("charging")
    finally:
        r.restore()


def test_the_hil_bench_shows_what_the_unit_does_on_the_lcd():
    """The whole bench (emulated OpenEVSE + car + house CTs, virtual time) with a 20x4 PCF8574
    display: the glass shows the state, the car's current and the CT readings the rig plays."""
    from hil.ev_model import EvModel
    from hil.house import HouseLoad
    from hil.world import World

    cost = Cost()
    restore = charge_library_sleeps(cost)
    bus = FakeI2C(cost)
    glass = attach(bus, "pcf8574", cols=20, rows=4)
    w = World(house=HouseLoad(base=(5.0, 1.0, 1.0)), port_kwargs={"i2c": bus})
    try:
        w.app.settings.apply("lcd_size", 2004)
        w.app.settings.apply("lcd_pages", 1 | 2)
        for name, value in (("breaker", 25), ("cte", 123), ("dinamics", 1)):
            w.set(name, value)
        w.emu.plug(EvModel(max_amps=16, phases=1))
        assert w.run_until(lambda: glass.lines()[0].startswith("charging"), 30000)
        assert w.run_until(lambda: "Car 16.0A" in glass.text(), 30000), glass.text()
        assert "Pilot %2dA" % w.emu.current_capacity in glass.lines()[1]  # what the controller shows
        assert w.run_until(lambda: glass.lines()[2].startswith("21.0  1.0  1.0A/ 25"), 10000), glass.text()
        assert w.app.lcd.crashes == 0
    finally:
        w.close()
        restore()


def test_lcd_bench_figures_rank_the_drivers():
    """The figures docs/lcd.md quotes come from `python -m hil lcd-bench` (charged time, not
    measured): the firmware's PCF8574 driver is many times faster than the library paths."""
    from hil.lcd_bench import per_char

    mcp, pcf, lib = per_char("mcp23008"), per_char("pcf8574"), per_char("pcf8574-lib")
    assert pcf[1] * 5 < lib[1] < mcp[1]
    assert mcp[3] == 14.0  # I2C transactions per character through adafruit_mcp230xx


@pytest.mark.parametrize("cmd", [["demo", "--no-mqtt", "--lcd", "hd44780"],
                                 ["unit", "--evse-port", "/nonexistent", "--lcd", "pcf8574:40x2"]])
def test_a_bad_lcd_option_is_one_line_and_exit_2(cmd, capsys):
    from hil.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(cmd)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lcd" in err[0]
