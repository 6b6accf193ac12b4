"""The one safety gate before the wire: every `$SC` lies in [6, min(c_limit, breaker)].

Placeholder API (the full version with its property tests lands separately)."""

PILOT_MIN = 6  # J1772: the lowest pilot a car must accept


def pilot_ceiling(settings):
    hi = PILOT_MIN
    try:
        hi = min(int(settings.get("c_limit")), int(settings.get("breaker")))
    except (TypeError, ValueError):
        pass
    return hi if hi > PILOT_MIN else PILOT_MIN


def gate_sc(amps, settings):
    try:
        a = int(amps)
    except (TypeError, ValueError):
        return PILOT_MIN
    hi = pilot_ceiling(settings)
    if a > hi:
        a = hi
    return a if a > PILOT_MIN else PILOT_MIN
