"""VM shim: boot.py switches HID off in HIL mode."""


def disable():
    pass
