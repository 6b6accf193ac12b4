"""Character LCD drivers for the lcd actor, imported only once a display answers on I2C.

Both backpacks go through adafruit_character_lcd (docs/lcd.md says why and what it costs):
  MCP23008 (Adafruit's I2C/SPI backpack, 0x20-0x26): Character_LCD_I2C (needs adafruit_mcp230xx)
  PCF8574 ("1602 I2C" backpacks, 0x27 / PCF8574A 0x3F): Character_LCD_Mono over the pins of
      adafruit_pcf8574: P0 RS, P2 E, P4-P7 D4-D7, P3 backlight; P1 (RW) stays low, as the
      PCF8574 object starts with every pin written low.
The library sleeps 1 ms per byte: the actor writes a bounded number of bytes per scheduler pass.
"""


def is_mcp23008(address):
    return 0x20 <= address <= 0x26


def open_display(i2c, address, cols, rows):
    """-> a Character_LCD on `i2c` at `address`, initialised (blank, backlight on). The init
    sends ~8 bytes and clears the glass: the only pass that writes more than the actor's bound."""
    if is_mcp23008(address):
        from adafruit_character_lcd.character_lcd_i2c import Character_LCD_I2C

        lcd = Character_LCD_I2C(i2c, cols, rows, address=address)
    else:
        from adafruit_character_lcd.character_lcd import Character_LCD_Mono
        from adafruit_pcf8574 import PCF8574

        pin = PCF8574(i2c, address).get_pin
        lcd = Character_LCD_Mono(pin(0), pin(2), pin(4), pin(5), pin(6), pin(7), cols, rows,
                                 backlight_pin=pin(3))
    lcd.backlight = True
    return lcd
