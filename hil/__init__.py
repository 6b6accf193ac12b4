"""PC-side rig: host port, OpenEVSE emulator, CT injector, demo, scenarios, benchmark."""
import os
import sys

DEVICE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device")
# Appended, not prepended: device/code.py must not shadow the standard library's `code` module.
if DEVICE_DIR not in sys.path:
    sys.path.append(DEVICE_DIR)
