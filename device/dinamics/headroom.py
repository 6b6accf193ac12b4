"""Load-management arithmetic for the balancer: small pure functions, no I/O, no clock.

Conventions
- Phases are indexed 0..2 (L1..L3) and CT n measures phase n. A phase set is a bit mask:
  bit0 = L1, bit1 = L2, bit2 = L3 (`cte_mask(123) == 7`).
- `amps` is the ct.reading tuple: house mains current per phase, INCLUDING the EV, signed when
  negative amperage (export) is enabled.
- `ev` is the EV's current per phase it uses (what $GG reports: the controller measures one leg).

Headroom on phase p (the most the EV may draw on p at steady state without the phase exceeding the
breaker):   h_p = breaker - max(0, amps_p - ev)
The EV-less load `amps_p - ev` is clamped at 0: export (solar) never adds headroom above the
breaker, because the sun can vanish faster than a car follows its pilot (~5 s), and then the whole
EV current flows through the main breaker. The balancer's headroom is the minimum over the phases
the EV uses (unknown -> every fitted phase: the conservative choice).

Commands are whole amps: a NEW command leaves at least MARGIN_A unused at the projected steady
state (floor(h - MARGIN_A)); an EXISTING command is kept while it stays at least HOLD_A under the
breaker. MARGIN_A - HOLD_A is the hysteresis band that keeps a steady (noisy) load from toggling
the command; there is no +1 A dead zone: a headroom of cmd + 1 + MARGIN_A gets the +1 A.
"""

import math

MARGIN_A = 0.4  # a new command leaves this much headroom (CT accuracy + noise)
HOLD_A = 0.1  # a command is cut once the projection is closer than this to the breaker
EV_RESPONSE_MS = 5000  # a car follows a pilot change within ~5 s (IEC 61851-1 Annex A timing)
SETTLE_MS = 7000  # after a command change no raise before the car has followed (+2 $GG polls)
FOLLOWED_A = 0.5  # ... or two $GG since the change within this of the command show it has
RAISE_CONFIRM_MS = 1000  # a raise needs the room on every fresh reading (~10) for this long
STEADY_A = 1.0  # a raise waits for a reading in which no phase moved more than this
STEP_A = 1.0  # an EV-less load this much above its last unambiguous value is a house step
EPS = 0.005  # comparisons tolerate float rounding: 32 - 25.8 is 6.1999..., and a board's single-
# precision RMS of a 6 A wave reads 5.998792 A (its floats: ~7 digits)
RESUME_CONFIRM_MS = 2000  # resume needs the room on every fresh reading for this long
CYCLE_WINDOW_MS = 600000  # a pause this soon after the last resume counts as cycling;
CYCLE_FREE_PAUSES = 2  # beyond this many such pauses in a row each one doubles the minimum-off
OFF_BACKOFF_MAX = 3  # time, up to 2**3 x min_off_ms
GG_PERIOD_MS = 1000  # the balancer asks for $GG this often while charging (dynamic mode)
GG_STALE_MS = 3000  # an older $GG is not trusted as the EV's current
GG_DEFER_MAX_MS = 1000  # a projected (not actual) cut waits at most this long for a fresh $GG
ESCALATE_MS = EV_RESPONSE_MS + 1500  # an actual overload outliving a cut by this: cut by the excess
HARD_OVER_FRACTION = 0.1  # at minimum still this far over the breaker: pause without timer4
HARD_OVER_MIN_A = 1.0
DRAW_LOW_A = 0.5  # timer1: "car draws < 0.5 A"
OVER_DRAW_A = 0.5  # timer3: "car draws more than allowed + 0.5 A"
SOLAR_IMPORT_A = 0.5  # solar mode: net import above this on an EV phase counts as "import"
DETECT_MIN_A = 4.0  # phase detection needs an EV current step at least this big
DETECT_ON = (0.6, 1.4)  # phase follows the EV step: delta / ev_step in this range
DETECT_OFF = 0.35  # phase ignores the EV step: |delta / ev_step| below this

# regulate() results
HOLD = 0
CUT = 1
RAISE = 2
SHORT = 3

_CTE_BITS = {0: 0, 1: 1, 2: 2, 3: 4, 12: 3, 13: 5, 23: 6, 123: 7}
_CODES = (0, 1, 2, 12, 3, 13, 23, 123)  # indexed by mask


def cte_mask(cte):
    """set_cte value (0, 1, 2, 3, 12, 13, 23, 123) -> phase mask; unknown values -> 0."""
    return _CTE_BITS.get(cte, 0)


def mask_count(mask):
    return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1)


def phases_code(mask):
    """Phase mask -> (active_phases, no_of_phases) as the seed README encodes them."""
    mask &= 7
    return _CODES[mask], mask_count(mask)


def floor_amps(x):
    """Whole amps, rounded down (also for negative values)."""
    return int(math.floor(x))


def headroom(breaker, amps, ev, mask):
    """Minimum over the phases in `mask` of breaker - max(0, amps_p - ev). None if mask is 0."""
    return headroom_mixed(breaker, amps, ev, ev, mask, None)


def headroom_mixed(breaker, amps, ev_lo, ev_hi, mask, prev_base, stepped=0):
    """Headroom from a reading whose CTs may have seen the car at ev_lo or at ev_hi (it changed
    while the CTs were being captured, or during one CT's window: then the value lies in
    between): the minimum over `mask` of breaker - max(0, mixed_load(...)). prev_base None:
    ev_lo == ev_hi, nothing to tell apart; else `prev_base[p]` is the phase's last known EV-less
    load and `stepped` the phases whose house stepped up since (mixed_load)."""
    best = None
    for p in range(3):
        bit = 1 << p
        if mask & bit:
            if prev_base is None:
                base = amps[p] - ev_hi
            else:
                base = mixed_load(amps[p], ev_lo, ev_hi, prev_base[p], stepped & bit)
            if base < 0.0:
                base = 0.0
            h = breaker - base
            if best is None or h < best:
                best = h
    return best


