"""uart_link: carries RAPI lines over a serial port (busio.UART on a board, a pyserial port on
the host). It knows nothing of RAPI beyond line framing. Bytes are read with readinto() into one
buffer allocated at start (busio.UART with timeout=0 and a non-blocking pyserial port both return
what is there, up to the buffer's size: None or 0 when nothing is)."""

from dinamics import messages as m
from dinamics.mailbox import Actor
from dinamics.rapi import LineAssembler

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_READ_MAX = const(256)  # per pass: 22 ms of a 115200 baud line, so a burst (boot lines) is read at once


class UartLink(Actor):
    name = "uart_link"
    subscribes = (m.RAPI_TX_LINE,)
    polls = True
    inbox_size = 24

    def __init__(self, uart, active=True):
        super().__init__()
        self.uart = uart
        self.active = active
        self.bytes_in = 0
        self.bytes_out = 0
        self.write_errors = 0
        self.asm = LineAssembler()
        self._buf = bytearray(_READ_MAX)
        self._mv = memoryview(self._buf)

    def reset(self):
        self.asm = LineAssembler()

    def handle(self, kind, payload):
        if kind == m.RAPI_TX_LINE and self.active:
            try:
                self.uart.write(payload)
                self.bytes_out += len(payload)
            except OSError:
                # A missing port is a dead link: rapi_link's timeouts take it down and recover.
                self.write_errors += 1

    def poll(self, budget_ms):
        if not self.active:
            return
        asm = self.asm
        n = asm.read_from(self.uart, self._mv)
        if not n:
            return
        self.bytes_in += n
        line = asm.pop()
        while line is not None:
            self.post(m.RAPI_RX_LINE, bytes(line))
            line = asm.pop()
