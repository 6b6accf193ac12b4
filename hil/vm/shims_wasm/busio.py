"""wasm stand-in: busio.UART with nothing on the line (the wasm port has no serial ports)."""


class UART:
    def __init__(self, tx, rx, baudrate=9600, timeout=1, receiver_buffer_size=64, **kw):
        self.timeout = timeout
        self.in_waiting = 0
        self.written = 0

    def read(self, n=None):
        return None

    def readinto(self, buf):
        return None

    def write(self, data):
        self.written += len(data)
        return len(data)

    def reset_input_buffer(self):
        pass

    def deinit(self):
        pass


from _vm_i2c import I2C  # noqa: E402,F401  (hil/vm/shims/_vm_i2c.py, on /.vm)
