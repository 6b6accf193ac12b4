"""House load profiles for the rig: per-phase currents (A, house only, the car excluded; negative =
export) over time. Shared by `python -m hil ct`, the scenarios, the benchmark and the demo.

A profile is a list of steps (at_ms, (l1, l2, l3)), sorted, the first at 0 ms, plus an optional
loop length: with `loop_ms` the profile repeats (the ct CLI plays it forever); without it the last
value holds. Three ways to get one:

    parse_steps("0:5,3,2;10000:20,3,2")    ms ":" amps per phase ("," between phases; one value
                                            means L1 only, e.g. a 1-phase house: "0:5;10000:18")
    load_trace("house.csv")                 CSV lines  ms,l1,l2,l3  (a header line and lines
                                            starting with "#" are skipped; l2/l3 may be left out)
    named("oven")                           see NAMES / describe()

`house_load(profile, t0_ms)` turns a profile into a hil.house.HouseLoad starting at t0_ms (the
loop unrolled up to `until_ms`).
"""
import random

# ---------------------------------------------------------------------------------------------
# Profile type and parsers
# ---------------------------------------------------------------------------------------------


class Profile:
    def __init__(self, steps, loop_ms=None, name="", description=""):
        steps = sorted((int(t), _three(a)) for t, a in steps)
        if not steps:
            raise ValueError("a profile needs at least one step")
        if steps[0][0] != 0:
            steps.insert(0, (0, (0.0, 0.0, 0.0)))
        if loop_ms is not None:
            loop_ms = int(loop_ms)
            if loop_ms <= steps[-1][0]:
                raise ValueError("loop_ms must be after the last step")
        self.steps = steps
        self.loop_ms = loop_ms
        self.name = name
        self.description = description

    @property
    def length_ms(self):
        """One pass: the loop length, or the time of the last step."""
        return self.loop_ms if self.loop_ms is not None else self.steps[-1][0]

    def amps(self, t_ms):
        """Per-phase house load at t_ms after the profile started."""
        if self.loop_ms is not None and t_ms >= 0:
            t_ms %= self.loop_ms
        cur = self.steps[0][1]
        for t, a in self.steps:
            if t > t_ms:
                break
            cur = a
        return cur

    def unrolled(self, until_ms):
        """Every step up to until_ms (the loop repeated), as [(ms, amps3)]."""
        if self.loop_ms is None:
            return [s for s in self.steps if s[0] <= until_ms] or self.steps[:1]
        out = []
        base = 0
        while base <= until_ms:
            for t, a in self.steps:
                if base + t > until_ms:
                    break
                out.append((base + t, a))
            base += self.loop_ms
        return out

    def __repr__(self):
        return "Profile(%r, %d steps, loop_ms=%r)" % (self.name, len(self.steps), self.loop_ms)


def _three(a):
    if isinstance(a, (int, float)):
        return (float(a), 0.0, 0.0)
    a = tuple(float(x) for x in a)
    if len(a) == 1:
        return (a[0], 0.0, 0.0)
    if len(a) != 3:
        raise ValueError("one or three amps values per step, got %d" % len(a))
    for x in a:
        if x != x or abs(x) > 999.99:
            raise ValueError("amps out of range: %r" % (x,))
    return a


def parse_steps(text, loop_ms=None):
    """'0:5,3,2;10000:20,3,2' -> Profile. Whitespace is ignored; ValueError when malformed."""
    steps = []
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        t, sep, amps = part.partition(":")
        if not sep or not t or not amps:
            raise ValueError("step %r: expected MS:A[,A,A]" % part)
        try:
            ms = int(t)
            vals = [float(x) for x in amps.split(",")]
        except ValueError:
            raise ValueError("step %r: expected MS:A[,A,A] with numbers" % part) from None
        if ms < 0:
            raise ValueError("step %r: negative time" % part)
        steps.append((ms, vals))
    if not steps:
        raise ValueError("no steps in %r" % text)
    return Profile(steps, loop_ms, name="steps", description=text)


