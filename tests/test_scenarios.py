"""HIL scenarios, benchmark and the `ct` command line.

Every scenario runs in virtual time (firmware on the host port, OpenEVSE emulator and CT injector
over real pseudo-terminal pairs) and its assertions must hold; the figure arithmetic is checked on
hand-made tapes; the benchmark gets a smoke run (structure and target logic, not speed); the `ct`
command writes a profile into a pty pair and its lines are decoded with the firmware's decoder."""
import os
import signal
import subprocess
import sys
import time

import pytest

from hil import bench, budget, figures, oracle, profiles, scenarios
from hil.progress import Progress
from hil.tape import Tape, parse_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- every scenario, virtual time ------------------------------------------------------------------
@pytest.mark.parametrize("name", scenarios.NAMES)
def test_scenario(name, capsys):
    spec = scenarios.SCENARIOS[name]
    res = scenarios.run(name, params=spec.test_params)
    with capsys.disabled():
        print("\n" + "\n".join("  " + line for line in res.lines()))
    if res.skipped:
        pytest.skip(res.skipped)
    assert res.figures, "no figures"
    assert not res.failures, "\n".join(res.failures)


# --- figure arithmetic on hand-made tapes -----------------------------------------------------------
def _tape(points, wire=()):
    """points: (ms, house_l1, car_l1) change points; wire: (ms, '$SC 9 V')."""
    t = Tape()
    for ms, h, c in points:
        t.record(ms, (h, 0.0, 0.0), (c, 0.0, 0.0))
    for ms, text in wire:
        t.add_rx(ms, text)
    return t


def test_parse_command():
    assert parse_command("$SC 9 V :4A^2C") == ("SC", ("9", "V"))
    assert parse_command("$FS^30") == ("FS", ())
    assert parse_command("$GG*12") == ("GG", ())
    assert parse_command("hello")[0] is None


def test_over_overshoot_back_under_reaction():
    # breaker 25: 2.3 A house + 22 A car; oven (+13 A) at 10 s; $SC 9 at 10.3 s; car follows at 15.3 s
    tape = _tape([(0, 2.3, 22.0), (10000, 15.3, 22.0), (15300, 15.3, 9.0)],
                 [(10100, "$SC 17 V :01^00"), (10300, "$SC 9 V :02^00")])
    tape.end = 30000
    iv = figures.over_intervals(tape, 25, 0, 30000)
    assert iv == [[10000, 15300, 37.3]]
    assert figures.overshoot_as(tape, 25, 0, 30000) == pytest.approx(12.3 * 5.3)
    assert figures.back_under_ms(tape, 25, 10000, 30000) == 5300
    assert figures.first_cut(tape, 10000, 22, 30000) == (10100, "SC", 17)
    f = figures.step_figures(tape, 10000, 30000, 22, 25, (0,), 6, 32, 32)
    assert f["over"] and f["reaction_ms"] == 100 and f["fit_ms"] == 300 and f["target"] == 9
    assert f["back_under_ms"] == 5300 and f["violations"] == 0 and f["reversals"] == 0
    assert budget.violations(tape, 25, 5000, 0, 30000) == [[15000, 15300, 37.3]]


def test_violation_budget_restarts_at_each_load_change():
    # over from 10 s to 18 s, but the house load changed again at 14 s: two budgets of 5.5 s
    tape = _tape([(0, 2.0, 20.0), (10000, 10.0, 20.0), (14000, 12.0, 20.0), (18000, 12.0, 6.0)])
    tape.end = 20000
    assert budget.violations(tape, 25, 5500, 0, 20000) == []
    assert figures.over_intervals(tape, 25, 0, 20000)[0][:2] == [10000, 18000]
    # no change at 14 s: one stretch of 8 s -> a violation once the budget ran out
    tape = _tape([(0, 2.0, 20.0), (10000, 10.0, 20.0), (18000, 10.0, 6.0)])
    tape.end = 20000
    assert budget.violations(tape, 25, 5500, 0, 20000) == [[15500, 18000, 30.0]]
    assert budget.violations(tape, 25, budget.BUDGET_MS, 0, 20000) == [[15800, 18000, 30.0]]
    # a house alone over its breaker is nothing a charger can fix: not counted
    tape = _tape([(0, 30.0, 0.0)])
    tape.end = 20000
    assert budget.violations(tape, 25, budget.BUDGET_MS, 0, 20000) == []


