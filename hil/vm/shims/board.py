"""VM shim: an ESP32-S3 devkit's pin names (IO0..IO48) as plain strings."""
for _i in range(49):
    globals()["IO%d" % _i] = "IO%d" % _i
del _i
board_id = "espressif_esp32s3_devkitc_1_n8r8"
