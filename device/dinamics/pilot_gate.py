"""The last gate before the wire: every `$SC <amps>` the unit sends passes through gate_sc().

Whatever the balancer computed and whatever the stored settings hold (a hand-made settings file
may break the table's ranges and the cross-field rules), the current that reaches the controller
is a whole number of amps in

    PILOT_MIN (6, J1772's lowest pilot) <= amps <= pilot_ceiling(settings)
    pilot_ceiling(settings) = max(6, min(c_limit, breaker, PILOT_MAX))

Pure functions: no clock, no I/O, no allocation beyond small ints; they never raise.
  gate_sc(amps, settings) -> int    amps: int or float (floored); anything else (None, bool,
                                    str, NaN, inf, negative, 0) becomes the floor PILOT_MIN
  pilot_ceiling(settings) -> int    a c_limit or breaker that is missing or not a number
                                    makes the ceiling PILOT_MIN (the safe choice)
`settings` is anything with get(name): the live dinamics.settings.Settings or a plain dict.
"""

PILOT_MIN = 6  # A: the lowest pilot J1772 defines; $SC below it is refused by the controller
PILOT_MAX = 80  # A: the highest pilot J1772 defines (and the c_limit table's maximum)


def _amps(v):
    """A whole number of amps >= 0, or -1 for anything unusable."""
    if v is None or v is True or v is False:
        return -1
    if isinstance(v, int):
        return v if v >= 0 else -1
    if isinstance(v, float):
        if v != v or v >= 1e9 or v < 0.0:  # NaN, +inf / absurd, negative, -inf
            return -1
        return int(v)  # floor: never round a current up
    return -1


def _setting(settings, name):
    try:
        return _amps(settings.get(name))
    except Exception:  # noqa: BLE001 - a missing key or a broken object: the safe ceiling
        return -1


def pilot_ceiling(settings):
    """The highest pilot the unit may ever advertise: min(c_limit, breaker), never below 6."""
    c = _setting(settings, "c_limit")
    b = _setting(settings, "breaker")
    if c < 0 or b < 0:
        return PILOT_MIN
    top = c if c < b else b
    if top > PILOT_MAX:
        top = PILOT_MAX
    if top < PILOT_MIN:
        top = PILOT_MIN
    return top


def gate_sc(amps, settings):
    """The amps a `$SC` may carry: `amps` clamped to [PILOT_MIN, pilot_ceiling(settings)]."""
    a = _amps(amps)
    if a < PILOT_MIN:
        return PILOT_MIN
    top = pilot_ceiling(settings)
    return a if a < top else top
