"""A null-modem cable between two pseudo-terminals, with a switch to cut it.

Each end is a pty slave path that a program opens with pyserial, exactly as it would open a USB
serial adapter. `pump()` moves the bytes (call it from a simulation loop), or `start()` runs it in
a background thread for real-time use. While `cut` is set, bytes are read and thrown away.

Virtual time (`sync=True`): the kernel hands bytes across a pty asynchronously (a write into one
side is pushed to the other side by a kernel worker, later, sooner on an idle machine than on a
busy one), so a byte can be "in flight" when the simulation looks for it, and the run would then
depend on the load of the PC. A synchronous modem knows how many bytes the programs wrote into
each end (open the ports through `attach()`, a thin counting wrapper on the pyserial object) and
`pump()` returns only when every byte written into either end before the call has been taken by
the modem AND every byte the modem passed on is visible to the reading end (its `in_waiting`).
It waits in real time (select), up to `bound_s`; `stalls` counts the times it gave up (the run is
then no longer reproducible). `waits`/`wait_s` say how often and how long it had to wait."""
import array
import fcntl
import os
import select
import termios
import threading
import time
import tty

import serial


class CountedPort:
    """A pyserial port on one end of a synchronous NullModem: counts the bytes written into the
    end and read out of it. Everything else is the port's own."""

    def __init__(self, ser, modem, end):
        self.ser = ser
        self._modem = modem
        self._end = end

    def write(self, data):
        try:
            n = self.ser.write(data)
        except serial.SerialTimeoutException:
            # the write went (partly) through after write_timeout on a preempted process: count
            # it as written; if fewer bytes arrived, pump() gives up after bound_s and re-syncs
            self._modem.written[self._end] += len(data)
            raise
        self._modem.written[self._end] += len(data) if n is None else n
        return n

    def read(self, size=1):
        data = self.ser.read(size)
        self._modem.consumed[self._end] += len(data)
        return data

    def readinto(self, buf):
        n = self.ser.readinto(buf)
        self._modem.consumed[self._end] += n or 0
        return n

    @property
    def in_waiting(self):
        return self.ser.in_waiting

    def reset_input_buffer(self):
        self.ser.reset_input_buffer()
        self._modem.forget_input(self._end)

    def __getattr__(self, name):
        return getattr(self.ser, name)


def _inq(fd):
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return buf[0]


class NullModem:
    def __init__(self, sync=False, bound_s=5.0):
        self._ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._ends.append((master, slave, os.ttyname(slave)))
        self.cut = False
        self.bytes = [0, 0]  # bytes moved out of end i (not counting what a cut dropped)
        self.dropped = 0
        self._thread = None
        self._stop = False
        self.sync = sync
        self.bound_s = bound_s
        self.written = [0, 0]  # bytes the counted port on end i wrote into it
        self.taken = [0, 0]  # bytes the modem read out of end i (moved or dropped)
        self.delivered = [0, 0]  # bytes the modem wrote into end i for its reader
        self.consumed = [0, 0]  # bytes the counted port on end i read
        self._counted = [False, False]
        self.waits = 0
        self.wait_s = 0.0
        self.stalls = 0

    @property
    def paths(self):
        return self._ends[0][2], self._ends[1][2]

    def attach(self, end, ser):
        """The pyserial port opened on `paths[end]`, wrapped so that a synchronous modem counts
        its bytes; unchanged when the modem is not synchronous (real time)."""
        if not self.sync:
            return ser
        self._counted[end] = True
        return CountedPort(ser, self, end)

    def forget_input(self, end):
        """The reader of `end` threw its input away: expect only what is still to come."""
        self.consumed[end] = self.delivered[end]

    def pump(self):
        moved = self._move()
        if self.sync:
            moved += self._settle()
        return moved

    def _move(self):
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
                self.taken[i] += len(data)
                if self.cut:
                    self.dropped += len(data)
                    continue
                self.bytes[i] += len(data)
                self.delivered[1 - i] += len(data)
                moved += len(data)
                self._put(dst, data)
        return moved

    def _put(self, fd, data):
        """Write all of `data` into the master `fd` (the kernel passes it on to the slave)."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [], 0.01)
                continue
            view = view[n:]

    def _missing(self):
        """(ends with written bytes the modem has not taken yet, ends whose reader does not see
        everything delivered yet, True when one of the latter already sees part of it)."""
        untaken = [i for i in (0, 1) if self.taken[i] < self.written[i]]
        unseen = []
        partial = False
        for i in (0, 1):
            if not self._counted[i]:
                continue
            want = self.delivered[i] - self.consumed[i]
            if want > 0:
                have = _inq(self._ends[i][1])
                if have < want:
                    unseen.append(i)
                    partial = partial or have > 0
        return untaken, unseen, partial

    def _settle(self):
        moved = 0
        t0 = None
        while True:
            untaken, unseen, partial = self._missing()
            if not untaken and not unseen:
                break
            now = time.monotonic()
            if t0 is None:
                t0 = now
                self.waits += 1
            elif now - t0 > self.bound_s:
                self.stalls += 1
                self._resync()
                break
            fds = [self._ends[i][0] for i in untaken]
            if not partial:
                fds += [self._ends[i][1] for i in unseen]
            # a reader that sees part of its bytes cannot be woken by select: poll every 0.2 ms
            select.select(fds, [], [], 0.0002 if partial or not fds else 0.05)
            moved += self._move()
        if t0 is not None:
            self.wait_s += time.monotonic() - t0
        return moved

    def _resync(self):
        """Give up on bytes that did not come within bound_s: expect what is there now."""
        for i in (0, 1):
            self.written[i] = self.taken[i]
            if self._counted[i]:
                self.consumed[i] = self.delivered[i] - _inq(self._ends[i][1])

    def start(self):
        def loop():
            masters = [e[0] for e in self._ends]
            while not self._stop:
                select.select(masters, [], [], 0.05)
                self._move()

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
