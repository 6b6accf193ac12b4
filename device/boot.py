"""Runs once at power-up, before USB is set up. Chooses how the flash drive and USB serial ports
are used. Settings in /settings.toml:
  DINAMICS_HIL = 1   HIL bench mode: a second USB serial port (usb_cdc.data) carries the CT feed.
                     The S3 has too few USB endpoints for console + data + drive + HID, so the
                     CIRCUITPY drive and HID are switched off in this mode.
Maintenance (the PC may write the drive): hold the board's maintenance pin (DINAMICS_MAINT_PIN,
from the board profile, see docs/board.md) to GND while resetting. It is never GPIO0: the BOOT
button pulls GPIO0 low, and GPIO0 low at reset starts the ESP32-S3's ROM bootloader, so boot.py
would not run at all. Or, from the REPL: microcontroller.on_next_reset(RunMode.SAFE_MODE) and a
reset (safe mode skips boot.py). Otherwise the firmware gets the filesystem so it can store its
settings (the PC sees the drive read-only).
"""
import board
import digitalio
import microcontroller
import storage
import usb_cdc

from dinamics import board_profiles as bp

hil = bp.getenv("DINAMICS_HIL") == 1
maintenance = False
try:
    gpio = getattr(microcontroller, "pin")  # microcontroller.pin (not in circuitpython-stubs)
    n = bp.resolve(bp.getenv, getattr(board, "board_id", ""), board, gpio)[1][bp.MAINT_PIN]
    if n != bp.NONE:
        button = digitalio.DigitalInOut(getattr(gpio, "GPIO%d" % n))
        button.switch_to_input(pull=digitalio.Pull.UP)
        maintenance = not button.value
        button.deinit()
except Exception as e:  # noqa: BLE001 - a bad pin setting must not stop the remount below
    print("boot.py: no maintenance pin:", e)  # code.py reports a board/pin error again

if hil:
    import usb_hid

    usb_hid.disable()
    storage.disable_usb_drive()
    usb_cdc.enable(console=True, data=True)
if maintenance:
    print("boot.py: maintenance pin held: the drive stays writable from USB")
else:
    storage.remount("/", readonly=False)