def load_trace(path, loop=False):
    """CSV file of ms,l1[,l2,l3] -> Profile (loop: repeat it, one period after the last line)."""
    steps = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cells = [c.strip() for c in line.split(",")]
            try:
                ms = int(float(cells[0]))
                vals = [float(c) for c in cells[1:4] if c != ""]
            except ValueError:
                if not steps and n == 1:
                    continue  # a header line
                raise ValueError("%s:%d: expected ms,l1,l2,l3" % (path, n)) from None
            if not vals:
                raise ValueError("%s:%d: no amps" % (path, n))
            steps.append((ms, vals))
    if not steps:
        raise ValueError("%s: no samples" % path)
    steps.sort(key=lambda s: s[0])
    t0 = steps[0][0]
    steps = [(t - t0, v) for t, v in steps]
    loop_ms = None
    if loop:
        gap = steps[-1][0] - steps[-2][0] if len(steps) > 1 else 1000
        loop_ms = steps[-1][0] + max(1, gap)
    return Profile(steps, loop_ms, name=path, description="trace " + path)


def save_trace(profile, path, until_ms=None):
    """Write a profile as a CSV trace (the format load_trace reads)."""
    until = profile.length_ms if until_ms is None else until_ms
    with open(path, "w") as f:
        f.write("ms,l1,l2,l3\n")
        for t, a in profile.unrolled(until):
            f.write("%d,%g,%g,%g\n" % (t, a[0], a[1], a[2]))


def house_load(profile, t0_ms=0, until_ms=None):
    """A hil.house.HouseLoad that plays `profile` from t0_ms (loops unrolled up to until_ms)."""
    from hil.house import HouseLoad

    until = until_ms if until_ms is not None else (
        profile.length_ms * 50 if profile.loop_ms else profile.length_ms)
    steps = profile.unrolled(until)
    return HouseLoad(base=steps[0][1], steps=[(t0_ms + t, a) for t, a in steps[1:]])


# ---------------------------------------------------------------------------------------------
# Named profiles
# ---------------------------------------------------------------------------------------------
S = 1000
MIN = 60 * S


def _oven():
    # 1-phase house (L1): base 2.3 A; a 3 kW oven (13 A) heats up for 90 s, then its thermostat
    # cycles 40 s on / 25 s off three times, then it is switched off.
    steps = [(0, (2.3, 0, 0)), (10 * S, (15.3, 0, 0))]
    t = 100 * S
    for _ in range(3):
        steps.append((t, (2.3, 0, 0)))
        steps.append((t + 25 * S, (15.3, 0, 0)))
        t += 65 * S
    steps.append((t, (2.3, 0, 0)))
    return Profile(steps, loop_ms=t + 60 * S, name="oven",
                   description="1-phase: base 2.3 A, oven 13 A (90 s, then thermostat 40 s on / "
                               "25 s off), then off")


def _ac():
    # The A/C compressor (2.6 A) cycles 30 s on / 30 s off on top of 7.8 A: with a 16 A breaker
    # the room for the car swings between 5.6 A and 8.2 A, around the 6 A minimum.
    return Profile([(0, (7.8, 0, 0)), (30 * S, (10.4, 0, 0))], loop_ms=60 * S, name="ac",
                   description="1-phase: 7.8 A + A/C compressor 2.6 A, 30 s on / 30 s off "
                               "(16 A breaker: room 5.6 A / 8.2 A)")


def _kettle():
    return Profile([(0, (1.8, 0, 0)), (20 * S, (10.8, 0, 0)), (200 * S, (1.8, 0, 0))],
                   loop_ms=300 * S, name="kettle",
                   description="1-phase: base 1.8 A, a 2 kW kettle (9 A) for 3 minutes")


def _three_phase():
    # A 3-phase house: a heat pump (4 A per phase) cycles, a cooker on L1, a dryer on L3.
    return Profile([(0, (3.0, 2.0, 4.0)), (30 * S, (7.0, 6.0, 8.0)), (60 * S, (17.0, 6.0, 8.0)),
                    (120 * S, (17.0, 6.0, 16.0)), (180 * S, (7.0, 6.0, 16.0)),
                    (240 * S, (3.0, 2.0, 4.0))], loop_ms=300 * S, name="three_phase",
                   description="3-phase: heat pump 4 A/phase, cooker 10 A on L1, dryer 8 A on L3")


