"""A null-modem cable between two pseudo-terminals, with a switch to cut it.

Each end is a pty slave path that a program opens with pyserial, exactly as it would open a USB
serial adapter. `pump()` moves the bytes (call it from a simulation loop), or `start()` runs it in
a background thread for real-time use. While `cut` is set, bytes are read and thrown away."""
import os
import select
import threading
import tty


class NullModem:
    def __init__(self):
        self._ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._ends.append((master, slave, os.ttyname(slave)))
        self.cut = False
        self.bytes = [0, 0]
        self.dropped = 0
        self._thread = None
        self._stop = False

    @property
    def paths(self):
        return self._ends[0][2], self._ends[1][2]

    def pump(self):
        moved = 0
        for i in (0, 1):
            src = self._ends[i][0]
            dst = self._ends[1 - i][0]
            while True:
                try:
                    data = os.read(src, 4096)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                if self.cut:
                    self.dropped += len(data)
                    continue
                self.bytes[i] += len(data)
                moved += len(data)
                view = memoryview(data)
                while view:
                    try:
                        n = os.write(dst, view)
                    except BlockingIOError:
                        select.select([], [dst], [], 0.01)
                        continue
                    view = view[n:]
        return moved

    def start(self):
        def loop():
            masters = [e[0] for e in self._ends]
            while not self._stop:
                select.select(masters, [], [], 0.05)
                self.pump()

        self._thread = threading.Thread(target=loop, name="null-modem", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(1)
        for master, slave, _ in self._ends:
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
