"""Character LCD drivers for the lcd actor, imported only once a display answers on I2C
(docs/lcd.md says why and what each costs):

  MCP23008 (Adafruit's I2C/SPI backpack, 0x20-0x26): adafruit_character_lcd's Character_LCD_I2C
      (with adafruit_mcp230xx), as designed. ~6.8 ms per character: the library sleeps 1 ms per
      byte and each byte is ~14 I2C transactions (read-modify-write per pin toggle).
  PCF8574 ("1602 I2C" backpacks, 0x27, PCF8574A 0x3F): Pcf8574Lcd below. adafruit_pcf8574 pins
      driving Character_LCD_Mono work too (hil/hd44780.py open_pcf8574_library, tested), but cost ~5.1 ms and 16
      I2C transactions per character and ~11 KB of heap; this driver sends a whole run of
      characters in ONE I2C write (5 port bytes per character: ~0.5 ms at 100 kHz) and costs
      ~1-2 KB.
Both offer what the actor uses: `column`, `row`, `message = text` (written from (column, row)),
`backlight`, `clear()`.
"""
import time

_E = 0x04  # PCF8574 P2: enable; P0 RS, P1 RW (kept low), P3 backlight, P4-P7 D4-D7
_RS = 0x01
_BL = 0x08
_ROW = (0x00, 0x40, 0x14, 0x54)
# Bytes (cursor moves + characters) the actor may write in one scheduler pass, per driver: about
# 14 ms of blocking with the library on the MCP23008 (under the CT meter's 20 ms capture), about
# 5 ms with Pcf8574Lcd (python -m hil lcd-bench prints the figures).
MCP23008_PASS_BYTES = 2
PCF8574_PASS_BYTES = 9


class Pcf8574Lcd:
    """HD44780 in 4-bit mode behind a PCF8574. Each nibble is three port writes (data with E low,
    E high, E low: RS settles before E rises) inside one I2C transaction per call, so the
    controller's 37 us per byte is covered by the bus itself (one port byte takes 90 us at
    100 kHz). Only the init waits (the controller's power-on reset and clear: ~15 ms, once)."""

    pass_bytes = PCF8574_PASS_BYTES

    def __init__(self, i2c, address, cols, rows):
        self.i2c = i2c
        self.address = address
        self.columns = cols
        self.lines = rows
        self.column = 0
        self.row = 0
        self._bl = _BL
        self._buf = bytearray(6 * (cols + 1))  # a cursor move + one row of characters
        # 8-bit function set three times, then 4-bit (HD44780 datasheet, figure 24)
        for n, pause in ((0x30, 0.005), (0x30, 0.001), (0x30, 0.001), (0x20, 0.001)):
            self._send(self._nibble(0, n, 0), pause)
        self._send(self._bytes((0x28, 0x0C, 0x06), 0))  # 2 lines 5x8, display on, entry left to right
        self.clear()

    def _nibble(self, i, n, rs):
        b = self._buf
        v = n | rs | self._bl
        b[i] = v
        b[i + 1] = v | _E
        b[i + 2] = v
        return i + 3

    def _bytes(self, values, rs, i=0):
        for v in values:
            i = self._nibble(i, v & 0xF0, rs)
            i = self._nibble(i, (v << 4) & 0xF0, rs)
        return i

    def _send(self, end, pause=0.0):
        if not self.i2c.try_lock():  # nobody else uses this bus: never waits
            raise RuntimeError("I2C bus busy")
        try:
            self.i2c.writeto(self.address, self._buf, end=end)
        finally:
            self.i2c.unlock()
        if pause:
            time.sleep(pause)

    def clear(self):
        self._send(self._bytes((0x01,), 0), 0.002)

    def _set_message(self, text):
        """`text` (at most one row) from (column, row): one cursor move and the characters, in
        one I2C write; then (column, row) = (0, 0) as the library does."""
        i = self._bytes((0x80 | (_ROW[self.row] + self.column),), 0)
        for ch in text:
            i = self._bytes((ord(ch),), _RS, i)
        self._send(i)
        self.column = self.row = 0

    message = property(None, _set_message)

    def _get_backlight(self):
        return bool(self._bl)

    def _set_backlight(self, on):
        self._bl = _BL if on else 0
        self._buf[0] = self._bl
        self._send(1)

    backlight = property(_get_backlight, _set_backlight)


def is_mcp23008(address):
    return 0x20 <= address <= 0x26


def open_display(i2c, address, cols, rows):
    """-> a display on `i2c` at `address`, initialised (blank, backlight on). The init is the
    only call that writes more than the actor's per-pass bound."""
    if is_mcp23008(address):
        from adafruit_character_lcd.character_lcd_i2c import Character_LCD_I2C

        lcd = Character_LCD_I2C(i2c, cols, rows, address=address)
        setattr(lcd, "pass_bytes", MCP23008_PASS_BYTES)  # read by the actor
    else:
        lcd = Pcf8574Lcd(i2c, address, cols, rows)
    lcd.backlight = True
    return lcd

