"""uart_link: carries RAPI lines over a serial port (busio.UART on a board, a pyserial port on
the host). It knows nothing of RAPI beyond line framing."""

from dinamics import messages as m
from dinamics.mailbox import Actor
from dinamics.rapi import LineAssembler

_READ_MAX = 256  # per pass: 22 ms of a 115200 baud line, so a burst (boot lines) is read at once


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
        uart = self.uart
        try:
            n = uart.in_waiting
            data = uart.read(min(n, _READ_MAX)) if n else None
        except OSError:
            return
        if not data:
            return
        self.bytes_in += len(data)
        asm = self.asm
        asm.feed(data)
        line = asm.pop()
        while line is not None:
            self.post(m.RAPI_RX_LINE, bytes(line))
            line = asm.pop()
