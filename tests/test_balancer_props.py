"""Property-based tests of the balancer: the pure arithmetic (dinamics.headroom) and the closed
loop (hil/plant.py: balancer + fake controller + car that follows its pilot late + house load
trace + CT readings as ct_meter posts them: a reading after each CT's 100 ms window, every CT
refreshed once per 300 ms round), in virtual time. The virtual clock starts 65 s before the
2**29 tick wrap, so every closed-loop example crosses it.

REACTION BUDGET and VIOLATION (hil/budget.py, one definition for these tests, the HIL scenarios
and the benchmark; docs/balancer.md "Reaction budget"): after a house load step at time s, every
phase that carries EV current is back under the breaker by s + R,
    R = T_detect + max(t_response, timer4 + T_reading + min(t_response, 3 s)),
    T_detect = 2 T_reading + 3 t_link + 50 ms of scheduling slack,
here with T_reading = the plant's CT reading period (300 ms) and t_link = the plant's reply delay.
An overload with no house step on that phase within R before it is a violation, whatever the
cause (a raise that should not have happened, a missed cut, a double cut that later overshoots,
a pause that does not come).

Examples: 150 closed-loop scenarios for the budget property, 50 for the others (about 25 s in
all); derandomized so CI runs are reproducible. BALANCER_PROP_EXAMPLES=n overrides every count.
The derandomized set is always the same one: it missed counterexamples that other draws found.
Explore with other randomness too: BALANCER_PROP_SEED=s (an int) draws the closed-loop examples
from hypothesis seed s instead (a failure prints the seed and the example to rerun it), e.g.
    for s in 1 2 3; do BALANCER_PROP_SEED=$s BALANCER_PROP_EXAMPLES=2000 \
        pytest tests/test_balancer_props.py -k "budget or resumes or stale"; done
"""
import os

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from dinamics import headroom as hr
from hil.budget import READING_MS, RELAY_OPEN_MS, reaction_budget_ms, violations
from hil.ev_model import EvModel
from hil.plant import HouseTrace, Plant

N = int(os.environ.get("BALANCER_PROP_EXAMPLES", "0"))
SEED = os.environ.get("BALANCER_PROP_SEED", "")


