"""`python -m hil lora-bench`: the LoRa-linked install's figures (issue 13, docs/lora.md), virtual
time, one `name: value` a line.

1. overload steps over the radio (hil.bench's randomised episodes through the bridge and the
   simulated medium, SF7/BW125): step -> first cutting $SC at the controller, p50/p99/max, and the
   breaker violations; once without loss and once with --loss (default 30 %);
2. airtime: an hour idle (no car) and an hour charging at a constant house load: each side's time
   on air as a share of the hour, and the most ever used in one rolling window vs the budget;
3. attack: the link runs while a replaying and a forging attacker put 10 000 frames on the air
   (replays of recorded frames, recorded frames with a new counter, with a flipped bit, random
   bytes) into both radios: frames accepted (must be 0) and lines they brought to the controller;
4. dead radio (docs/lora.md "Safety"): while a car charges at 16 A the medium dies at five phases
   of the unit's traffic: the time until the controller's pilot is at hb_amps (the controller's
   own heartbeat or the bridge's failsafe, whichever comes first; which one it was) and, the
   medium back after 70 s, until the balancer's 16 A is on the pilot again. `--only failsafe`
   prints just these.

breaker_violations count against the radio's reaction budget (hil.budget.RADIO_LINK_MS: a RAPI
round trip may take one lost frame and its re-send: R = 10.15 s with the defaults);
lora_violations_cable_budget against the cable's 5.8 s.

Targets: step -> $SC p99 <= 1 s; airtime while charging <= 0.5 % of the hour (idle less), the
budget never exceeded; with 30 % loss no breaker violation (or a safe heartbeat fallback); 0 of
10 000 attack frames accepted.
"""
import random
import sys
import time

from hil import bench
from hil.progress import Progress


def _world(**kw):
    from hil.world import World

    return World(link="lora", out=None, **kw)


def airtime_hour(charging, minutes=60):
    """Time on air per side over `minutes` after the link settled (idle, or charging a car)."""
    from hil.ev_model import EvModel
    from hil.house import HouseLoad

    w = _world(ct=True, house=HouseLoad((3.0, 0.0, 0.0)))
    try:
        w.set("cte", 1)
        w.set("breaker", 25)
        w.run_until(lambda: w.app.rapi.up, 20000, step=20)
        if charging:
            w.emu.plug(EvModel(max_amps=16, phases=1, phase=1, response_s=5.0))
            w.run_until(lambda: w.emu.state == 3, 60000, step=20)
        w.run_for(120000, step=20)  # settled: the start-up traffic is not the hour's
        u, b = w.app.lora.ledger, w.bridge.link.ledger
        u0, b0 = u.total_us, b.total_us
        t0 = w.ms()
        u.peak_us = b.peak_us = 0
        w.run_for(minutes * 60000, step=20)
        span = (w.ms() - t0) * 1000.0
        return {"unit_pct": round(100.0 * (u.total_us - u0) / span, 3),
                "bridge_pct": round(100.0 * (b.total_us - b0) / span, 3),
                "peak_window_ms": max(u.peak_us, b.peak_us) // 1000, "budget_ms": u.budget,
                "charging": w.emu.state == 3, "frames": w.medium.stats["frames"],
                "refused": w.app.lora.stats["refused"] + w.bridge.link.stats["refused"]}
    finally:
        w.close()


def attack(n=10000, seed=11):
    """A link that runs (a car charging) while an attacker injects n frames into both radios."""
    from hil.ev_model import EvModel

    w = _world()
    rng = random.Random(seed)
    try:
        w.run_until(lambda: w.app.rapi.up, 20000, step=20)
        w.emu.plug(EvModel(max_amps=16, response_s=1.0))
        w.run_for(60000, step=20)
        heard = list(w.medium.recorded)
        u, b = w.app.lora, w.bridge.link
        acc0 = (u.stats["accepted"], b.stats["accepted"])
        heard0 = u.stats["received"] + b.stats["received"]
        rx0 = len([x for x in w.emu.log if x[1] == "rx"])
        w.medium.down = True  # only the attacker's frames arrive from now on
        for i in range(n):
            f = bytearray(rng.choice(heard))
            how = i % 4
            if how == 1:
                f[1:5] = rng.randrange(1 << 32).to_bytes(4, "big")
            elif how == 2:
                f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
            elif how == 3:
                f = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
            w.medium.inject(bytes(f))
            if i % 4 == 3:  # a radio holds one frame at a time: let the receivers take them
                w.step(10)
        w.run_until(lambda: not any(r.inbox for r in w.medium.radios), 60000, step=10)
        accepted = (u.stats["accepted"] - acc0[0]) + (b.stats["accepted"] - acc0[1])
        rx = len([x for x in w.emu.log if x[1] == "rx"]) - rx0
        return {"attempts": n, "accepted": accepted, "lines_at_controller": rx,
                "received": u.stats["received"] + b.stats["received"] - heard0,
                "rejected_bad_tag": u.stats["bad"] + b.stats["bad"],
                "rejected_replay": u.stats["replayed"] + b.stats["replayed"] + u.stats["old"]
                + b.stats["old"]}
    finally:
        w.close()


