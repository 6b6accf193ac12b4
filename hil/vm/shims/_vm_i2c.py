"""VM shim (unix and wasm32 alike): busio.I2C, the unit LCD's bus."""


class I2C:
    """The unit LCD's bus. Nothing answers (the lcd actor stays off) unless DINAMICS_VM_LCD names
    an address ("0x27"): then a device there takes every write and reads 0, so the heap
    benchmark can build a driver."""

    def __init__(self, scl, sda, frequency=100000, timeout=255):
        import os as _os

        a = _os.getenv("DINAMICS_VM_LCD")
        self._addrs = [int(a, 16)] if a else []
        self._locked = False

    def try_lock(self):
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self):
        self._locked = False

    def scan(self):
        return list(self._addrs)

    def _check(self, address):
        if address not in self._addrs:
            raise OSError(19)

    def writeto(self, address, buffer, start=0, end=None):
        self._check(address)

    def readfrom_into(self, address, buffer, start=0, end=None):
        self._check(address)
        for i in range(start, len(buffer) if end is None else end):
            buffer[i] = 0

    def writeto_then_readfrom(self, address, out_buffer, in_buffer, out_start=0, out_end=None,
                              in_start=0, in_end=None):
        self.readfrom_into(address, in_buffer, in_start, in_end)

    def deinit(self):
        pass
