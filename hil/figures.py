"""Figures computed from a hil.tape.Tape, shared by the scenarios and the benchmark.

  step_to_sc_ms       load step -> first cutting command on the wire ($SC lower than the pilot in
                      effect at the step, or $FS/$FD)
  back_under_ms       load step -> end of the over-breaker stretch the step started (truth)
  overshoot_as        sum over phases of the integral of max(0, I_phase - breaker) dt (truth)
  violations          over the breaker beyond the reaction budget (hil.budget)
  headroom95          load drop -> the car draws 95 % of what now fits (truth; includes the EV's
                      response); headroom95_pilot the same on the wire ($SC)
  reversals           direction changes of the $SC sequence while the load is constant
  spurious_pauses     $FS/$FD although the house left room for the minimum
Energy against an oracle that knows the load: hil.oracle.
"""
import math

from hil import budget
from hil.tape import sc_amps

SETTLED_MS = 1000  # reversals count from this long after a load step (3 CT readings)


def over_intervals(tape, breaker, t0, t1, need_car=True):
    """[[start, end, peak_amps]] where a phase is over the breaker (with the car drawing on it when
    need_car: a house alone over its breaker is nothing a charger can fix)."""
    out = []
    cur = None
    for a, b, h, c in tape.segments(t0, t1):
        peak = None
        for p in range(3):
            tot = h[p] + c[p]
            if tot > breaker and (c[p] > 0 or not need_car):
                peak = tot if peak is None or tot > peak else peak
        if peak is not None:
            if cur is not None and cur[1] == a:
                cur[1] = b
                cur[2] = max(cur[2], peak)
            else:
                cur = [a, b, peak]
                out.append(cur)
        else:
            cur = None
    return out


def longest_over_s(tape, breaker, t0, t1):
    """The longest continuous over-breaker stretch (car on the phase), in s, budget or not."""
    return max([(b - a) / 1000.0 for a, b, _ in over_intervals(tape, breaker, t0, t1)] or [0.0])


def overshoot_as(tape, breaker, t0, t1):
    acc = 0.0
    for a, b, h, c in tape.segments(t0, t1):
        for p in range(3):
            x = h[p] + c[p] - breaker
            if x > 0:
                acc += x * (b - a)
    return acc / 1000.0


def first_cut(tape, t_step, pilot_before, t_end):
    """(ms, cmd, amps) of the first command after t_step that lowers the pilot or pauses."""
    for ms, cmd, args in tape.commands(t_step, t_end, ("SC", "FS", "FD")):
        if cmd == "SC":
            a = sc_amps(args)
            if a is not None and pilot_before is not None and a < pilot_before:
                return ms, cmd, a
        else:
            return ms, cmd, 0
    return None


def back_under_ms(tape, breaker, t_step, t_end):
    """0 if the step did not put the house over the breaker; else how long until the stretch it
    started ended (t_end - t_step if it never did)."""
    for iv in over_intervals(tape, breaker, t_step, t_end):
        if iv[0] <= t_step + 50:
            return iv[1] - t_step
        break
    return 0


def car_draw(car, phases):
    return max(car[p] for p in phases)


def reach_ms(tape, t_step, t_end, level, phases):
    """Time after t_step until the car draws at least `level` A (truth), or None."""
    for a, b, h, c in tape.segments(t_step, t_end):
        if car_draw(c, phases) >= level - 1e-9:
            return a - t_step
    return None


def pilot_reach_ms(tape, t_step, t_end, level, pilot_before):
    if pilot_before is not None and pilot_before >= level:
        return 0
    for ms, cmd, args in tape.commands(t_step, t_end, ("SC",)):
        a = sc_amps(args)
        if a is not None and a >= level:
            return ms - t_step
    return None