def _solar():
    # Export on every phase at midday, clouds pass (export collapses to import for 40 s).
    return Profile([(0, (-6.0, -5.5, -6.5)), (60 * S, (1.5, 1.2, 1.8)), (100 * S, (-6.0, -5.5, -6.5)),
                    (200 * S, (-2.0, -1.5, -2.5)), (260 * S, (-6.0, -5.5, -6.5))],
                   loop_ms=320 * S, name="solar",
                   description="3-phase export (solar surplus ~6 A/phase) with passing clouds")


def _idle():
    return Profile([(0, (1.5, 1.0, 1.2))], name="idle", description="constant small load")


def mixed(duration_ms=30 * MIN, seed=7, phases=1):
    """A busy evening, reproducible: base load with a fridge, an oven with its thermostat, a
    kettle, A/C cycling, a dishwasher heater, a microwave; 1-phase (L1) or spread over 3 phases.
    Loads are drawn from a seeded generator, so the same (duration, seed) gives the same steps."""
    rng = random.Random(seed)
    events = []  # (start, end, phase index, amps)

    def add(start, length, amps, ph=0):
        if start < duration_ms:
            events.append((start, min(duration_ms, start + length), ph, amps))

    def ph():
        return rng.randrange(3) if phases == 3 else 0

    # fridge: 0.6 A, 10 min period, 4 min on
    for t in range(2 * MIN, duration_ms, 10 * MIN):
        for p in ((0, 1, 2) if phases == 3 else (0,)):
            add(t + p * 97 * S, 4 * MIN, 0.6, p)
    # oven: preheat 8 min, then thermostat 40 s on / 35 s off for 12 min
    t0 = int(duration_ms * 0.15)
    add(t0, 8 * MIN, 13.0)
    t = t0 + 8 * MIN
    while t < t0 + 20 * MIN:
        add(t + 35 * S, 40 * S, 13.0)
        t += 75 * S
    # kettle twice, microwave, dishwasher heater (1-phase: on L1; 3-phase: random phases)
    for frac in (0.05, 0.62):
        add(int(duration_ms * frac) + rng.randrange(30) * S, 150 * S, 9.0, ph())
    add(int(duration_ms * 0.45) + rng.randrange(60) * S, 4 * MIN, 5.5, ph())
    dw = int(duration_ms * 0.70)
    add(dw, 15 * MIN, 0.5, ph())
    add(dw + 2 * MIN, 12 * MIN, 8.7, ph())
    # A/C: 2.6 A compressor, 3 min on / 2 min off through the second half
    t = duration_ms // 2
    while t < duration_ms:
        add(t, 3 * MIN, 2.6, 0)
        t += 5 * MIN
    # small random appliances (TV, lights, a vacuum cleaner)
    for _ in range(duration_ms // (4 * MIN)):
        add(rng.randrange(duration_ms), rng.randrange(30, 400) * S, round(rng.uniform(0.3, 4.5), 1),
            ph())
    base = (1.4, 1.1, 1.3) if phases == 3 else (1.4, 0.0, 0.0)
    cuts = sorted(set([0] + [e[0] for e in events] + [e[1] for e in events if e[1] < duration_ms]))
    steps = []
    for c in cuts:
        a = list(base)
        for s, e, p, amps in events:
            if s <= c < e:
                a[p] += amps
        a = tuple(round(x, 2) for x in a)
        if not steps or steps[-1][1] != a:
            steps.append((c, a))
    return Profile(steps, loop_ms=duration_ms, name="mixed",
                   description="%d min busy evening (%d-phase house): oven, kettle, A/C, "
                               "dishwasher, fridge, small loads" % (duration_ms // MIN, phases))


_NAMED = {
    "idle": _idle,
    "oven": _oven,
    "ac": _ac,
    "kettle": _kettle,
    "three_phase": _three_phase,
    "solar": _solar,
    "mixed": mixed,
    "mixed3": lambda: mixed(phases=3),
}
NAMES = tuple(_NAMED)


def named(name):
    try:
        return _NAMED[name]()
    except KeyError:
        raise ValueError("unknown profile %r (one of %s)" % (name, ", ".join(NAMES))) from None


def describe():
    """[(name, description)] of every named profile."""
    return [(n, _NAMED[n]().description) for n in NAMES]
