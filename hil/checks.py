"""What a scenario asserts, and where its figures and failures are collected (Result).

The checks turn step and run figures (hil.figures) into `FAILED` lines: the safety limits every
scenario must meet (a cut within two CT rounds, back under within the reaction budget, no
violation, no spurious pause, no firmware crash). The benchmark's targets (tighter, judged on
a distribution by `python -m hil bench`) are only reported here as `*_targets_met` figures.
"""
from hil import budget, figures

REACTION_LIMIT_MS = 700  # two rounds of CT readings + RAPI: what one event must meet
REACTION_TARGET_MS = 400  # benchmark targets (hil.bench.TARGETS)
BACK_UNDER_TARGET_S = 5.5
HEADROOM95_TARGET_S = 10.0
ENERGY_TARGET_PCT = 97.0


class Skip(Exception):
    """A scenario cannot run here (missing piece); the message says what."""


class Result:
    def __init__(self, name, mode):
        self.name = name
        self.mode = mode
        self.figures = {}
        self.failures = []
        self.skipped: "str | None" = None
        self.notes = []

    def fig(self, key, value):
        self.figures[key] = value
        return value

    def check(self, ok, text):
        if not ok:
            self.failures.append(text)
        return bool(ok)

    @property
    def passed(self):
        return self.skipped is None and not self.failures

    def lines(self):
        out = ["scenario: %s" % self.name, "mode: %s" % self.mode]
        if self.skipped:
            out.append("skipped: %s" % self.skipped)
            return out
        for k, v in self.figures.items():
            out.append("%s: %s" % (k, fmt(v)))
        for n in self.notes:
            out.append("note: %s" % n)
        for f in self.failures:
            out.append("FAILED: %s" % f)
        out.append("result: %s" % ("pass" if self.passed else "FAIL"))
        return out


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "%.3f" % v if abs(v) < 10 else "%.1f" % v
    return str(v)


def ms_s(ms):
    return None if ms is None else ms / 1000.0


def phases_of(ev):
    """Phase indexes (0..2) an hil.ev_model.EvModel draws from."""
    return (0, 1, 2) if ev.phases == 3 else (ev.phase - 1,)


def check_reaction(res, f, prefix):
    """A load step that put the house over the breaker (f: hil.figures.step_figures)."""
    res.fig(prefix + "_step_to_sc_ms", f["reaction_ms"])
    res.fig(prefix + "_cut_to_a", f["cut_to"])
    res.fig(prefix + "_step_to_fitting_sc_ms", f["fit_ms"])
    res.fig(prefix + "_back_under_breaker_s", ms_s(f["back_under_ms"]))
    res.fig(prefix + "_overshoot_as", round(f["overshoot_as"], 2))
    res.check(f["over"], "%s: the step should put the house over the breaker" % prefix)
    # One event is not a distribution: the benchmark's targets (p99 <= 400 ms, <= 5.5 s) are
    # reported here as figures and judged by `python -m hil bench`; the scenario asserts the
    # safety limits — a cut within two rounds of CT readings, back under within the reaction
    # budget (hil.budget).
    res.fig(prefix + "_targets_met", bool(
        f["reaction_ms"] is not None and f["reaction_ms"] <= REACTION_TARGET_MS
        and f["back_under_ms"] <= BACK_UNDER_TARGET_S * 1000))
    res.check(f["reaction_ms"] is not None and f["reaction_ms"] <= REACTION_LIMIT_MS,
              "%s: step -> cutting command %s ms (limit %d ms)"
              % (prefix, f["reaction_ms"], REACTION_LIMIT_MS))
    limit = f["budget_ms"]
    res.check(f["back_under_ms"] <= limit,
              "%s: back under the breaker after %.2f s (limit %.1f s, the reaction budget)"
              % (prefix, f["back_under_ms"] / 1000, limit / 1000))
    res.check(f["violations"] == 0, "%s: %d breaker violation(s)" % (prefix, f["violations"]))


def check_raise(res, f, prefix):
    """A load drop: the car should get 95 % of the new room in time, without reversals."""
    res.fig(prefix + "_target_a", f["target"])
    res.fig(prefix + "_headroom95_s", ms_s(f["headroom95_ms"]))
    res.fig(prefix + "_headroom95_pilot_s", ms_s(f["headroom95_pilot_ms"]))
    res.fig(prefix + "_reversals", f["reversals"])
    h = f["headroom95_ms"]
    if not f["raise"]:
        res.check(False, "%s: the car was not charging when the load dropped (draw %.1f A, pilot "
                         "%s A): nothing to raise" % (prefix, f["draw_before"], f["pilot_before"]))
        return
    res.check(h is not None and h <= HEADROOM95_TARGET_S * 1000,
              "%s: 95 %% of the headroom (%d A) reached after %s s (target <= %.0f s)"
              % (prefix, f["target"], ms_s(h), HEADROOM95_TARGET_S))
    res.check(f["reversals"] == 0, "%s: pilot reversed direction %d time(s) under a constant load"
              % (prefix, f["reversals"]))


def run_budget_ms(settings, link="cable"):
    """The reaction budget for a rig's settings (its timer4; a 5 s car, the rig's link; over
    LoRa the radio's round trip, hil.budget.RADIO_LINK_MS)."""
    if link == "lora":
        return budget.reaction_budget_ms(settings.get("timer4", budget.TIMER4_MS),
                                         link_ms=budget.RADIO_LINK_MS)
    return budget.reaction_budget_ms(settings.get("timer4", budget.TIMER4_MS))


def whole_run_checks(rig, res, t0, pauses_ok=False):
    """What every scenario asserts over its whole run from t0."""
    s = rig.settings
    t1 = rig.now_ms()
    tape = rig.tape
    if not pauses_ok and rig.emu.ev is not None:
        ev = rig.emu.ev
        sp = figures.spurious_pauses(tape, t0, t1, s["breaker"], phases_of(ev), s["c_min_limit"],
                                     s["c_limit"], ev.max_amps)
        res.fig("spurious_pauses", len(sp))
        res.check(not sp, "paused although the house left room for the minimum, at %s s"
                  % ", ".join("%.1f" % (x / 1000) for x in sp))
    r = run_budget_ms(s, rig.link)
    v = budget.violations(tape, s["breaker"], r, t0, t1)
    res.fig("breaker_violations", len(v))
    res.fig("overshoot_as_total", round(figures.overshoot_as(tape, s["breaker"], t0, t1), 2))
    res.fig("longest_over_breaker_s", figures.longest_over_s(tape, s["breaker"], t0, t1))
    res.check(not v, "breaker violations (over %.1f A for > %.1f s): %s"
              % (s["breaker"], r / 1000,
                 ", ".join("%.1f-%.1f s peak %.1f A" % (a / 1000, b / 1000, p) for a, b, p in v)))
    if rig.fw is not None:
        st = rig.fw.sched.stats()
        res.fig("firmware_crashes", st["crashes"])
        res.check(st["crashes"] == 0, "firmware actor crashes: %d" % st["crashes"])
    res.fig("worst_scheduler_pass_ms", rig.worst_pass_ms())
