"""VM shim: boot.py's storage calls do nothing (the VM's drive is a host directory)."""


def remount(path, readonly=False, disable_concurrent_write_protection=False):
    pass


def disable_usb_drive():
    pass


class _Mount:
    readonly = False  # the firmware owns the drive (boot.py remounted it writable)


def getmount(path):
    return _Mount()
