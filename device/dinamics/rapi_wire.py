"""The lines on the wire that the controller has not answered yet, oldest first.

The controller reads into a 64-byte RX buffer and handles one line at a time; while it stalls
(1.1-1.3 s at every B->C, 0.3 s at A<->B, seconds while booting) whatever is sent waits there and
what overflows is lost (rapi.md §8: a burst after a cable cut lost a command). So the link counts
the bytes of unanswered lines and sends nothing that would overflow that buffer.

The FIFO also tells which request a reply belongs to: by id when the controller echoes ids; by
order when it does not (it answers lines in the order they arrived, a lost line is skipped).
Each entry: [seq, nbytes, cmd, request] where request is the link's request record.
No clock, no I/O.
"""

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

RX_BUFFER = 64  # the AVR's serial receive buffer (bytes)
_MAX_LINES = const(8)  # a 64-byte buffer holds at most ~7 of our shortest lines


class Wire:
    def __init__(self):
        self.entries = []
        self.bytes = 0

    def clear(self):
        del self.entries[:]
        self.bytes = 0

    def live(self):
        """Lines whose request still waits for them (not given up on)."""
        n = 0
        for e in self.entries:
            if e[3] is not None:
                n += 1
        return n

    def fits(self, nbytes):
        return not self.entries or (self.bytes + nbytes <= RX_BUFFER
                                    and len(self.entries) < _MAX_LINES)

    def add(self, seq, nbytes, cmd, request):
        self.entries.append([seq, nbytes, cmd, request])
        self.bytes += nbytes

    def _pop_through(self, i):
        e = self.entries[i]
        for x in self.entries[:i + 1]:
            self.bytes -= x[1]
        del self.entries[:i + 1]
        return e

    def take_seq(self, seq):
        """The entry answered by a reply with this id; older entries were lost. None if unknown."""
        for i in range(len(self.entries)):
            if self.entries[i][0] == seq:
                return self._pop_through(i)
        return None

    def take_in_order(self, fits=None):
        """The entry an id-less reply answers: the oldest one it fits (`fits(cmd)`), the older
        ones presumed lost; the oldest when it fits none. None when nothing is on the wire."""
        if not self.entries:
            return None
        if fits is not None:
            for i in range(len(self.entries)):
                if fits(self.entries[i][2]):
                    return self._pop_through(i)
        return self._pop_through(0)

    def forget(self, request):
        """A request given up on: its lines may still be answered; keep them on the wire so a
        late answer is recognised as late, but mark them as nobody's."""
        for e in self.entries:
            if e[3] is request:
                e[3] = None
