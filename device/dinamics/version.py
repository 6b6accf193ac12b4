"""Firmware version, published retained on Dinamics/<SN>/fwversion and as FW in `settings`."""

VERSION = "1.0.0"
