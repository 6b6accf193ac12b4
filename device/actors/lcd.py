"""lcd: the unit's own 16x2 / 20x4 character LCD on I2C (docs/lcd.md).

Off until a display answers: the bus is scanned at start and every PROBE_MS after (a display
plugged in after boot is picked up; one that stops answering is dropped and looked for again).
The driver (dinamics.lcd_driver; adafruit_character_lcd for an MCP23008) and the page texts
(dinamics.lcd_pages) are imported only then.

What it shows, two lines per page (a 20x4 shows two pages at once), rotating every PAGE_MS over
the pages switched on in `lcd_pages`: 1 state + pilot / car current, 2 CT current per phase with a
bar against the breaker, 4 session / total energy, 8 network (IP and broker, or the setup AP's
SSID and password). A fault (link down, controller fault, CT stale) holds the top two lines
until it clears; set_lcd text holds the glass for `lcd_text_s`. Numbers are fixed-width fields.

Never blocks a pass: each tick renders the page into `_want` (a bytearray of the glass), and
poll() writes only the cells that differ from `_shown`, at most BYTES_PER_PASS bytes a pass
(a cursor move counts one; the driver sets the bound: 2 through the library on an MCP23008, 9 on
a PCF8574), so a whole 20x4 spreads over passes; no clear() after the init.
"""

from dinamics import messages as m
from dinamics.mailbox import Actor

try:
    from micropython import const
except ImportError:  # CPython
    def const(expr):
        return expr