def test_reaction_budget_defined_once():
    from dinamics.settings import defaults

    # R = 2 T_reading + 3 t_link + 50 ms + max(t_response, timer4 + T_reading + min(t_resp, 3 s))
    assert budget.TIMER4_MS == defaults()["timer4"]
    assert budget.BUDGET_MS == budget.reaction_budget_ms() == 800 + 5000 == 5800  # the rig
    assert budget.reaction_budget_ms(4000) == 800 + 4000 + 300 + 3000
    assert budget.reaction_budget_ms(1000, 2000) == 800 + 1000 + 300 + 2000
    assert budget.reaction_budget_ms(1000, 5000, link_ms=40) == 770 + 5000  # the plant's 40 ms


def test_violation_budget_runs_from_the_house_step_not_from_going_over():
    """The two rules this one replaced disagreed when a phase went over the breaker some time
    after its last house change (the car rising to an earlier command, a raise that should not
    have happened): hil.scenarios.violations started the budget when the phase went over,
    hil.plant's overload_violations at the house change. The budget is a promise about the time
    after a load step, so it runs from the step."""
    # house step at 10 s that still fits; the car rises at 20 s and puts L1 over for 3 s:
    # the old scenario rule saw a 3 s stretch (< 5.8 s) and counted nothing
    tape = _tape([(0, 2.0, 10.0), (10000, 12.0, 10.0), (20000, 12.0, 16.0), (23000, 12.0, 12.0)])
    tape.end = 30000
    assert budget.violations(tape, 25, 5800, 0, 30000) == [[20000, 23000, 28.0]]
    # the car rises 3 s after the step and stays over 6.5 s: the old rule counted only
    # 18.8-19.5 s (5.8 s after going over), the budget ran out at 15.8 s
    tape = _tape([(0, 2.0, 10.0), (10000, 12.0, 10.0), (13000, 12.0, 16.0), (19500, 12.0, 12.0)])
    tape.end = 30000
    assert budget.violations(tape, 25, 5800, 0, 30000) == [[15800, 19500, 28.0]]
    # where both rules agreed: a step that goes over at once, a later step restarting the budget
    tape = _tape([(0, 2.0, 20.0), (10000, 10.0, 20.0), (14000, 11.0, 20.0), (21000, 11.0, 6.0)])
    tape.end = 30000
    assert budget.violations(tape, 25, 5800, 0, 30000) == [[19800, 21000, 31.0]]
    # a window that starts inside the stretch still sees the step before it
    assert budget.violations(tape, 25, 5800, 16000, 30000) == [[19800, 21000, 31.0]]


def test_headroom_reach_reversals_energy():
    tape = _tape([(0, 10.0, 8.0), (5000, 2.0, 8.0), (13000, 2.0, 16.0), (20000, 2.0, 22.0)],
                 [(8000, "$SC 16 V"), (15000, "$SC 22 V"), (25000, "$SC 20 V"), (26000, "$SC 21 V")])
    tape.end = 30000
    f = figures.step_figures(tape, 5000, 24000, 8, 25, (0,), 6, 32, 32)
    assert f["raise"] and f["target"] == 22
    assert f["headroom95_ms"] == 15000  # 0.95 * 22 = 20.9 A reached at 20 s
    assert f["headroom95_pilot_ms"] == 10000
    assert figures.reversals(tape, 0, 30000) == 2  # up, up, down, up
    assert figures.energy_as(tape, 0, 10000, (0,)) == pytest.approx(80.0)


