"""The reaction budget and the breaker-violation rule, defined once.

Used by the HIL scenarios and the benchmark (hil.figures, hil.checks, hil.bench), by the
closed-loop property tests on hil.plant (tests/test_balancer_props.py), and quoted by
docs/balancer.md ("Reaction budget").

After a house load step at time s, every phase that carries car current is back under the
breaker by s + R:

    R        = T_detect + max(t_response, timer4 + T_reading + min(t_response, RELAY_OPEN_MS))
    T_detect = 2 T_reading + 3 t_link + SLACK_MS

- T_reading: one round of the CTs (ct_cycles x fitted CTs x one mains cycle = 5 x 3 x 20 ms).
  A CT window that holds the step shows only part of it; the CT's next window shows all of it,
  so the cut that fits comes at most two rounds after the step.
- t_link: one RAPI round trip. Three of them: the $GG a cut waits for when it is not a new
  actual overload, a poll that may be in flight ahead of the $SC, and the $SC itself.
- t_response: the car follows a pilot change within ~5 s (IEC 61851-1 Annex A).
- the timer4 term: even the minimum does not fit by a little: minimum at once, pause after timer4
  (decided on the next reading whose $GG matches, <= one T_reading), then the controller opens the
  relay when the car stops, at the latest RELAY_OPEN_MS after $FS.
With the defaults, the rig's link allowance and a 5 s car: R = 0.8 s + 5 s = 5.8 s.

A *violation* is a stretch where a phase the car draws from is over the breaker although that
phase's house load last changed more than R earlier: R runs from the event that could have
caused the overload (any house change on the phase restarts it), not from the moment the phase
went over. An overload that starts without a house step (a raise that should not have
happened, the car rising to an old command) therefore counts at once once R after the last
step has passed. A house alone over its breaker (no car current on that phase) is not counted:
no charger can fix it.

A house change at s that coincides with a change of the car's own current on that phase
(CAR_MOVED_A or more, within (s - T_reading, s + 2 T_reading): the car following a pilot change
made before the step, while the CTs show the step) gets one T_reading more: the reading that
holds both may have captured a CT before the car's change and another after it, and a house
step smaller than the car's change cannot be told from the car's own change in it (taking it for
a step would cut after every raise whose rise a CT catches half-way); the next round shows them
apart (docs/balancer.md, "Reaction budget").
"""
import bisect

READING_MS = 300  # T_reading: a round of 3 CTs x 5 cycles x 20 ms (the rig, the plant)
RELAY_OPEN_MS = 3000  # after $FS the controller opens the relay when the car stops, <= 3 s
SLACK_MS = 50  # scheduling slack: a pass on each side of the link
EV_RESPONSE_MS = 5000  # every car in the scenarios and the benchmark follows its pilot 5 s late
# The HIL rig's t_link allowance: a board's round trip (115200-baud UART both ways, the
# controller's and the board's pass) -- the same figures are judged on the bench. The host rig
# itself answers in LINK_TICK_MS (5 ms); the property tests use the plant's reply delay instead.
RIG_LINK_MS = 50
TIMER4_MS = 1000  # the firmware's default timer4 (dinamics.settings)
# A LoRa-linked install (docs/lora.md): one RAPI round trip is allowed the radio's reply timeout
# (lora_timeout_ms, 1.5 s: a lost frame and its re-send), so R = 0.65 + 4.5 + 5 = 10.15 s.
RADIO_LINK_MS = 1500
CAR_MOVED_A = 0.5  # the car's current changed (the firmware's $GG change threshold)


def detect_ms(link_ms=RIG_LINK_MS, reading_ms=READING_MS):
    """T_detect: two CT rounds, three RAPI round trips and the slack."""
    return 2 * reading_ms + 3 * link_ms + SLACK_MS


def reaction_budget_ms(timer4_ms=TIMER4_MS, response_ms=EV_RESPONSE_MS, link_ms=RIG_LINK_MS,
                       reading_ms=READING_MS):
    """R in ms (see the module text). 5800 with the defaults."""
    return detect_ms(link_ms, reading_ms) + max(
        response_ms, timer4_ms + reading_ms + min(response_ms, RELAY_OPEN_MS))


BUDGET_MS = reaction_budget_ms()  # 5800: defaults, the rig's link, a 5 s car


def violations(truth, breaker, budget_ms, t0, t1, tolerance=0.0, reading_ms=READING_MS):
    """[[start, end, peak_amps]] where the budget was broken in [t0, t1), phases merged.

    `truth` is anything with segments(t0, t1) -> (a, b, house3, car3) pieces and
    house_changes(t0, t1) -> three sorted lists of change times (hil.tape.Tape, hil.plant.Plant).
    `start` is when the budget ran out (or the overload began, if later); a house change with
    the car's current changing on that phase around it has budget_ms + reading_ms (see above)."""
    # a change older than t0 - budget_ms - reading_ms cannot excuse anything at or after t0
    lead = budget_ms + reading_ms
    changes = truth.house_changes(t0 - lead, t1)
    moved = _car_changes(truth, t0 - lead - reading_ms, t1)
    found = []
    for a, b, h, c in truth.segments(t0, t1):
        for p in range(3):
            tot = h[p] + c[p]
            if c[p] <= 0 or tot <= breaker + tolerance:
                continue
            ch = changes[p]
            k = bisect.bisect_right(ch, a)  # ch[k - 1]: the last change at or before a
            x = a
            while x < b:
                y = ch[k] if k < len(ch) and ch[k] < b else b
                if k == 0:
                    start = x
                else:
                    s = ch[k - 1]
                    r = budget_ms
                    i = bisect.bisect_right(moved[p], s - reading_ms)
                    if i < len(moved[p]) and moved[p][i] < s + 2 * reading_ms:
                        r += reading_ms
                    start = max(x, s + r)
                if start < y:
                    found.append([start, y, tot])
                x = y
                k += 1
    found.sort()
    merged = []
    for v in found:
        if merged and v[0] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], v[1])
            merged[-1][2] = max(merged[-1][2], v[2])
        else:
            merged.append(v)
    return merged


def _car_changes(truth, t0, t1):
    """Times in [t0, t1) at which the car's current on a phase changed by CAR_MOVED_A or more,
    per phase: three sorted lists."""
    out = ([], [], [])
    prev = None
    for a, _b, _h, c in truth.segments(t0, t1):
        if prev is not None:
            for p in range(3):
                if abs(c[p] - prev[p]) >= CAR_MOVED_A:
                    out[p].append(a)
        prev = c
    return out