TICK_MS = const(1000)  # render period
PAGE_MS = const(5000)  # page rotation
PROBE_MS = const(10000)  # look for a display this often while there is none
BYTES_PER_PASS = const(2)  # per pass, unless the driver says (lcd_driver.*_PASS_BYTES)
_ADDRESSES = (0x27, 0x3F, 0x20)  # found in this order when lcd_addr is 0 (auto)
_T_TICK = "tick"
_T_PROBE = "probe"
class Lcd(Actor):
    name = "lcd"
    subscribes = (m.CT_READING, m.EVSE_STATE, m.EVSE_CURRENT, m.EVSE_ENERGY, m.EVSE_PILOT,
                  m.LINK_STATUS, m.BALANCER_FAULT, m.NET_STATUS, m.NET_UP, m.NET_DOWN, m.LCD_TEXT)
    inbox_size = 12
    polls = True

    def __init__(self, settings, port):
        super().__init__()
        self.settings = settings
        self.port = port
        self.lcd = None  # the driver while a display answers
        self.address = None
        self.probes = 0
        self._pages = None  # dinamics.lcd_pages, imported with the driver
        self.reset()

    def reset(self):
        self.lcd = None
        self._tick = None
        self._size = None
        self._want = bytearray(0)
        self._shown = bytearray(0)
        self._told = None  # the text last posted as lcd.shown (the web UI shows it)
        self._dirty = False
        self._budget = BYTES_PER_PASS
        self._scan = 0
        self.bytes_written = 0
        self._page = 0
        self._page_ms = 0
        self._idle_ms = 0  # ms since the last news worth lighting the backlight for
        self._light = True
        # what the pages show
        self.state = None
        self.pilot = None
        self.car_ma = None
        self.session_ws = None
        self.total_wh = None
        self.ct = None
        self.link_down = None  # the command left unanswered while the link is down
        self.ct_stale = False
        self.broker = None
        self.net = None  # (ip, mode, ssid, ap_password) from net.up
        self.net_down = None  # reason from net.down
        self.text = None  # set_lcd text while it is shown
        self._text_ms = 0

    def start(self):
        self.every(PROBE_MS, _T_PROBE)
        self._probe()

    # --- messages ----------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.TIMER:
            if payload == _T_TICK:
                self._on_tick()
            elif payload == _T_PROBE and self.lcd is None:
                self._probe()
            return
        if kind == m.CT_READING:
            self.ct = payload
            return
        if kind == m.EVSE_CURRENT:
            self.car_ma = payload[0]
            return
        if kind == m.EVSE_ENERGY:
            self.session_ws, self.total_wh = payload[0], payload[1]
            return
        if kind == m.EVSE_PILOT:
            self.pilot = payload
            return
        news = True
        if kind == m.EVSE_STATE:
            news = payload[0] != self.state
            self.state = payload[0]
            if payload[2] is not None:  # (state, pilot state, amps, vflags): $AT's amps
                self.pilot = payload[2]
        elif kind == m.LINK_STATUS:
            self.link_down = None if payload[0] else (payload[1] or "?")
        elif kind == m.BALANCER_FAULT:
            if payload[0] == "ct":
                self.ct_stale = payload[1] != "ok"
            else:
                news = False
        elif kind == m.NET_STATUS:
            self.broker = bool(payload)
        elif kind == m.NET_UP:
            self.net, self.net_down = tuple(payload), None
        elif kind == m.NET_DOWN:
            self.net, self.net_down = None, str(payload)
        elif kind == m.LCD_TEXT:
            self.text = payload or None
            self._text_ms = 0
            self._render()
        if news:
            self._idle_ms = 0

    # --- finding the display ---------------------------------------------------------------------
    def _probe(self):
        g = self.settings.get
        if not g("lcd"):
            return
        opener = getattr(self.port, "i2c_bus", None)
        bus = opener() if opener is not None else None
        if bus is None or not bus.try_lock():
            return
        self.probes += 1
        try:
            found = bus.scan()
        except (OSError, RuntimeError):
            found = ()
        finally:
            bus.unlock()
        want = g("lcd_addr")
        addr = None
        for a in ((want,) if want else _ADDRESSES):
            if a in found:
                addr = a
                break
        if addr is None:
            return
        size = g("lcd_size")
        cols, rows = (20, 4) if size == 2004 else (16, 2)
        try:
            from dinamics import lcd_driver, lcd_pages

            self._pages = lcd_pages
            self.lcd = lcd_driver.open_display(bus, addr, cols, rows)
        except (OSError, RuntimeError, ValueError) as e:
            self.log(m.WARNING, "display at 0x%02x did not start: %s" % (addr, e))
            self.lcd = None
            return
        self.address = addr
        self._budget = getattr(self.lcd, "pass_bytes", BYTES_PER_PASS)
        self._size = size
        self._want = bytearray(b" " * (cols * rows))
        self._shown = bytearray(b" " * (cols * rows))  # init cleared the glass
        self.cols, self.rows = cols, rows
        self._light = True
        self._idle_ms = 0
        self.log(m.INFO, "%dx%d display at 0x%02x" % (cols, rows, addr))
        if self._tick is None:
            self._tick = self.every(TICK_MS, _T_TICK)
        self._render()

    def _lost(self, e):
        self.log(m.WARNING, "display stopped answering (%s); looking for it again" % e)
        self.lcd = None
        self._dirty = False
        if self._tick is not None:
            self.cancel(self._tick)
            self._tick = None

    # --- rendering ----------------------------------------------------------------------------------
    def _on_tick(self):
        if self.lcd is None:
            return
        g = self.settings.get
        if not g("lcd") or g("lcd_size") != self._size:
            # switched off, or another size: blank it and let the probe start again
            try:
                self.lcd.backlight = False
                self.lcd.clear()
            except (OSError, RuntimeError) as e:
                self.log(m.WARNING, "%s" % e)
            if g("lcd"):
                self._lost("lcd_size changed")
            else:
                self._stop()
            return
        self._page_ms += TICK_MS
        if self._page_ms >= PAGE_MS:
            self._page_ms = 0
            self._page += 1
        if self.text is not None:
            self._text_ms += TICK_MS
            if self._text_ms >= g("lcd_text_s") * 1000:
                self.text = None
        self._idle_ms += TICK_MS
        self._render()
        timeout = g("lcd_backlight_s")
        light = (not timeout or self._idle_ms < timeout * 1000 or self._pages.fault(self) is not None
                 or self.text is not None)
        if light != self._light:
            try:
                self.lcd.backlight = light
                self._light = light
            except (OSError, RuntimeError) as e:
                self._lost(e)

    def _stop(self):
        self.lcd = None
        self._dirty = False
        if self._tick is not None:
            self.cancel(self._tick)
            self._tick = None
        self.log(m.INFO, "switched off")

    def _render(self):
        if self.lcd is None:
            return
        w = self.cols
        want = self._want
        for r, line in enumerate(self._pages.lines(self)):
            for c in range(w):
                o = ord(line[c])
                want[r * w + c] = o if 32 <= o < 127 else 63  # "?"
        if want != self._shown:
            self._dirty = True
        if want != self._told:  # a page change, a few seconds apart: tell the web UI
            self._told = bytes(want)
            self.post(m.LCD_SHOWN, (w, self._told))

    # --- writing: only what changed, a bounded number of bytes a pass ------------------------------
    def poll(self, budget_ms):
        if not self._dirty or self.lcd is None:
            return
        want, shown = self._want, self._shown
        n = len(want)
        budget = self._budget
        i = self._scan
        seen = 0
        while budget >= 2 and seen < n:
            if want[i] == shown[i]:
                i = (i + 1) % n
                seen += 1
                continue
            row_end = (i // self.cols + 1) * self.cols
            j = i + 1
            while j < row_end and j - i < budget - 1 and want[j] != shown[j]:
                j += 1
            try:
                # message moves the cursor to (column, row) itself: one command per run
                lcd = self.lcd
                lcd.column, lcd.row = i % self.cols, i // self.cols
                lcd.message = bytes(want[i:j]).decode()
            except (OSError, RuntimeError) as e:
                self._lost(e)
                return
            shown[i:j] = want[i:j]
            budget -= 1 + j - i
            self.bytes_written += 1 + j - i
            seen += j - i
            i = j % n
        self._scan = i
        if seen >= n:
            self._dirty = want != shown
