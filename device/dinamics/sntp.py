"""SNTP by hand over one UDP socket, never waiting: `send(host)` puts a request on the wire,
`recv()` returns the server's time (Unix seconds) once the answer is there, else None.

Why not adafruit_ntp: its `datetime`/`utc_ns` send and then wait in a loop on the socket (up to
its socket timeout, 10 s by default) inside one call, which would stall a scheduler pass; this is
the 48-byte packet and four lines of parsing, with the wait spread over timer shots. The pool is
socketpool.SocketPool(wifi.radio) on a board, the stdlib `socket` module on the host (both have
getaddrinfo, socket(AF_INET, SOCK_DGRAM), sendto, recvfrom_into, settimeout). getaddrinfo is
the one call that can block (a DNS lookup): the caller holds the controller link for it."""
import struct

NTP_PORT = 123
_UNIX_MINUS_NTP = 2208988800  # seconds from 1900-01-01 to 1970-01-01


class Sntp:
    def __init__(self, pool):
        self.pool = pool
        self.sock = None
        self.buf = bytearray(48)

    def send(self, host, port=NTP_PORT):
        """Raises OSError (no DNS, no route): the caller retries later."""
        self.close()
        pool = self.pool
        addr = pool.getaddrinfo(host, port)[0][-1]
        s = pool.socket(pool.AF_INET, pool.SOCK_DGRAM)
        try:
            s.settimeout(0)
            pkt = self.buf
            for i in range(48):
                pkt[i] = 0
            pkt[0] = 0x1B  # LI 0, version 3, mode 3 (client)
            s.sendto(pkt, addr)
        except Exception:
            s.close()
            raise
        self.sock = s

    def recv(self):
        """Unix seconds from the answer, or None (nothing yet, or not a valid server reply)."""
        s = self.sock
        if s is None:
            return None
        try:
            n = s.recvfrom_into(self.buf)[0]
        except OSError:  # EAGAIN: not there yet
            return None
        b = self.buf
        if n < 48 or b[0] & 7 != 4 or b[1] == 0:  # not a server reply, or kiss-o'-death
            return None
        self.close()
        return struct.unpack_from("!I", b, 40)[0] - _UNIX_MINUS_NTP

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
