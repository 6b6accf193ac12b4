"""VM shim: busio.UART on the pty named by DINAMICS_VM_UART (the OpenEVSE emulator's other end)."""
import os

from _pty import PtyStream


class UART(PtyStream):
    def __init__(self, tx, rx, baudrate=9600, timeout=1, receiver_buffer_size=64, **kw):
        PtyStream.__init__(self, os.getenv("DINAMICS_VM_UART"), receiver_buffer_size)
        self.baudrate = baudrate
        self.timeout = timeout


from _vm_i2c import I2C  # noqa: E402,F401  (shared with the wasm shim)
