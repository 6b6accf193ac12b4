"""Runs once at power-up, before USB is set up. Chooses how the flash drive and USB serial ports
are used. Settings in /settings.toml:
  DINAMICS_HIL = 1   HIL bench mode: a second USB serial port (usb_cdc.data) carries the CT feed.
                     The S3 has too few USB endpoints for console + data + drive + HID, so the
                     CIRCUITPY drive and HID are switched off in this mode.
Hold the BOOT button (GPIO0) while resetting to keep the drive writable from the PC (maintenance);
otherwise the firmware gets the filesystem so it can store its settings (the PC sees it read-only).
"""
import os

import board
import digitalio
import storage
import usb_cdc

hil = os.getenv("DINAMICS_HIL") == 1
maintenance = False
try:
    button = digitalio.DigitalInOut(board.IO0)
    button.switch_to_input(pull=digitalio.Pull.UP)
    maintenance = not button.value
    button.deinit()
except (AttributeError, ValueError):
    pass

if hil:
    import usb_hid

    usb_hid.disable()
    storage.disable_usb_drive()
    usb_cdc.enable(console=True, data=True)
if not maintenance:
    storage.remount("/", readonly=False)
