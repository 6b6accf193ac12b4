"""The energy yardstick: what a controller that knows the future house load would give the car.
energy_vs_oracle figures (scenarios, benchmark) divide the car's energy (hil.figures.energy_as)
by these."""
import math


def oracle_amps(house3, breaker, phases, c_min, c_limit, car_max, margin=0.0):
    """What a controller that knows the load would command: whole amps (the pilot is in whole
    amps), no margin, no EV lag; export never adds room above the breaker (the same safety rule
    as the firmware: the sun can vanish faster than a car follows its pilot); below the minimum
    it pauses."""
    h = min(breaker - max(0.0, house3[p]) for p in phases)
    a = min(math.floor(h - margin + 1e-9), c_limit, math.floor(car_max))
    return a if a >= c_min else 0


def oracle_as(house, t0, t1, breaker, phases, c_min, c_limit, car_max, margin=0.0):
    """Oracle energy in A*s per phase over [t0, t1) for a hil.house.HouseLoad (margin: leave
    that much unused, as the firmware does, to see how much of a gap the margin explains)."""
    cuts = sorted(set([t0] + [t for t, _ in house.steps if t0 < t < t1]))
    acc = 0.0
    for i, a in enumerate(cuts):
        b = cuts[i + 1] if i + 1 < len(cuts) else t1
        acc += oracle_amps(house.amps(a), breaker, phases, c_min, c_limit, car_max,
                           margin) * (b - a)
    return acc / 1000.0


def car_oracle_as(house, t_plug, t1, breaker, phases, c_min, c_limit, ev, margin=0.0):
    """The oracle driving the same car, from its plug-in at t_plug: knowing the future load it
    changes the pilot one EV response ahead, so the car tracks oracle_amps exactly -- except that
    nothing can make the car draw before it answered the first pilot (ev.response_ms after the
    plug-in). This is the best any controller could get out of that car; oracle_as from t_plug
    (energy_vs_instant_oracle) also counts the car's own start-up delay against the firmware."""
    return oracle_as(house, t_plug + ev.response_ms, t1, breaker, phases, c_min, c_limit,
                     ev.max_amps, margin)
