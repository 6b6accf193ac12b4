"""Progress lines for long commands (`hil bench`, `hil scenario all`, `--bench` runs).

They go to stderr, never stdout: stdout carries the `name: value` figures, which must stay
machine-comparable between runs. A line reads `<prefix>: <what> … <elapsed> s`.
"""
import sys
import time


class Progress:
    def __init__(self, prefix, every_s=30.0, out=None, clock=time.monotonic):
        self.prefix = prefix
        self.every_s = every_s  # tick(): at most one line this often
        self.out = out  # None: sys.stderr as it is when a line is written
        self.clock = clock
        self.t0 = clock()
        self._next = self.t0 + every_s

    def elapsed_s(self):
        return self.clock() - self.t0

    def line(self, text):
        out = self.out if self.out is not None else sys.stderr
        print("%s: %s … %.0f s" % (self.prefix, text, self.elapsed_s()), file=out, flush=True)
        self._next = self.clock() + self.every_s

    def due(self):
        return self.clock() >= self._next

    def tick(self, text_fn):
        """A line from text_fn() when every_s has passed since the last one."""
        if self.clock() >= self._next:
            self.line(text_fn())
