"""python -m hil wifi-bench: what the WiFi manager's blocking calls cost the scheduler and the
controller link, in virtual time (firmware + OpenEVSE emulator + charging car + hil.sim_radio).

Cases:
  slow join      a scan and a join that each take their full bound (SCAN_MS, CONNECT_MS)
  no hold        the same with link.hold suppressed: what the heartbeat margin is for
  dhcp silence   the join associates, DHCP never answers: connect() hangs until the hardware
                 watchdog resets the board; the rebooted unit opens the setup AP first
  step in join   a load step as a join starts: step -> $SC, also with hold_fallback=1
  ap then join   no known network at boot: setup AP; the network appears; joined at the next try
Figures: worst pass (virtual ms: the time a blocking call took inside one pass), passes over
50 ms, the $SY lines sent (pulses, raised interval), whether the controller fell back to hb_amps,
link downs, the car's pilot.
"""
import json

from dinamics import messages as m


def add_parser(sub):
    p = sub.add_parser("wifi-bench", help="WiFi blocking calls vs scheduler and controller link "
                                          "(virtual time, simulated radio)")
    p.add_argument("--json", help="also write the figures to this file")
    return p


def _world(radio, settings):
    from hil.ev_model import EvModel
    from hil.recorder import Recorder
    from hil.world import World

    w = World(virtual=True, out=None, port_kwargs={"radio": radio})
    w.rec = w.sched.add(Recorder("wifibench", (m.RAPI_TX_LINE, m.NET_UP, m.NET_DOWN), 256))
    for k, v in settings.items():
        w.set(k, v)
    w.emu.plug(EvModel(max_amps=32, phases=1, phase=1))
    w.worst = [0, 0, 0]  # worst pass ms, passes over 50 ms, passes
    _timed(w)
    return w


def _timed(w):
    """Time every pass of the unit's scheduler in virtual ms (again after a reboot)."""
    orig = w.sched.run_once

    def timed():
        t0 = w.clock.ms
        try:
            orig()
        finally:
            d = w.clock.ms - t0
            w.worst[2] += 1
            if d > w.worst[0]:
                w.worst[0] = d
            if d > 50:
                w.worst[1] += 1

    w.sched.run_once = timed


def _sy(w):
    out = []
    for line in w.rec.of(m.RAPI_TX_LINE):
        text = bytes(line).decode()
        if text.startswith("$SY"):
            out.append(text[1:].split(":")[0].split("^")[0].strip())
    return out


def _figures(w, name, extra=None):
    sy = _sy(w)
    f = {"case": name, "worst_pass_ms": w.worst[0], "passes_over_50ms": w.worst[1],
         "sy_pulses": sy.count("SY"), "sy_configs": sorted(set(s for s in sy if s != "SY")),
         "controller_fell_back": w.emu._hs_trigger != 0, "link_downs": w.app.rapi.stats["downs"],
         "pilot_a": w.emu.current_capacity, "sta_up": w.app.wifi.sta_up,
         "ap_active": w.radio.ap_active,
         "worst_unfed_ms": w.watchdog.worst_unfed_ms if w.watchdog is not None else None}
    f.update(extra or {})
    return f


