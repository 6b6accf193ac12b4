"""VM shim: usb_cdc.data is the CT feed pty named by DINAMICS_VM_CT (None without it)."""
import os

from _pty import PtyStream

_p = os.getenv("DINAMICS_VM_CT")
data = PtyStream(_p) if _p else None
console = None


def enable(console=True, data=False):
    pass