def test_oracle():
    from hil.house import HouseLoad

    h = HouseLoad((2.3, 0, 0), [(10000, (15.3, 0, 0)), (20000, (21.0, 0, 0))])
    # 0-10 s: floor(22.7) = 22 A; 10-20 s: floor(9.7) = 9 A; 20-30 s: 4 A < 6 -> paused
    assert oracle.oracle_as(h, 0, 30000, 25, (0,), 6, 32, 32) == pytest.approx(310.0)
    assert oracle.oracle_as(h, 0, 30000, 25, (0,), 6, 16, 32) == pytest.approx(250.0)
    assert oracle.oracle_as(h, 0, 10000, 25, (0,), 6, 32, 32, margin=0.5) == pytest.approx(220.0)
    # export never adds room above the breaker
    assert oracle.oracle_amps((-8.0, 0, 0), 25, (0,), 6, 32, 32) == 25
    assert figures.percentile([5, 1, 3, 2, 4], 50) == 3
    assert figures.percentile(list(range(1, 101)), 99) == 99


# --- profiles -------------------------------------------------------------------------------------
def test_profiles(tmp_path):
    p = profiles.parse_steps("0:5,3,2;10000:20,3,2")
    assert p.amps(0) == (5, 3, 2) and p.amps(9999) == (5, 3, 2) and p.amps(10000) == (20, 3, 2)
    assert profiles.parse_steps("0:5;100:7").amps(200) == (7, 0, 0)
    for bad in ("", "x:5", "0:a", "0:1,2", "-5:1"):
        with pytest.raises(ValueError):
            profiles.parse_steps(bad)
    f = tmp_path / "t.csv"
    f.write_text("ms,l1,l2,l3\n# comment\n1000,4,1,1\n2000,9.5,1,1\n")
    t = profiles.load_trace(str(f))
    assert t.amps(0) == (4, 1, 1) and t.amps(1000) == (9.5, 1, 1)
    profiles.save_trace(profiles.named("ac"), str(f))
    assert profiles.load_trace(str(f)).amps(30000) == (10.4, 0, 0)
    for name in profiles.NAMES:
        prof = profiles.named(name)
        assert prof.steps[0][0] == 0 and prof.description
    m = profiles.named("mixed")
    assert m.length_ms == 30 * 60000 and len(m.steps) > 20
    assert max(a[0] for _, a in m.steps) < 32  # the house alone stays under a 32 A breaker
    looped = profiles.named("ac")
    assert looped.amps(60000 + 31000) == looped.amps(31000)
    with pytest.raises(ValueError):
        profiles.named("nope")


# --- benchmark smoke ------------------------------------------------------------------------------
def test_bench_smoke():
    F, results = bench.collect(steps_per_episode=3, episodes=bench.EPISODES[:2], mixed_minutes=2,
                               seed=3, jobs=1)
    assert not F["_errors"], F["_errors"]
    assert F["load_steps"] == 6 and F["episodes"] == 2
    for key in ("step_to_sc_p50_ms", "step_to_sc_p95_ms", "step_to_sc_p99_ms",
                "back_under_breaker_max_s", "overshoot_as_mean", "headroom95_s_max",
                "oscillations", "energy_vs_oracle_pct", "breaker_violations",
                "worst_scheduler_pass_ms", "targets_met"):
        assert key in F
    assert F["targets_met"] in ("yes", "no")
    assert F["energy_vs_oracle_pct"] is not None and 0 < F["energy_vs_oracle_pct"] <= 110
    for r in results:
        if r["name"] != "mixed":
            assert len(r["steps"]) == 3
            assert all("reaction_ms" in s and "kind" in s for s in r["steps"])


def _step(**kw):
    f = {"over": False, "reaction_ms": None, "fit_ms": None, "back_under_ms": 0,
         "overshoot_as": 0.0, "raise": False, "headroom95_ms": None,
         "headroom95_pilot_ms": None, "reversals": 0}
    f.update(kw)
    return f


def _episode(steps, violations=()):
    return {"name": "e", "error": None, "steps": steps, "violations": list(violations),
            "energy": 97.0, "oracle": 100.0, "worst_pass_ms": 1.0, "pauses": 0,
            "spurious_pauses": 0, "longest_over_s": 5.0, "sim_s": 100.0}


