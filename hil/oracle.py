"""The energy yardstick: what a controller that knows the future house load would give the car.
energy_vs_oracle figures (scenarios, benchmark) divide the car's energy (hil.figures.energy_as)
by these.

The oracle drives the same OpenEVSE controller the firmware drives, so the controller's own limits
bind it too (controller_ceiling):
* the pilot cannot exceed the controller's saved capacity (a measured 8.2.3 keeps 24 A by default;
  a volatile `$SC n V` above it is answered `$NK 24` and clamped), whatever c_limit says;
* it cannot change the pilot while the controller stalls or boots (freeze windows): a pilot the
  oracle would change inside such a window is held from the window's start at the lowest value
  the window needs (never over the breaker), raises wait for its end.
The oracle changes the pilot one EV response ahead; the controller's stalls at its own state
changes (A->B 0.3 s, B->C 1.1-1.3 s before the relay closes) fall inside the car's 5 s response,
so they cost an oracle driving that car nothing (the car cannot draw before response_ms after the
pilot offers current anyway); freeze windows matter for a controller that is busy while the house
changes (a reboot, a stall during a load step)."""
import math


def controller_ceiling(emu, c_limit):
    """The highest pilot any controller driving this emulated charger can get: c_limit, but not
    more than the controller's saved capacity (volatile `$SC` cannot exceed it)."""
    cap = getattr(emu, "saved_amps", None) if emu is not None else None
    return c_limit if cap is None else min(c_limit, cap)


def oracle_amps(house3, breaker, phases, c_min, c_limit, car_max, margin=0.0):
    """What a controller that knows the load would command: whole amps (the pilot is in whole
    amps), no margin, no EV lag; export never adds room above the breaker (the same safety rule
    as the firmware: the sun can vanish faster than a car follows its pilot); below the minimum
    it pauses."""
    h = min(breaker - max(0.0, house3[p]) for p in phases)
    a = min(math.floor(h - margin + 1e-9), c_limit, math.floor(car_max))
    return a if a >= c_min else 0


def _pieces(house, t0, t1, breaker, phases, c_min, c_limit, car_max, margin):
    cuts = sorted(set([t0] + [t for t, _ in house.steps if t0 < t < t1]))
    out = []
    for i, a in enumerate(cuts):
        b = cuts[i + 1] if i + 1 < len(cuts) else t1
        out.append([a, b, oracle_amps(house.amps(a), breaker, phases, c_min, c_limit, car_max,
                                      margin)])
    return out


def _freeze(pieces, windows):
    """Hold the amps constant over each [s, e) window at the lowest value inside it."""
    for s, e in windows or ():
        inside = [p for p in pieces if p[0] < e and p[1] > s]
        if len(inside) < 2:
            continue
        low = min(p[2] for p in inside)
        out = []
        for a, b, v in pieces:
            if b <= s or a >= e:
                out.append([a, b, v])
                continue
            if a < s:
                out.append([a, s, v])
            out.append([max(a, s), min(b, e), low])
            if b > e:
                out.append([e, b, v])
        pieces = out
    return pieces


def oracle_as(house, t0, t1, breaker, phases, c_min, c_limit, car_max, margin=0.0, freeze=()):
    """Oracle energy in A*s per phase over [t0, t1) for a hil.house.HouseLoad (margin: leave
    that much unused, as the firmware does, to see how much of a gap the margin explains;
    freeze: [(start, end)] ms windows in which the car's draw cannot change, see _freeze)."""
    if t1 <= t0:
        return 0.0
    pieces = _freeze(_pieces(house, t0, t1, breaker, phases, c_min, c_limit, car_max, margin),
                     freeze)
    return sum(v * (b - a) for a, b, v in pieces) / 1000.0


def car_oracle_as(house, t_plug, t1, breaker, phases, c_min, c_limit, ev, margin=0.0,
                  freeze=()):
    """The oracle driving the same car, from its plug-in at t_plug: knowing the future load it
    changes the pilot one EV response ahead, so the car tracks oracle_amps exactly -- except that
    nothing can make the car draw before it answered the first pilot (ev.response_ms after the
    plug-in). This is the best any controller could get out of that car; oracle_as from t_plug
    (energy_vs_instant_oracle) also counts the car's own start-up delay against the firmware.
    c_limit: pass controller_ceiling(emu, c_limit). freeze: windows in which the controller could
    not change the pilot (ms, pilot time); the car follows them one response later."""
    r = ev.response_ms
    return oracle_as(house, t_plug + r, t1, breaker, phases, c_min, c_limit, ev.max_amps, margin,
                     [(s + r, e + r) for s, e in freeze])