def reversals(tape, t0, t1):
    """Direction changes of the $SC sequence in [t0, t1)."""
    vals = [sc_amps(a) for _, _, a in tape.commands(t0, t1, ("SC",))]
    vals = [v for v in vals if v is not None]
    n = 0
    last = 0
    for i in range(1, len(vals)):
        d = vals[i] - vals[i - 1]
        if d == 0:
            continue
        s = 1 if d > 0 else -1
        if last and s != last:
            n += 1
        last = s
    return n


def energy_as(tape, t0, t1, phases):
    """What the car drew, A*s per phase (the most loaded of its phases)."""
    acc = 0.0
    for a, b, h, c in tape.segments(t0, t1):
        acc += car_draw(c, phases) * (b - a)
    return acc / 1000.0


def fits_amps(house3, breaker, phases, c_limit, car_max, margin=None):
    """The whole amps a controller keeping `margin` A spare can give the car at steady state
    (margin: the firmware's MARGIN_A)."""
    if margin is None:
        from dinamics import headroom as hr

        margin = hr.MARGIN_A
    h = min(breaker - max(0.0, house3[p]) for p in phases)
    return min(math.floor(h - margin + 1e-9), c_limit, math.floor(car_max))


def step_figures(tape, t_step, t_end, pilot_before, breaker, phases, c_min, c_limit, car_max,
                 budget_ms=budget.BUDGET_MS):
    """Everything about one load step at t_step (the load constant until t_end)."""
    house_after, car_at = tape.at(t_step)
    draw0 = car_draw(car_at, phases)
    over = any(house_after[p] + car_at[p] > breaker and car_at[p] > 0 for p in range(3))
    f = {"t": t_step, "over": over, "pilot_before": pilot_before, "draw_before": draw0,
         "budget_ms": budget_ms}
    cut = first_cut(tape, t_step, pilot_before, t_end)
    f["reaction_ms"] = (cut[0] - t_step) if (over and cut) else None
    f["cut_to"] = cut[2] if cut else None
    target = fits_amps(house_after, breaker, phases, c_limit, car_max)
    f["target"] = target
    f["fit_ms"] = None
    if over:
        for ms, cmd, args in tape.commands(t_step, t_end, ("SC", "FS", "FD")):
            if cmd != "SC" or (sc_amps(args) is not None and sc_amps(args) <= target):
                f["fit_ms"] = ms - t_step
                break
    f["back_under_ms"] = back_under_ms(tape, breaker, t_step, t_end) if over else 0
    f["overshoot_as"] = overshoot_as(tape, breaker, t_step, t_end)
    f["violations"] = len(budget.violations(tape, breaker, budget_ms, t_step, t_end))
    # decisions made on readings that saw only the new load (a late raise for the previous
    # load followed by the cut for this one is not an oscillation)
    f["reversals"] = reversals(tape, t_step + SETTLED_MS, t_end)
    f["headroom95_ms"] = f["headroom95_pilot_ms"] = None
    f["raise"] = (not over and draw0 > 0 and target >= c_min and target >= draw0 + 1)
    if f["raise"]:
        level = 0.95 * target
        f["headroom95_ms"] = reach_ms(tape, t_step, t_end, level, phases)
        f["headroom95_pilot_ms"] = pilot_reach_ms(tape, t_step, t_end, level, pilot_before)
    return f


def spurious_pauses(tape, t0, t1, breaker, phases, c_min, c_limit, car_max):
    """Pauses ($FS/$FD) sent while the true house load (car excluded), now and over the second
    before, left room for at least the minimum: the balancer paused for nothing."""
    out = []
    last = None
    for ms, cmd, _ in tape.commands(t0, t1, ("FS", "FD", "FE")):
        if cmd == last:
            continue
        last = cmd
        if cmd == "FE":
            continue
        worst = min(fits_amps(h, breaker, phases, c_limit, car_max)
                    for a, b, h, c in tape.segments(ms - 1000, ms + 1))
        if worst >= c_min:
            out.append(ms)
    return out


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(math.ceil(q / 100.0 * len(v))) - 1))
    return v[k]
