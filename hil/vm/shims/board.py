"""VM shim: an ESP32-S3 devkit (board_id, IO0..IO48 pin names). The pins are the objects of
microcontroller.pin (GPIO<n>), as on a board, so board_profiles can map a name to its number."""
from microcontroller import pin as _pin

board_id = "espressif_esp32s3_devkitc_1_n8r8"
for _i in range(49):
    globals()["IO%d" % _i] = getattr(_pin, "GPIO%d" % _i)
del _i
board_id = "espressif_esp32s3_devkitc_1_n8r8"