def test_bench_target_logic():
    good = [_step(over=True, reaction_ms=r, fit_ms=r, back_under_ms=5300, overshoot_as=50.0)
            for r in (100, 200, 300, 400)]
    good.append(_step(**{"raise": True, "headroom95_ms": 9000}))
    mixed = {"name": "mixed", "figures": {"energy_vs_oracle_pct": 97.5, "breaker_violations": 0},
             "failures": [], "skipped": None}
    F = bench.summarise([_episode(good), mixed], 1)
    assert F["step_to_sc_p99_ms"] == 400 and F["step_to_sc_p50_ms"] == 200
    assert F["targets_met"] == "yes", F
    # each target on its own
    cases = [
        ([_step(over=True, reaction_ms=450, back_under_ms=5000)], None, "step_to_sc_p99_ms"),
        ([_step(over=True, reaction_ms=None, back_under_ms=5000)], None, "step_to_sc_p99_ms"),
        ([_step(over=True, reaction_ms=100, back_under_ms=5600)], None, "back_under_breaker_max_s"),
        ([_step(reversals=1)], None, "oscillations"),
        (None, [(1, 2, 30.0)], "breaker_violations"),
    ]
    for steps, viol, key in cases:
        F = bench.summarise([_episode(list(good) + (steps or []), viol or ()), mixed], 1)
        assert F["targets_met"] == "no" and F["target " + key].startswith("NO"), (key, F)
    slow = dict(good[-1])
    slow["headroom95_ms"] = 10500
    F = bench.summarise([_episode(good[:-1] + [slow]), mixed], 1)
    assert F["target headroom95_s_max"].startswith("NO")
    low = dict(mixed, figures={"energy_vs_oracle_pct": 96.9, "breaker_violations": 0})
    F = bench.summarise([_episode(good), low], 1)
    assert F["target energy_vs_oracle_pct"].startswith("NO")


# --- progress lines: stderr only ----------------------------------------------------------------
def test_progress_lines_go_to_stderr(capsys):
    t = [100.0]
    p = Progress("bench", every_s=30, clock=lambda: t[0])
    p.line("job 3/8 b20-1ph (50 steps) done")
    p.tick(lambda: "not yet")
    t[0] += 41
    p.tick(lambda: "rig time 600 s")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["bench: job 3/8 b20-1ph (50 steps) done … 0 s",
                                "bench: rig time 600 s … 41 s"]


def test_rig_progress_while_it_runs():
    import io

    from hil.rigs import WorldRig

    buf = io.StringIO()
    rig = WorldRig()
    try:
        rig.progress = Progress("scenario x", every_s=0, out=buf)
        rig.set_house((1.0, 0.0, 0.0), "base")
        rig.run_for(2000)
    finally:
        rig.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 200  # every_s=0: one per 10 ms step
    assert lines[-1].startswith("scenario x: rig time 2 s, last event base at 0.0 s … ")