def measure(out=print):
    from actors import wifi as W
    from hil.sim_radio import BoardReset, SimRadio

    home = {"wifi_ssid": "home", "wifi_pass": "homepass1", "breaker": 40, "c_limit": 32}
    res = []

    # 1. slow join, held
    r = SimRadio(scan_ms=W.SCAN_MS, ntp_epoch=1800000000)
    r.add("home", password="homepass1", join_ms=W.CONNECT_MS)
    w = _world(r, home)
    try:
        w.run_for(30000)
        res.append(_figures(w, "slow join (scan %d ms, join %d ms), link.hold" % (W.SCAN_MS, W.CONNECT_MS)))
    finally:
        w.close()

    # 2. the same without link.hold
    r = SimRadio(scan_ms=W.SCAN_MS)
    w = _world(r, {"breaker": 40, "c_limit": 32})
    try:
        w.run_for(15000)
        w.app.wifi.post = lambda kind, payload=None: kind != m.LINK_HOLD and w.sched.post(kind, payload)
        r.add("home", password="homepass1", join_ms=W.CONNECT_MS)
        for k in ("wifi_ssid", "wifi_pass"):
            w.set(k, home[k])
        w.run_for(15000)
        res.append(_figures(w, "slow join, link.hold suppressed"))
    finally:
        w.close()

    # 3. DHCP silence: the watchdog path
    r = SimRadio(scan_ms=W.SCAN_MS)
    r.add("home", password="homepass1", dhcp=False)
    w = _world(r, home)
    try:
        t_reset = None
        try:
            w.run_for(30000)
        except BoardReset:
            t_reset = w.ms()
        hung = _figures(w, "dhcp silence: up to the watchdog reset")
        hung["reset_at_ms"] = t_reset
        res.append(hung)
        w.reboot_unit()
        from hil.recorder import Recorder

        w.rec = w.sched.add(Recorder("wifibench", (m.RAPI_TX_LINE, m.NET_UP, m.NET_DOWN), 256))
        w.worst = [0, 0, 0]
        _timed(w)
        t0 = w.ms()
        w.run_until(lambda: w.radio.ap_active, 10000)
        ap_ms = w.ms() - t0
        w.run_until(lambda: w.app.rapi.up, 10000)
        link_ms = w.ms() - t0
        w.run_for(15000)
        retried = [t for t, what in r.log if t > t_reset and what.startswith("join")]
        r.nets["home"].dhcp = True
        w.run_until(lambda: w.app.wifi.sta_up, 60000)
        res.append(_figures(w, "dhcp silence: after the reset", {
            "ap_after_reset_ms": ap_ms, "link_after_reset_ms": link_ms,
            "hang_network_retried_within_15s": bool(retried),
            "joined_after_reset_ms": w.ms() - t0, "hangs_seen": w.app.wifi.stats["hangs"],
            "fatal": list(w.port.fatal_actors)}))
    finally:
        w.close()

    # 4. a load step that lands as a join starts: the reaction waits for the join
    res.append(_step_during_join(W, SimRadio))

    # 5. AP at boot, the network appears
    r = SimRadio(scan_ms=W.SCAN_MS)
    w = _world(r, {"breaker": 40, "c_limit": 32})
    try:
        w.run_until(lambda: r.ap_active, 20000)
        t_ap = w.ms()
        r.add("home", password="homepass1")
        for k in ("wifi_ssid", "wifi_pass"):
            w.set(k, home[k])
        w.run_until(lambda: w.app.wifi.sta_up, 60000)
        t_join = w.ms()
        w.run_for(70000)
        res.append(_figures(w, "setup AP at boot, then the network", {
            "ap_up_at_ms": t_ap, "joined_at_ms": t_join,
            "net_up": [list(p[:3]) for p in w.rec.of(m.NET_UP)]}))
    finally:
        w.close()
    for f in res:
        if "step_to_sc_ms" in f:
            out("%-48s step -> $SC %s ms, pilot fits after %s ms (the join blocked %d ms; "
                "without WiFi work: %s / %s ms; with hold_fallback=1: %s / %s ms)" % (
                    f["case"], f["join_step_to_sc_ms"], f["join_pilot_fits_ms"], f["join_ms"],
                    f["idle_step_to_sc_ms"], f["idle_pilot_fits_ms"],
                    f["join_fallback_step_to_sc_ms"], f["join_fallback_pilot_fits_ms"]))
            continue
        out("%-48s worst pass %5d ms, >50 ms: %d, $SY pulses %d, configs %s, controller fell back: %s, "
            "link downs %d, pilot %s A, watchdog unfed up to %s ms" % (
                f["case"], f["worst_pass_ms"], f["passes_over_50ms"], f["sy_pulses"],
                ",".join(f["sy_configs"]) or "-", "YES" if f["controller_fell_back"] else "no",
                f["link_downs"], f["pilot_a"], f["worst_unfed_ms"]))
        for k in ("reset_at_ms", "ap_after_reset_ms", "link_after_reset_ms",
                  "hang_network_retried_within_15s", "joined_after_reset_ms", "ap_up_at_ms",
                  "joined_at_ms", "net_up"):
            if k in f:
                out("    %s: %s" % (k, f[k]))
    return res


def _step_during_join(W, SimRadio):
    """An oven (13 A on a 25 A breaker, car at 22 A) switched on just as a join starts (the
    radio's hook: the moment the blocking call begins); the same step with no WiFi work; and with
    hold_fallback=1 (the controller falls back to hb_amps while the unit is blind). Figures: step
    -> the first cutting $SC, and step -> the controller's pilot at what fits (9 A) or below."""
    from hil.checks import Result
    from hil.ev_model import EvModel
    from hil.rigs import WorldRig
    from hil.scenario_scripts import start_charging
    from hil.tape import sc_amps

    out = {"case": "load step as a join starts", "join_ms": W.CONNECT_MS}
    for key, join, fallback in (("idle", False, 0), ("join", True, 0), ("join_fallback", True, 1)):
        rig = WorldRig(radio=SimRadio(scan_ms=W.SCAN_MS))
        try:
            start_charging(rig, Result("wifi-bench", "host"), EvModel(max_amps=32, phases=1, phase=1),
                           {"cte": 1, "breaker": 25, "c_limit": 32, "hold_fallback": fallback},
                           (2.3, 0, 0))
            at = []
            seen = []  # first time the controller's pilot fits, watched during blocking calls too
            inner = rig.radio.during_block

            def watch(ms):
                inner(ms)
                if at and not seen and rig.emu.current_capacity <= 9:
                    seen.append(rig.now_ms())

            rig.radio.during_block = watch
            if join:
                def oven(what):
                    if what == "connect" and not at:
                        at.append(rig.set_house((15.3, 0, 0), "oven")[0])

                rig.radio.on_block = oven
                rig.wifi("add", "home", password="homepass1", join_ms=W.CONNECT_MS)
                rig.configure(wifi_ssid="home", wifi_pass="homepass1")
                rig.run_until(lambda: bool(at), 20000)
            else:
                at.append(rig.set_house((15.3, 0, 0), "oven")[0])
            t = at[0]
            if seen or rig.run_until(lambda: rig.emu.current_capacity <= 9, 15000):
                out[key + "_pilot_fits_ms"] = (seen[0] if seen else rig.now_ms()) - t
            else:
                out[key + "_pilot_fits_ms"] = None
            rig.run_for(10000)
            sc = [c for c in rig.tape.commands(t, rig.now_ms() + 1, ("SC",))
                  if (sc_amps(c[2]) or 99) < 22]
            out[key + "_step_to_sc_ms"] = (sc[0][0] - t) if sc else None
        finally:
            rig.close()
    out["step_to_sc_ms"] = out["join_step_to_sc_ms"]
    out["idle_step_to_sc_ms"] = out["idle_step_to_sc_ms"]
    return out


def run(args):
    res = measure()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0
