"""Stored settings at load (boot): each value re-validated against the table, then the
cross-field rules repaired. Boot-time only: Settings.load imports it and drops it after (heap,
docs/heap.md). The rules themselves, as applied to a change, are dinamics.settings.check_together."""

from dinamics.settings import (DEFAULT, LINK_SILENCE_PER_TIMEOUT, MAX_POLL_MS, POLL_TIMERS, parse,
                               row)


def load(values, stored):
    """Put the stored values into `values` (the live dict). A value the table refuses gives the
    default. -> (name, stored value, used value) for every stored value not used as is."""
    fixed = []
    for name, v in stored.items():
        if name in values:
            r = row(name)
            try:
                used = parse(r, str(v))
            except ValueError:
                used = r[DEFAULT]
            values[name] = used
            if used != v:  # refused, or not stored as its type (a hand-edited "6" for 6)
                fixed.append((name, v, used))
    fixed.extend(repair(values))
    return fixed


def repair(values):
    """Make values that break a cross-field rule safe (stored settings at load). Returns a list of
    (name, stored value, used value), in the order the repairs were made:
      c_min_limit above c_limit       -> c_min_limit := c_limit
      timerN x TFO above MAX_POLL_MS  -> those timers := their defaults; if even a default is too
                                         long for that TFO, TFO := its default (30) instead
      2 x timer13 above link_silence  -> timer13 := its default (the shorter silence is kept)"""
    fixed = []

    def put(name, v):
        fixed.append((name, values[name], v))
        values[name] = v

    if values["c_min_limit"] > values["c_limit"]:
        put("c_min_limit", values["c_limit"])
    tfo = values["TFO"]
    bad = [t for t in POLL_TIMERS if values[t] * tfo > MAX_POLL_MS]
    if bad:
        for t in bad:
            if row(t)[DEFAULT] * tfo > MAX_POLL_MS:
                put("TFO", row("TFO")[DEFAULT])  # every timer x 30 is below the limit
                break
        else:
            for t in bad:
                put(t, row(t)[DEFAULT])
    if values["timer13"] * LINK_SILENCE_PER_TIMEOUT > values["link_silence_ms"]:
        put("timer13", row("timer13")[DEFAULT])
    return fixed