FAILSAFE_CASES = (  # (name, the unit's settings, the bridge's lora_failsafe_s)
    ("defaults", {}, 60),
    ("no_heartbeat", {"hb_interval": 0}, 60),  # a controller without $SY: only the bridge cuts
    ("hb20", {"lora_hb_s": 20}, 20),  # the 869.4 MHz band's short heartbeat
)


def dead_radio(unit, failsafe_s, phase_ms, down_ms=70000):
    """(s from the medium's death to the pilot at hb_amps, by the bridge?, s from its return to the
    balancer's pilot again); None when it did not happen within 120 s."""
    from hil.ev_model import EvModel
    from hil.world import World

    w = World(link="lora", out=None, bridge_settings={"lora_failsafe_s": failsafe_s})
    try:
        for k, v in unit.items():
            w.set(k, v)
        w.run_until(lambda: w.app.rapi.up, 20000, step=20)
        w.run_for(8000, step=20)
        w.emu.plug(EvModel(max_amps=32, response_s=1.0))
        w.run_until(lambda: w.emu.state == 3 and w.emu.current_capacity == 16, 60000, step=20)
        w.run_for(60000 + phase_ms, step=20)
        hb = w.app.settings.get("hb_amps")
        t0 = w.ms()
        w.medium.down = True
        cut = None
        if w.run_until(lambda: w.emu.current_capacity <= hb, 120000, step=20):
            cut = (w.ms() - t0) / 1000.0
        by_bridge = w.bridge.link.stats["failsafe"] > 0  # it was first (or together)
        w.run_for(max(0, t0 + down_ms - w.ms()), step=20)
        w.medium.down = False
        t1 = w.ms()
        back = None
        if w.run_until(lambda: w.emu.current_capacity == 16, 120000, step=20):
            back = (w.ms() - t1) / 1000.0
        return cut, by_bridge, back
    finally:
        w.close()


def failsafe_figures(F, phases=(0, 6000, 12000, 18000, 24000)):
    for name, unit, fs in FAILSAFE_CASES:
        runs = [dead_radio(unit, fs, p) for p in phases]
        cuts = [r[0] for r in runs if r[0] is not None]
        backs = [r[2] for r in runs if r[2] is not None]
        F["dead_radio_%s_settings" % name] = "unit %s, bridge lora_failsafe_s %d" % (
            ", ".join("%s %s" % kv for kv in unit.items()) or "defaults (lora_hb_s 60)", fs)
        F["dead_radio_%s_to_hb_amps_s_min_max" % name] = (
            "%.1f / %.1f" % (min(cuts), max(cuts)) if len(cuts) == len(runs) else
            "%d of %d runs never cut" % (len(runs) - len(cuts), len(runs)))
        F["dead_radio_%s_cut_first_by_the_bridge" % name] = "%d of %d" % (
            sum(1 for r in runs if r[1]), len(runs))
        F["dead_radio_%s_back_to_16A_s_max" % name] = (
            "%.1f" % max(backs) if len(backs) == len(runs) else "NOT BACK in %d runs"
            % (len(runs) - len(backs)))
    return F


def add_parser(sub):
    p = sub.add_parser("lora-bench", help="LoRa-linked install figures (prints figures)",
                       description=__doc__)
    p.add_argument("--steps", type=int, default=20, help="load steps per episode (default 20)")
    p.add_argument("--episodes", type=int, default=None, help="first N episode configurations")
    p.add_argument("--loss", type=float, default=0.3, help="frame loss of the lossy run (0.3)")
    p.add_argument("--minutes", type=int, default=60, help="airtime runs (default 60)")
    p.add_argument("--attack", type=int, default=10000, help="attack frames (default 10000)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=("all", "failsafe"), default="all",
                   help="failsafe: only the dead-radio figures (a few seconds)")
    return p


