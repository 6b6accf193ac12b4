"""wasm stand-in: a socket pool with no network (the wasm port has no sockets): connect fails."""
import errno


class Socket:
    def settimeout(self, t):
        pass

    def setsockopt(self, *a):
        pass

    def connect(self, addr):
        raise OSError(errno.ECONNREFUSED)

    def close(self):
        pass


class SocketPool:
    AF_INET = 2
    SOCK_STREAM = 1

    def __init__(self, radio):
        pass

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    def socket(self, family=2, type=1, proto=0):  # noqa: A002
        return Socket()
