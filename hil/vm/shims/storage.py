"""VM shim: boot.py's storage calls do nothing (the VM's drive is a host directory)."""


def remount(path, readonly=False, disable_concurrent_write_protection=False):
    pass


def disable_usb_drive():
    pass


class _Mount:
    readonly = False  # the firmware writes its settings slots (code.py: maintenance mode if True)


def getmount(path):
    return _Mount()