def run(args, out=None):
    out = out or sys.stdout
    t = time.monotonic()
    prog = Progress("lora-bench")
    eps = bench.EPISODES if args.episodes is None else bench.EPISODES[:max(0, args.episodes)]
    F = {"benchmark": "LoRa-linked install: unit + bridge over a simulated medium, SF7/BW125, "
                      "EU868 1 %, virtual clock"}
    ok = True
    if getattr(args, "only", "all") == "failsafe":
        failsafe_figures(F)
        for k, v in F.items():
            print("%s: %s" % (k, v), file=out)
        print("wall_s: %.1f" % (time.monotonic() - t), file=out)
        return 0
    for loss in (0.0, args.loss):
        bench.LINK.clear()
        bench.LINK.update({"link": "lora", "lora_loss": loss})
        R, _ = bench.collect(args.steps, eps, 0, args.seed, args.jobs, progress=prog)
        tag = "loss%d" % round(loss * 100)
        for k in ("overload_steps", "step_to_sc_p50_ms", "step_to_sc_p99_ms", "step_to_sc_max_ms",
                  "step_to_sc_missing", "back_under_breaker_max_s", "breaker_violations",
                  "lora_violations_cable_budget",
                  "longest_over_breaker_s", "lora_unit_airtime_pct", "lora_bridge_airtime_pct",
                  "lora_peak_window_pct_of_budget", "lora_lost", "lora_resent", "lora_refused",
                  "lora_downs"):
            F["%s_%s" % (tag, k)] = R.get(k)
        if R["_errors"]:
            ok = False
            F["%s_errors" % tag] = "; ".join(R["_errors"])
    bench.LINK.clear()
    prog.line("airtime runs")
    idle = airtime_hour(False, args.minutes)
    chg = airtime_hour(True, args.minutes)
    for name, a in (("idle", idle), ("charging", chg)):
        F["airtime_%s_unit_pct_of_hour" % name] = a["unit_pct"]
        F["airtime_%s_bridge_pct_of_hour" % name] = a["bridge_pct"]
        F["airtime_%s_peak_window_ms" % name] = "%d of %d" % (a["peak_window_ms"], a["budget_ms"])
    F["airtime_charging_was_charging"] = chg["charging"]
    prog.line("attack")
    at = attack(args.attack)
    F["attack_frames"] = at["attempts"]
    F["attack_frames_received_by_the_two_radios"] = at["received"]
    F["attack_accepted"] = at["accepted"]
    F["attack_lines_at_controller"] = at["lines_at_controller"]
    F["attack_rejected_bad_tag"] = at["rejected_bad_tag"]
    F["attack_rejected_replay"] = at["rejected_replay"]
    prog.line("dead radio")
    failsafe_figures(F)
    met = {
        "step_to_sc_p99_le_1s": (F["loss0_step_to_sc_p99_ms"] or 1e9) <= bench.LORA_REACTION_TARGET_MS
        and not F["loss0_step_to_sc_missing"],
        "airtime_charging_le_0.5pct": max(chg["unit_pct"], chg["bridge_pct"]) <= 0.5
        and max(idle["unit_pct"], idle["bridge_pct"]) < max(chg["unit_pct"], chg["bridge_pct"]),
        "budget_never_exceeded": max(idle["peak_window_ms"], chg["peak_window_ms"]) <= chg["budget_ms"],
        "loss_breaker_violations_0": F["loss%d_breaker_violations" % round(args.loss * 100)] == 0,
        "attack_accepted_0": at["accepted"] == 0 and at["lines_at_controller"] == 0,
    }
    for k, v in met.items():
        F["target " + k] = "yes" if v else "NO"
    F["targets_met"] = "yes" if all(met.values()) and ok else "no"
    for k, v in F.items():
        print("%s: %s" % (k.replace(" ", "_"), "n/a" if v is None else v), file=out)
    print("wall_s: %.1f" % (time.monotonic() - t), file=out)
    return 0 if ok else 1
