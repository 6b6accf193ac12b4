"""VM shim helper: a pty opened as a non-blocking, pyserial-like stream (the unix port's file
read() loops until it has n bytes, so bytes are taken one at a time while poll() says ready)."""
import select


class PtyStream:
    def __init__(self, path, cap=512):
        self.f = open(path, "r+b")
        self.p = select.poll()
        self.p.register(self.f, select.POLLIN)
        self.cap = cap
        self.buf = bytearray()
        self.one = bytearray(1)
        self.timeout = 0

    def _fill(self):
        while len(self.buf) < self.cap and self.p.poll(0):
            if self.f.readinto(self.one) != 1:
                break
            self.buf += self.one

    @property
    def in_waiting(self):
        self._fill()
        return len(self.buf)

    def read(self, n=None):
        self._fill()
        if not self.buf:
            return None
        if n is None or n >= len(self.buf):
            out = bytes(self.buf)
            self.buf = bytearray()
        else:
            out = bytes(self.buf[:n])
            self.buf = self.buf[n:]
        return out

    def readinto(self, b):
        data = self.read(len(b))
        if not data:
            return None
        b[:len(data)] = data
        return len(data)

    def write(self, data):
        return self.f.write(data)

    def reset_input_buffer(self):
        self._fill()
        self.buf = bytearray()

    def deinit(self):
        self.f.close()
