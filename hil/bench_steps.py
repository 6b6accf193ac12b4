"""The benchmark's random load steps: the episode configurations and a seeded step plan.

Each step changes the house load and holds it; the kinds test one reaction each (hil.bench
measures them): up (over the breaker, the minimum still fits), down / mid / export (room opens
up), small (+-0.4 A), other_phase (a phase the car does not use), pause (not even the minimum
fits) followed by resume (room again, held long enough for the charge to restart).
"""

# name, breaker, cte, car phases, car phase, car max A, c_limit, export periods
EPISODES = (
    ("b16-1ph", 16, 1, 1, 1, 32, 16, False),
    ("b20-1ph", 20, 1, 1, 1, 32, 32, False),
    ("b25-1ph-export", 25, 1, 1, 1, 32, 32, True),
    ("b20-3ph-house-1ph-car", 20, 123, 1, 2, 32, 32, False),
    ("b25-3ph-house-1ph-car", 25, 123, 1, 3, 32, 32, False),
    ("b16-3ph-car", 16, 123, 3, 1, 16, 16, False),
    ("b25-3ph-car-export", 25, 123, 3, 1, 32, 32, True),
)

UP_HOLD_MS = 12000
DOWN_HOLD_MS = 24000
SMALL_HOLD_MS = 8000
RESUME_HOLD_MS = 80000


def r1(x):
    return round(x, 1)


class StepPlan:
    """Seeded random load steps for one episode. The house alone never exceeds the breaker."""

    def __init__(self, rng, breaker, car_phases, fitted, export, c_min=6):
        self.rng = rng
        self.b = breaker
        self.car = car_phases  # phase indexes the car draws from
        self.fitted = fitted
        self.export = export
        self.c_min = c_min
        self.resume_next = False

    def next(self, house, draw):
        """(kind, new house3, hold_ms) from the current house load and the car's draw."""
        rng, b = self.rng, self.b
        h = list(house)
        if self.resume_next:
            self.resume_next = False
            for p in self.car:
                h[p] = r1(rng.uniform(0.5, b - self.c_min - 4))
            return "resume", tuple(h), RESUME_HOLD_MS
        others = [p for p in self.fitted if p not in self.car]
        x = rng.random()
        worst = self.car[0]
        for p in self.car:
            if h[p] > h[worst]:
                worst = p
        if x < 0.38 and draw >= self.c_min + 2:
            # up: over the breaker with the car at its draw, but the minimum still fits
            p = rng.choice(self.car)
            lo = max(b - draw + 0.6, h[p] + 1.0)
            hi = b - self.c_min - 1.6
            if lo < hi:
                h[p] = r1(rng.uniform(lo, hi))
                return "up", tuple(h), UP_HOLD_MS
        if x < 0.72:
            # down: room for the car opens up
            if house[worst] > 3.5:
                h[worst] = r1(rng.uniform(0.3, house[worst] - 3.0))
                for p in self.car:
                    if p != worst and h[p] > h[worst] + 6:
                        h[p] = r1(rng.uniform(0.3, h[worst] + 3))
                return "down", tuple(h), DOWN_HOLD_MS
            if self.export and rng.random() < 0.5:
                for p in self.car:
                    h[p] = r1(-rng.uniform(1.0, 8.0))
                return "export", tuple(h), DOWN_HOLD_MS
            for p in self.car:
                h[p] = r1(rng.uniform(0.5, b / 2.0))
            return "mid", tuple(h), DOWN_HOLD_MS
        if x < 0.84:
            p = rng.choice(self.fitted)
            h[p] = r1(max(-8.0 if self.export else 0.0, h[p] + rng.uniform(-0.4, 0.4)))
            if h[p] < 0 and not self.export:
                h[p] = 0.0
            return "small", tuple(h), SMALL_HOLD_MS
        if x < 0.94 and others:
            p = rng.choice(others)
            h[p] = r1(rng.uniform(0.0, b - 1.0))
            return "other_phase", tuple(h), SMALL_HOLD_MS
        if draw > 0:
            # pause: not even the minimum fits; the next step brings room back
            p = rng.choice(self.car)
            h[p] = r1(rng.uniform(b - self.c_min + 0.5, b - 0.5))
            self.resume_next = True
            return "pause", tuple(h), SMALL_HOLD_MS
        for p in self.car:
            h[p] = r1(rng.uniform(0.5, b / 2.0))
        return "mid", tuple(h), DOWN_HOLD_MS
