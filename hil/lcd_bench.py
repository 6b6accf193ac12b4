"""python -m hil lcd-bench: what the unit's LCD costs a scheduler pass (docs/lcd.md).

Time is charged, not measured on a board: the HD44780 model's fake I2C bus (hil/hd44780.py) adds
the bits of every transaction at 100 kHz plus CALL_OVERHEAD_US per transaction, and the library's
time.sleep() calls (1 ms per byte) are added instead of slept.

1. Per character, per backpack and driver: a 20-character row written as the actor writes it
   (one cursor move + the characters), and the init.
2. The worst pass with a display attached: the whole bench (emulated OpenEVSE + car + house CTs,
   virtual time) with every page, a car session, set_lcd text over the whole glass and a fault;
   per scheduler pass the display's charged time; with the worst pass the firmware itself took on
   this PC (real ms, the display's sleeps excluded).
"""
from hil.hd44780 import CALL_OVERHEAD_US, Cost, FakeI2C, attach, charge_library_sleeps, open_pcf8574_library

DRIVERS = (("mcp23008", "MCP23008, adafruit_character_lcd (firmware)"),
           ("pcf8574", "PCF8574, dinamics.lcd_driver.Pcf8574Lcd (firmware)"),
           ("pcf8574-lib", "PCF8574, adafruit_pcf8574 + Character_LCD_Mono (not used)"))


def add_parser(sub):
    p = sub.add_parser("lcd-bench", help="unit LCD: time per character and the worst pass with a display")
    p.add_argument("--seconds", type=float, default=60.0, help="virtual seconds of bench per display (default 60)")
    return p


def _open(kind, bus, cols, rows):
    from dinamics import lcd_driver

    if kind == "pcf8574-lib":
        return open_pcf8574_library(bus, 0x27, cols, rows)
    return lcd_driver.open_display(bus, 0x20 if kind == "mcp23008" else 0x27, cols, rows)


def per_char(kind, n=20):
    """-> (init ms, ms per character in a run of n, ms per run overhead, transactions per char)."""
    cost = Cost()
    restore = charge_library_sleeps(cost)
    try:
        bus = FakeI2C(cost)
        model = attach(bus, "mcp23008" if kind == "mcp23008" else "pcf8574", cols=20, rows=4)
        lcd = _open(kind, bus, 20, 4)
        init = cost.us
        # one character (cursor move + 1), then a run of n: the difference is n - 1 characters
        c0, t0 = cost.us, cost.transactions
        lcd.column, lcd.row = 0, 1
        lcd.message = "A"
        one = cost.us - c0
        c1, t1 = cost.us, cost.transactions
        lcd.column, lcd.row = 0, 2
        lcd.message = "B" * n
        run = cost.us - c1
        assert model.lines()[2] == "B" * n and model.lines()[1][0] == "A"
        ch = (run - one) / (n - 1)
        return init / 1000, ch / 1000, (one - ch) / 1000, (cost.transactions - t1 - (t1 - t0)) / (n - 1)
    finally:
        restore()


def worst_pass(kind, cols, rows, seconds):
    """The bench with a display: -> dict of figures."""
    from dinamics import messages as m
    from hil.ev_model import EvModel
    from hil.house import HouseLoad
    from hil.world import World

    cost = Cost()
    restore = charge_library_sleeps(cost)
    bus = FakeI2C(cost)
    model = attach(bus, kind, cols=cols, rows=rows)
    w = World(house=HouseLoad(base=(5.0, 2.0, 1.0), steps=[(20000, (14.0, 2.0, 1.0))]),
              port_kwargs={"i2c": bus})
    sched = w.sched
    per_pass = []
    inits = []
    real = sched.run_once
    from dinamics import lcd_driver

    real_open = lcd_driver.open_display
    opened = []

    def open_display(*a):
        opened.append(1)
        return real_open(*a)

    def run_once():
        c0 = cost.us
        del opened[:]
        real()
        (inits if opened else per_pass).append(cost.us - c0)

    sched.run_once = run_once
    lcd_driver.open_display = open_display
    try:
        w.app.settings.apply("lcd_size", 2004 if rows == 4 else 1602)
        w.app.settings.apply("lcd_pages", 15)
        for name, value in (("breaker", 25), ("cte", 123), ("dinamics", 1), ("c_limit", 32)):
            w.set(name, value)
        w.run_for(12000)  # lcd_size 2004 is taken at the next probe
        w.emu.plug(EvModel(max_amps=32, phases=1))
        w.run_for(int(seconds * 1000 * 0.6))
        sched.post(m.LCD_TEXT, "X" * (cols * rows))  # the whole glass changes at once
        w.run_for(2000)
        sched.post(m.LCD_TEXT, None)
        sched.post(m.BALANCER_FAULT, ("ct", 3500, "CT data stale"))
        w.run_for(int(seconds * 1000 * 0.4))
        normal = per_pass
        lcd = w.app.lcd
        return {"init_ms": max(inits) / 1000 if inits else 0.0, "worst_ms": max(normal) / 1000,
                "passes": len(normal), "writing_passes": sum(1 for x in normal if x > 0),
                "bytes": lcd.bytes_written, "bound": lcd._budget,
                "firmware_worst_ms": sched.worst_pass_ms, "crashes": lcd.crashes,
                "glass": model.render()}
    finally:
        sched.run_once = real
        lcd_driver.open_display = real_open
        w.close()
        restore()


def run(args):
    print("unit LCD, I2C at 100 kHz, %d us per transaction for the Python call [estimate]; the "
          "library's sleeps charged, not slept" % CALL_OVERHEAD_US)
    print("%-56s %9s %9s %9s %8s" % ("backpack, driver", "init ms", "ms/char", "cursor ms", "I2C/char"))
    for kind, label in DRIVERS:
        init, ch, run_ms, tr = per_char(kind)
        print("%-56s %9.1f %9.2f %9.2f %8.1f" % (label, init, ch, run_ms, tr))
    print()
    print("worst pass with a display (the bench, %.0f virtual s each: car session, every page, "
          "set_lcd over the whole glass, a CT fault)" % args.seconds)
    print("%-22s %7s %10s %9s %8s %12s" % ("display", "bytes/p", "worst ms", "passes", "writing",
                                         "firmware ms"))
    ok = True
    for kind in ("mcp23008", "pcf8574"):
        for cols, rows in ((16, 2), (20, 4)):
            r = worst_pass(kind, cols, rows, args.seconds)
            ok = ok and r["crashes"] == 0
            print("%-22s %7d %10.2f %9d %8d %12d" % (
                "%s %dx%d" % (kind, cols, rows), r["bound"], r["worst_ms"], r["passes"],
                r["writing_passes"], r["firmware_worst_ms"]))
    print("(worst ms: the display's share of the worst pass, the init excluded (once, when a display "
          "is found: init ms above); firmware ms: the worst whole pass measured on this PC, display "
          "sleeps excluded)")
    return 0 if ok else 1