def loop(n):
    s = settings(max_examples=N or n, deadline=None, derandomize=not SEED, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    if not SEED:
        return s
    return lambda f: seed(int(SEED))(s(f))
PURE = settings(max_examples=300, deadline=None, derandomize=True)

# --- pure arithmetic ----------------------------------------------------------------------------

amps3 = st.tuples(*[st.floats(-40, 120, allow_nan=False)] * 3)
masks = st.integers(1, 7)


@PURE
@given(breaker=st.integers(6, 100), amps=amps3, ev=st.floats(0, 80), mask=masks)
def test_headroom_never_above_the_breaker_and_export_adds_nothing(breaker, amps, ev, mask):
    h = hr.headroom(breaker, amps, ev, mask)
    assert h <= breaker
    worst = max(amps[p] - ev for p in range(3) if mask & (1 << p))
    assert abs(h - (breaker - max(0.0, worst))) < 1e-9


@PURE
@given(breaker=st.integers(6, 100), amps=amps3, ev=st.floats(0, 80), mask=masks,
       p=st.integers(0, 2), more=st.floats(0, 50))
def test_headroom_shrinks_with_load(breaker, amps, ev, mask, p, more):
    a2 = list(amps)
    a2[p] += more
    assert hr.headroom(breaker, a2, ev, mask) <= hr.headroom(breaker, amps, ev, mask)


limits = st.integers(6, 32).flatmap(lambda lo: st.tuples(st.just(lo), st.integers(lo, 80)))


@PURE
@given(lim=limits, cmd=st.integers(6, 80), h=st.floats(-50, 120))
def test_regulate_outcomes(lim, cmd, h):
    c_min, c_limit = lim
    kind, a = hr.regulate(cmd, h, c_min, c_limit)
    if kind == hr.SHORT:
        assert h < c_min + hr.HOLD_A and a == c_min
    elif kind == hr.CUT:
        assert c_min <= a and (a < cmd or cmd > c_limit) and a <= c_limit
        assert a + hr.MARGIN_A <= h + hr.EPS or a == c_min
    elif kind == hr.RAISE:
        assert cmd < a <= c_limit and a + hr.MARGIN_A <= h + hr.EPS and a == hr.allowed(h, c_limit)
    else:
        assert kind == hr.HOLD and a == cmd
        assert h >= cmd + hr.HOLD_A and (hr.allowed(h, c_limit) <= cmd)


@PURE
@given(lim=limits, cmd=st.integers(6, 79), h=st.floats(6, 120))
def test_no_dead_zone_a_real_plus_one_amp_is_given(lim, cmd, h):
    c_min, c_limit = lim
    if c_min <= cmd < c_limit and h >= cmd + 1 + hr.MARGIN_A:
        kind, a = hr.regulate(cmd, h, c_min, c_limit)
        assert kind == hr.RAISE and a >= cmd + 1


@PURE
@given(lim=limits, h=st.floats(6, 120), noise=st.floats(0, 1))
def test_a_new_command_holds_under_noise_within_the_band(lim, h, noise):
    c_min, c_limit = lim
    cmd = hr.allowed(h, c_limit)
    if cmd < c_min:
        return
    h2 = h - noise * (hr.MARGIN_A - hr.HOLD_A) * 0.999  # anything down to the band's edge
    kind, _a = hr.regulate(cmd, h2, c_min, c_limit)
    assert kind == hr.HOLD


@PURE
@given(mask=masks, fitted_extra=st.integers(0, 7), step=st.floats(4, 32),
       sign=st.sampled_from((1, -1)), noise=st.lists(st.floats(-0.2, 0.2), min_size=3, max_size=3))
def test_phase_classification_recovers_the_ev_phases(mask, fitted_extra, step, sign, noise):
    fitted = mask | fitted_extra
    ev_step = sign * step
    deltas = [(ev_step if mask & (1 << p) else 0.0) + noise[p] for p in range(3)]
    assert hr.classify_phases(deltas, ev_step, fitted) == mask


@PURE
@given(fitted=masks, step=st.floats(4, 32), drop=st.floats(0.4, 40), p=st.integers(0, 2))
def test_phase_classification_is_signed(fitted, step, drop, p):
    """A phase whose load FELL while the EV current rose is never taken for an EV phase (the seed
    stored the deltas unsigned, so a drop looked like a big rise)."""
    deltas = [0.0, 0.0, 0.0]
    deltas[p] = -drop
    got = hr.classify_phases(deltas, step, fitted)
    assert got is None or not got & (1 << p)


def test_phase_codes():
    assert [hr.phases_code(hr.cte_mask(c)) for c in (0, 1, 2, 3, 12, 13, 23, 123)] == [
        (0, 0), (1, 1), (2, 1), (3, 1), (12, 2), (13, 2), (23, 2), (123, 3)]


# --- closed loop ---------------------------------------------------------------------------------

@st.composite
def scenarios(draw, quiet_ms=150000):
    breaker = draw(st.sampled_from((16, 20, 25, 32, 40, 63)))
    c_min = draw(st.sampled_from((6, 6, 8)))
    c_limit = draw(st.integers(max(c_min, 8), 32))
    phases = draw(st.sampled_from((1, 3)))
    phase = draw(st.integers(1, 3))
    single_ct = phases == 1 and draw(st.booleans())
    neg = draw(st.booleans())
    lo = -10.0 if neg else 0.0
    steps = []
    t = 0
    cur = [0.0, 0.0, 0.0]
    for dt, p, a in draw(st.lists(st.tuples(st.integers(500, 40000), st.integers(0, 2),
                                            st.floats(lo, breaker + 6.0)),
                                  min_size=1, max_size=14)):
        t += dt
        cur[p] = round(a, 1)
        steps.append((t, tuple(cur)))
    end = t + quiet_ms
    sc = dict(
        settings={"dinamics": 1, "cte": phase if single_ct else 123, "breaker": breaker,
                  "c_limit": c_limit, "c_min_limit": c_min, "neg_amp": int(neg),
                  "min_off_ms": draw(st.sampled_from((0, 5000, 20000, 30000))),
                  "timer4": draw(st.sampled_from((500, 1000, 2000)))},
        car=dict(max_amps=draw(st.integers(10, 32)), phases=phases, phase=phase,
                 response_s=draw(st.sampled_from((5.0, 5.0, 5.0, 2.0, 6.0)))),
        steps=steps, end=end, last_step=t,
        noise=draw(st.sampled_from((0.0, 0.05, 0.1))),
        reply_ms=draw(st.sampled_from((20, 40, 100))),
        seed=draw(st.integers(0, 1000)))
    return sc


def run(sc):
    p = Plant(sc["settings"], ev=EvModel(**sc["car"]), house=HouseTrace(sc["steps"]),
              ct_noise=sc["noise"], seed=sc["seed"], reply_ms=sc["reply_ms"], ct_each=True)
    p.run_until(sc["end"])
    return p


@loop(150)
@given(sc=scenarios())
def test_breaker_budget_limits_and_steady_state(sc):
    p = run(sc)
    s = sc["settings"]
    # 1. the breaker is never exceeded beyond the reaction budget
    r = reaction_budget_ms(s["timer4"], int(sc["car"]["response_s"] * 1000), sc["reply_ms"])
    bad = violations(p, s["breaker"], r, 0, p.clock.ms)
    assert not bad, (bad[:3], r)
    # 2. every command within [c_min_limit, c_limit]
    for t, a in p.sc_values():
        assert s["c_min_limit"] <= a <= s["c_limit"], (t, a)
    # 3. a steady load gives a steady current: nothing changes in the last 50 s of the
    #    150 s without house steps (settling: min_off <= 30 s, confirmation, raise). The one
    #    exception is the price of having no dead zone: a room that sits exactly on a whole amp
    #    (h - MARGIN_A = n within the CT noise) may get its +1 A late, once, and keeps it; the
    #    same for a paused charge whose resume threshold (c_min_limit + resume_margin, default
    #    1 A, on every reading for 2 s) sits on it: it may resume late, once, at that current
    #    (its SC and FE), and keeps charging.
    late = [c for c in p.commands() if c[1] != "GG" and c[0] > sc["end"] - 50000]
    if late:
        before = [a for t, a in p.sc_values() if t <= late[0][0]]
        if late[-1][1] == "FE":
            edge = s["c_min_limit"] + 1
            assert ([c[1] for c in late] in (["FE"], ["SC", "FE"]) and before
                    and before[-1] == edge and p.charging()), late
        else:
            assert (len(late) == 1 and late[0][1] == "SC" and len(before) >= 2
                    and before[-1] == before[-2] + 1), late
    # 4. the car never draws above what was commanded (sanity of the plant)
    assert p.ev.max_amps >= 0


@loop(50)
@given(breaker=st.sampled_from((16, 25, 32)), phases=st.sampled_from((1, 3)),
       phase=st.integers(1, 3), heavy_s=st.integers(2, 120), min_off_s=st.integers(0, 60),
       margin=st.integers(0, 3), seed=st.integers(0, 100))
def test_pause_resumes_automatically(breaker, phases, phase, heavy_s, min_off_s, margin, seed):
    """Minimum does not fit -> pause; when minimum + resume_margin fits again the charge
    restarts by itself, no later than min_off_ms after the pause + confirmation + a reading."""
    light = [0.0, 0.0, 0.0]
    heavy = [0.0, 0.0, 0.0]
    p_idx = phase - 1
    heavy[p_idx] = breaker - 2.0  # minimum (6 A) does not fit on the EV phase
    light[p_idx] = breaker - 6.0 - margin - 2.0  # minimum + margin fits with 1.5 A to spare
    t_heavy = 20000
    t_light = t_heavy + heavy_s * 1000
    house = HouseTrace([(t_heavy, heavy), (t_light, light)])
    s = {"dinamics": 1, "cte": 123, "breaker": breaker, "c_limit": 32,
         "min_off_ms": min_off_s * 1000, "resume_margin": margin}
    p = Plant(s, ev=EvModel(max_amps=32, phases=phases, phase=phase), house=house,
              ct_noise=0.1, seed=seed, ct_each=True)
    p.run_until(t_light + min_off_s * 1000 + 30000)
    fs = [t for t, c, _ in p.commands() if c == "FS" and t >= t_heavy]
    assert fs and fs[0] <= t_heavy + reaction_budget_ms(1000, 5000, link_ms=40)
    fe = [t for t, c, _ in p.commands() if c == "FE" and t > fs[0]]
    assert fe, "never resumed"
    # resume needs: min_off over, the lighter load, and the car gone from the CTs (after FS the
    # controller opens the relay when the car stops, at the latest after 3 s); then the
    # confirmation period and up to two readings
    bound = (max(fs[0] + min_off_s * 1000, t_light, fs[0] + RELAY_OPEN_MS)
             + hr.RESUME_CONFIRM_MS + 3 * READING_MS)
    assert fe[0] <= bound
    assert fe[0] >= fs[0] + min_off_s * 1000  # min_off_ms respected
    assert p.charging()


@loop(50)
@given(action=st.sampled_from((0, 1)), stale_s=st.integers(1, 5), stop_at=st.integers(8000, 60000),
       outage_s=st.integers(0, 30), phases=st.sampled_from((1, 3)), seed=st.integers(0, 100))
def test_stale_ct_falls_back_within_stale_ms_plus_one_reading(action, stale_s, stop_at, outage_s,
                                                              phases, seed):
    s = {"dinamics": 1, "cte": 123, "breaker": 32, "c_limit": 16, "stale_ms": stale_s * 1000,
         "stale_action": action, "min_off_ms": 0}
    p = Plant(s, ev=EvModel(max_amps=32, phases=phases), house=HouseTrace(start=(3, 3, 3)),
              ct_noise=0.1, seed=seed, ct_each=True)
    p.run_until(stop_at)
    p.stop_ct()
    last = p.last_reading_ms
    p.run_until(last + stale_s * 1000 + outage_s * 1000 + 400)
    after = [(t, c, a) for t, c, a in p.commands() if t > last and c != "GG"]
    deadline = last + stale_s * 1000 + p.ct_period_ms + 100
    if outage_s * 1000 >= p.ct_period_ms:
        if action == 0:
            fb = [t for t, c, a in after if c == "FS"]
        else:
            fb = [t for t, c, a in after if c == "SC" and a[0] == 6]
        assert fb and fb[0] <= deadline, after
        assert [e[1][2] for e in p.recorder.ct_faults].count("CT data stale") == 1
    p.start_ct()
    p.run_for(15000)
    assert p.charging()
    assert p.recorder.ct_faults[-1][1][2] == "CT data fresh again"
