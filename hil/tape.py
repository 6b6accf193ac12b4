"""What happened during a HIL run, seen from the rig's side: the truth (house load and the car's
actual draw per phase, piecewise constant) and the RAPI lines the emulator received and sent.

Every figure (hil.figures), check (hil.checks) and the violation rule (hil.budget) reads a Tape;
nothing here knows about rigs or scenarios.
"""
import bisect


class Tape:
    def __init__(self):
        self.t = []  # change times (ms) of the truth
        self.house = []  # house amps per phase from t[i]
        self.car = []  # car draw per phase from t[i]
        self.wire_t = []
        self.wire = []  # (ms, cmd, args) the emulator received
        self.sent = []  # (ms, text) the emulator sent
        self.marks = []  # (ms, label, info)
        self.end = 0
        self.last_rx = None

    def record(self, now, house, car):
        if self.t and self.house[-1] == house and self.car[-1] == car:
            self.end = now
            return
        if self.t and self.t[-1] == now:
            self.house[-1] = house
            self.car[-1] = car
        else:
            self.t.append(now)
            self.house.append(house)
            self.car.append(car)
        self.end = now

    def add_rx(self, ms, text):
        self.last_rx = ms
        cmd, args = parse_command(text)
        if cmd:
            self.wire_t.append(ms)
            self.wire.append((ms, cmd, args))

    def mark(self, ms, label, **info):
        self.marks.append((ms, label, info))

    def segments(self, t0, t1):
        """(a, b, house3, car3) pieces of the truth clipped to [t0, t1)."""
        if not self.t or t1 <= t0:
            return
        i = bisect.bisect_right(self.t, t0) - 1
        if i < 0:
            i = 0
        n = len(self.t)
        end = max(self.end, t1)
        while i < n:
            a = self.t[i]
            b = self.t[i + 1] if i + 1 < n else end
            a2 = a if a > t0 else t0
            b2 = b if b < t1 else t1
            if a2 >= t1:
                break
            if b2 > a2:
                yield a2, b2, self.house[i], self.car[i]
            i += 1

    def house_changes(self, t0, t1):
        """Times in [t0, t1) at which the house load changed, per phase: three sorted lists."""
        out = ([], [], [])
        i = bisect.bisect_left(self.t, t0)
        j = bisect.bisect_left(self.t, t1)
        for k in range(max(1, i), j):
            for p in range(3):
                if self.house[k][p] != self.house[k - 1][p]:
                    out[p].append(self.t[k])
        return out

    def at(self, ms):
        i = bisect.bisect_right(self.t, ms) - 1
        if i < 0:
            return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
        return self.house[i], self.car[i]

    def commands(self, t0, t1, kinds=None):
        i = bisect.bisect_left(self.wire_t, t0)
        j = bisect.bisect_left(self.wire_t, t1)
        return [w for w in self.wire[i:j] if kinds is None or w[1] in kinds]


def parse_command(text):
    """'$SC 9 V :4A^2C' -> ('SC', ('9', 'V')); not a command -> (None, ())."""
    if not text.startswith("$") or len(text) < 3:
        return None, ()
    body = text[1:]
    for mark in ("^", "*"):
        k = body.find(mark)
        if k >= 0:
            body = body[:k]
    parts = body.split()
    if not parts:
        return None, ()
    return parts[0], tuple(p for p in parts[1:] if not p.startswith(":"))


def sc_amps(args):
    try:
        return int(args[0])
    except (IndexError, ValueError):
        return None
