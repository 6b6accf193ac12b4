"""VM shim: a connected radio (CircuitPython joins the network before code.py runs)."""


class _Radio:
    mac_address = b"\x24\x6f\x28\xaa\xbb\xcc"
    ipv4_address = "127.0.0.1"
    connected = True


radio = _Radio()
