"""VM shim: socketpool.SocketPool over the unix port's socket module (CircuitPython's socket API:
getaddrinfo with (ip, port) tuples, connect((host, port)), recv_into, OSError(EAGAIN/ETIMEDOUT);
bind/listen/accept for the web UI)."""
import socket as _s


class Socket:
    def __init__(self, raw):
        self.raw = raw

    def settimeout(self, t):
        self.raw.settimeout(t)

    def setblocking(self, flag):
        self.raw.setblocking(flag)

    def connect(self, addr):
        self.raw.connect(_s.getaddrinfo(addr[0], addr[1])[0][-1])

    def send(self, data):
        return self.raw.send(data)

    def sendall(self, data):
        return self.raw.sendall(data)

    def recv_into(self, buf, nbytes=0):
        data = self.raw.recv(nbytes or len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def sendto(self, data, addr):
        return self.raw.sendto(data, _s.getaddrinfo(addr[0], addr[1])[0][-1])

    def recvfrom_into(self, buf):
        data, addr = self.raw.recvfrom(len(buf))
        n = len(data)
        buf[:n] = data
        return n, addr

    def setsockopt(self, level, opt, value):
        self.raw.setsockopt(level, opt, value)

    # a listening socket (the web UI): CircuitPython's accept() gives (socket, (ip, port))
    def bind(self, addr):
        self.raw.bind(_s.getaddrinfo(addr[0] or "0.0.0.0", addr[1])[0][-1])

    def listen(self, backlog):
        self.raw.listen(backlog)

    def accept(self):
        raw, addr = self.raw.accept()  # non-blocking: OSError(EAGAIN) when nobody waits
        a = bytes(addr)
        return Socket(raw), (_s.inet_ntop(_s.AF_INET, a[4:8]), a[2] << 8 | a[3])

    def close(self):
        self.raw.close()


class SocketPool:
    AF_INET = _s.AF_INET
    SOCK_STREAM = _s.SOCK_STREAM
    SOCK_DGRAM = _s.SOCK_DGRAM
    SOL_SOCKET = _s.SOL_SOCKET
    SO_REUSEADDR = _s.SO_REUSEADDR

    def __init__(self, radio):
        self.radio = radio

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        out = []
        for ai in _s.getaddrinfo(host, port):
            if ai[0] == _s.AF_INET:
                ip = _s.inet_ntop(_s.AF_INET, bytes(ai[4])[4:8])
                out.append((_s.AF_INET, _s.SOCK_STREAM, 6, "", (ip, port)))
        return out

    def socket(self, family=_s.AF_INET, type=_s.SOCK_STREAM, proto=0):  # noqa: A002
        return Socket(_s.socket(family, type, proto))