def mixed_load(a, ev_lo, ev_hi, base, stepped):
    """The EV-less load on a phase whose CT value `a` may have seen the car anywhere between
    ev_lo and ev_hi: it lies between a - ev_hi and a - ev_lo. Taken as the phase's last known
    EV-less load `base`, moved into that range: the car's own change never looks like a house
    step (no second cut while it follows a cut, no cut after a raise) and never hides the house
    (a car coming down after a cut does not make a shortage look over: the optimistic a - ev_hi
    did, and the pause came up to a second late). The pessimistic a - ev_lo where the house
    really stepped up: even a - ev_hi is more than STEP_A above `base`, or `stepped` (a reading
    with the car known showed the phase rising, perhaps only part of its step: its full size may
    be anything above)."""
    lo = a - ev_hi
    hi = a - ev_lo
    if stepped or lo > base + STEP_A:
        return hi
    if base < lo:
        return lo
    if base > hi:
        return hi
    return base


def actual_over(breaker, amps, mask):
    """Amps by which the worst phase in `mask` is over the breaker now (<= 0: not over)."""
    worst = None
    for p in range(3):
        if mask & (1 << p):
            o = amps[p] - breaker
            if worst is None or o > worst:
                worst = o
    return 0.0 if worst is None else worst


def solar_room(amps, ev, mask):
    """EV current at which the worst EV phase has zero net import: min over mask of ev - amps_p.
    Needs signed readings (export negative). None if mask is 0."""
    best = None
    for p in range(3):
        if mask & (1 << p):
            r = ev - amps[p]
            if best is None or r < best:
                best = r
    return best


def max_import(amps, mask):
    """Largest net import (A) on a phase in mask (negative when every one exports)."""
    worst = None
    for p in range(3):
        if mask & (1 << p):
            if worst is None or amps[p] > worst:
                worst = amps[p]
    return 0.0 if worst is None else worst


def allowed(h, c_limit):
    """What a new command may be: floor(h - MARGIN_A), at most c_limit (may be below 0)."""
    a = floor_amps(h - MARGIN_A + EPS)
    return c_limit if a > c_limit else a


def regulate(cmd, h, c_min, c_limit):
    """One decision on a fresh reading. cmd: the command now (whole amps), h: headroom.
    Returns (kind, amps):
      CUT    the projection is within HOLD_A of the breaker (or cmd > c_limit): cut to `amps`
             (>= c_min) at once
      SHORT  not even c_min fits: amps == c_min (drop to the minimum; the caller pauses later)
      RAISE  there is room for at least +1 A with MARGIN_A to spare: `amps` is the candidate
             (to what fits with MARGIN_A); the caller rate-limits it in time: only when settled
             and confirmed
      HOLD   keep cmd."""
    if h < c_min + HOLD_A - EPS:
        return SHORT, c_min
    a = allowed(h, c_limit)
    if h < cmd + HOLD_A - EPS or cmd > c_limit:
        if a < c_min:
            a = c_min
        return CUT, a
    if a > cmd:
        return RAISE, a
    return HOLD, cmd


def decide(cmd, h_hi, h_lo, c_min, c_limit):
    """`regulate` over a range of headrooms: cuts are judged on the optimistic one (no double
    cut while the car follows an earlier change), raises on the pessimistic one (never raise on
    a transient). Returns (kind, amps); HOLD keeps cmd."""
    kind, a = regulate(cmd, h_hi, c_min, c_limit)
    if kind == CUT or kind == SHORT:
        return kind, a
    k2, a2 = regulate(cmd, h_lo, c_min, c_limit)
    if k2 == RAISE:
        return k2, a2
    return HOLD, cmd


def start_amps(h, c_min, c_limit):
    """Command to (re)start charging with, or None if even c_min does not fit with MARGIN_A."""
    a = allowed(h, c_limit)
    if a < c_min:
        return None
    return a


def deficit_at_min(h, c_min):
    """Amps by which the house would be over the breaker at the minimum current (steady state)."""
    return c_min - h


def hard_over(breaker):
    """A shortage this large pauses at once (no timer4 grace): 10 % of the breaker, >= 1 A.
    Below 1.13 x In a breaker holds for an hour, so the timer4 grace stays far from a trip."""
    x = breaker * HARD_OVER_FRACTION
    return x if x > HARD_OVER_MIN_A else HARD_OVER_MIN_A


def resume_ok(h, c_min, resume_margin):
    """True when a paused charge may restart: the minimum plus resume_margin fits (with MARGIN_A)."""
    return floor_amps(h - MARGIN_A + EPS) >= c_min + resume_margin


def classify_phases(deltas, ev_step, fitted):
    """Which fitted phases carry the EV, from per-phase CT changes `deltas` (signed, A) across an
    EV current change `ev_step` (signed, A). Returns a mask, or None when the evidence is not
    clean (the step is too small, or some phase moved by neither ~0 nor ~ev_step)."""
    if ev_step < DETECT_MIN_A and ev_step > -DETECT_MIN_A:
        return None
    on = 0
    for p in range(3):
        bit = 1 << p
        if fitted & bit:
            r = deltas[p] / ev_step
            if DETECT_ON[0] <= r <= DETECT_ON[1]:
                on |= bit
            elif r > DETECT_OFF or r < -DETECT_OFF:
                return None
    return on or None