def test_bench_progress_on_stderr_figures_on_stdout():
    p = subprocess.run([sys.executable, "-m", "hil", "bench", "--steps", "1", "--episodes", "1",
                        "--mixed-minutes", "0", "--jobs", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "bench: 1 jobs on 1 process(es)" in p.stderr
    assert "bench: job 1/1 b16-1ph (1 steps) done" in p.stderr
    assert "load_steps: 1" in p.stdout and "bench:" not in p.stdout
    assert all(":" in line for line in p.stdout.splitlines())  # `name: value` lines only


def test_scenario_all_progress_on_stderr(capsys, monkeypatch):
    from hil import scenario_cli
    from hil.checks import Result

    def fake_run(name, rig=None, params=None, mode=None, progress=None):
        progress.tick(lambda: "never: every_s has not passed")
        res = Result(name, "host (virtual time)")
        res.fig("x", 1)
        return res

    monkeypatch.setattr(scenarios, "run", fake_run)
    p = scenario_cli.add_parser(__import__("argparse").ArgumentParser().add_subparsers())
    assert scenario_cli.run(p.parse_args(["all"])) == 0
    out, err = capsys.readouterr()
    n = len(scenarios.NAMES)
    assert "scenario: 1/%d oven pass" % n in err and "scenario: %d/%d mixed pass" % (n, n) in err
    assert "scenario: oven" in out and "x: 1" in out and "…" not in out


# --- python -m hil ct ----------------------------------------------------------------------------
def _decode_from(ser, seconds, want=None, proc=None):
    """Decode what arrives for up to `seconds`: until `want` readings, or shortly after `proc`
    exited."""
    from dinamics.ct_feed import CtFeedDecoder

    dec = CtFeedDecoder()
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            end = min(end, time.monotonic() + 0.3)
            proc = None
        dec.read_from(ser, 4096)
        r = dec.pop()
        while r is not None:
            got.append(r)
            r = dec.pop()
        if want is not None and len(got) >= want:
            break
        time.sleep(0.01)
    return got, dec


@pytest.fixture
def pty_pair():
    from hil.host_port import open_serial
    from hil.null_modem import NullModem

    modem = NullModem().start()
    a, b = modem.paths
    reader = open_serial(b)
    yield a, reader
    reader.close()
    modem.close()


def _ct_cmd(*args):
    return [sys.executable, "-m", "hil", "ct"] + list(args)


def test_ct_cli_plays_steps_into_a_pty(pty_pair):
    port, reader = pty_pair
    p = subprocess.Popen(_ct_cmd("--port", port, "--steps", "0:5,3,2;1000:20,3.5,-1",
                                 "--period-ms", "100", "--duration", "2.2"),
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got, dec = _decode_from(reader, 20, proc=p)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert dec.errors == 0
    assert len(got) >= 15, got
    seqs = [g[0] for g in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost or repeated
    first, last = got[0][1], got[-1][1]
    assert first == pytest.approx((5, 3, 2), abs=0.01)
    assert last == pytest.approx((20, 3.5, -1), abs=0.01)
    # one window straddles the step: its RMS lies between the two levels
    assert all(5 - 0.01 <= g[1][0] <= 20 + 0.01 for g in got)
    assert "load 5.00 3.00 2.00 A" in out and "load 20.00 3.50 -1.00 A" in out
    assert "stopped" in out


def test_ct_cli_named_profile_no_data_and_sigterm(pty_pair):
    port, reader = pty_pair
    p = subprocess.Popen(_ct_cmd("--port", port, "--profile", "ac", "--no-data", "3",
                                 "--car", "10", "--car-phases", "1"),
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got, dec = _decode_from(reader, 10, want=4)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert len(got) >= 4 and dec.errors == 0
    a = got[-1][1]
    assert a[0] == pytest.approx(7.8 + 10, abs=0.01) and a[1] == 0 and a[2] is None


def test_ct_cli_trace_and_errors(tmp_path, pty_pair):
    port, reader = pty_pair
    f = tmp_path / "house.csv"
    f.write_text("ms,l1,l2,l3\n0,1.5,2.5,3.5\n")
    p = subprocess.run(_ct_cmd("--port", port, "--trace", str(f), "--period-ms", "50",
                               "--duration", "0.6", "--quiet"),
                       cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    got, _ = _decode_from(reader, 2, want=3)
    assert got and got[0][1] == pytest.approx((1.5, 2.5, 3.5), abs=0.01)
    bad = subprocess.run(_ct_cmd("--port", port, "--steps", "oops"), cwd=ROOT,
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2 and "expected" in bad.stderr
    nope = subprocess.run(_ct_cmd("--port", "/dev/does-not-exist", "--profile", "oven"), cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    assert nope.returncode == 2 and "cannot open" in nope.stderr  # bad input: one line, exit 2
    lst = subprocess.run(_ct_cmd("--list"), cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert lst.returncode == 0 and "mixed" in lst.stdout


def test_scenario_cli_lists_and_rejects():
    from hil.__main__ import main

    assert main(["scenario", "--list"]) == 0
    assert main(["scenario", "nope"]) == 2
    assert main(["scenario", "oven", "--param", "broken"]) == 2
