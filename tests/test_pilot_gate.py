"""dinamics.pilot_gate: whatever the settings hold, a $SC lies in [6, max(6, min(c_limit, breaker))]."""
import math

from hypothesis import given, settings as hsettings, strategies as st

from dinamics.pilot_gate import PILOT_MAX, PILOT_MIN, gate_sc, pilot_ceiling
from dinamics.settings import Settings

# What a hand-made settings file (or a broken caller) could hold, well outside the table's ranges.
_ODD = st.one_of(
    st.integers(-10**6, 10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
)
_AMPS = st.one_of(st.integers(-1000, 1000), _ODD)


def _limit(v):
    """Independent model: the usable whole amps of a setting, or None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, float) and math.isfinite(v) and 0 <= v < 1e9:
        return int(v)
    return None


@hsettings(max_examples=500, deadline=None)
@given(_AMPS, _ODD, _ODD, _ODD)
def test_gate_always_within_floor_and_ceiling(amps, c_limit, breaker, c_min_limit):
    s = {"c_limit": c_limit, "breaker": breaker, "c_min_limit": c_min_limit}
    a = gate_sc(amps, s)
    assert type(a) is int
    c, b = _limit(c_limit), _limit(breaker)
    top = PILOT_MIN if c is None or b is None else max(PILOT_MIN, min(c, b, PILOT_MAX))
    assert pilot_ceiling(s) == top
    assert PILOT_MIN <= a <= top
    # an in-range request passes unchanged, anything else is clamped to the nearer bound
    want = _limit(amps)
    if want is None or want < PILOT_MIN:
        assert a == PILOT_MIN
    elif want > top:
        assert a == top
    else:
        assert a == want


@hsettings(max_examples=300, deadline=None)
@given(st.integers(-50, 200), st.integers(-50, 200), st.integers(-50, 200), st.integers(-50, 200))
def test_gate_with_live_settings_object(amps, c_limit, breaker, c_min_limit):
    s = Settings()
    # Settings.apply does not validate: this is what a bypassed check could leave behind.
    s.apply("c_limit", c_limit)
    s.apply("breaker", breaker)
    s.apply("c_min_limit", c_min_limit)
    a = gate_sc(amps, s)
    assert PILOT_MIN <= a <= max(PILOT_MIN, min(max(c_limit, 0), max(breaker, 0)))


def test_the_testers_cases():
    # a hand-made file with c_min_limit 20 > c_limit 10: the balancer asked for 20
    assert gate_sc(20, {"c_limit": 10, "breaker": 16, "c_min_limit": 20}) == 10
    # static mode with c_limit 32 and breaker 10
    assert gate_sc(32, {"c_limit": 32, "breaker": 10}) == 10


def test_bad_amps_become_the_floor_and_floats_are_floored():
    s = {"c_limit": 32, "breaker": 40}
    for bad in (None, -1, -0.5, 0, 5, float("nan"), float("inf"), float("-inf"), "16", b"16", True):
        assert gate_sc(bad, s) == PILOT_MIN, bad
    assert gate_sc(15.9, s) == 15  # never rounded up
    assert gate_sc(16, s) == 16


def test_missing_or_broken_settings_give_the_floor():
    assert pilot_ceiling({}) == PILOT_MIN
    assert gate_sc(16, {"c_limit": 16}) == PILOT_MIN
    assert gate_sc(16, None) == PILOT_MIN
    assert gate_sc(16, Settings()) == 16  # defaults: c_limit 16, breaker 16


def test_ceiling_never_below_six_nor_above_j1772():
    assert pilot_ceiling({"c_limit": 3, "breaker": 16}) == PILOT_MIN
    assert gate_sc(40, {"c_limit": 3, "breaker": 16}) == PILOT_MIN
    assert pilot_ceiling({"c_limit": 500, "breaker": 500}) == PILOT_MAX == 80
