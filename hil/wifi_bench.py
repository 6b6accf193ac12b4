"""python -m hil wifi-bench: what the WiFi manager's blocking calls cost the scheduler and the
controller link, in virtual time (firmware + OpenEVSE emulator + charging car + hil.sim_radio).

Cases:
  slow join      a scan and a join that each take their full bound (SCAN_MS, CONNECT_MS)
  no hold        the same with net.blocking (so link.hold) suppressed: what the margin is for
  dhcp silence   the join associates, DHCP never answers: connect() hangs until the hardware
                 watchdog resets the board; the rebooted unit opens the setup AP first
  step in join   a load step as a join starts / is announced: the blind cut (net.blocking) has the
                 car at hb_amps before the unit goes blind; step -> $SC, the cut's lead over the
                 join, also with hold_fallback=1; and what the cut costs per join
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
        w.app.wifi.post = lambda kind, payload=None: kind != m.NET_BLOCKING and w.sched.post(kind, payload)
        r.add("home", password="homepass1", join_ms=W.CONNECT_MS)
        for k in ("wifi_ssid", "wifi_pass"):
            w.set(k, home[k])
        w.run_for(15000)
        res.append(_figures(w, "slow join, link.hold suppressed"))  # (net.blocking not posted)
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
            out("%-48s (the join blocks %d ms; step -> $SC at what fits / -> the controller's "
                "pilot fits; negative: the blind cut came first)" % (f["case"], f["join_ms"]))
            for key, what in (("idle", "no WiFi work"), ("join", "step as the join starts"),
                              ("join_announced", "step as the join is announced"),
                              ("join_fallback", "as it starts, hold_fallback=1")):
                line = "    %-32s step -> $SC %6s ms, pilot fits after %5s ms" % (
                    what, f[key + "_step_to_sc_ms"], f[key + "_pilot_fits_ms"])
                if key + "_sc_before_join_ms" in f:
                    line += "; the cut's $SC %s ms, its answer %s ms before the join began" % (
                        f[key + "_sc_before_join_ms"], f[key + "_ack_before_join_ms"])
                if f[key + "_controller_fell_back"]:
                    line += "; the controller fell back to hb_amps"
                out(line)
            out("    blind cut per join while charging: %s -> %s A for %s ms (until the normal "
                "raise), %s A x s of charge" % (
                    f["blind_pilot_before_a"], f["blind_capped_a"], f["blind_capped_ms"],
                    f["blind_cost_as"]))
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
    """An oven (13 A on a 25 A breaker, car at 22 A) switched on as a join starts (the radio's
    hook: the moment the blocking call begins), as the join is announced (the wifi actor posts
    net.blocking), with no WiFi work, and as a join starts with hold_fallback=1; and a join while
    charging with no step at all (what the blind cut costs). Figures: step -> the first $SC at
    what fits (9 A) or below (negative: the blind cut went out before the step), step -> the
    controller's pilot at 9 A or below (0: it already was), the blind cut's lead over the join
    (its $SC on the wire, its answer at the unit, both before the join began), and per join the
    time the car sat capped and the charge that cost (A x s below the pilot it had)."""
    from actors.balancer_regulation import REQUEST_TAG
    from hil.checks import Result
    from hil.ev_model import EvModel
    from hil.rigs import WorldRig
    from hil.scenario_scripts import start_charging
    from hil.tape import sc_amps

    out = {"case": "load step as a join starts", "join_ms": W.CONNECT_MS}
    for key, when, fallback in (("idle", None, 0), ("join", "start", 0),
                                ("join_announced", "announce", 0), ("join_fallback", "start", 1),
                                ("blind", "none", 0)):
        rig = WorldRig(radio=SimRadio(scan_ms=W.SCAN_MS))
        try:
            start_charging(rig, Result("wifi-bench", "host"), EvModel(max_amps=32, phases=1, phase=1),
                           {"cte": 1, "breaker": 25, "c_limit": 32, "hold_fallback": fallback},
                           (2.3, 0, 0))
            pilot0 = rig.emu.current_capacity
            at = []  # the step
            seen = []  # first time the controller's pilot fits, watched during blocking calls too
            marks = {}  # "announce", "join": when; "ack": the balancer's first $SC answer after it
            inner = rig.radio.during_block
            area = [0]  # A x ms below pilot0 (the controller's pilot), from the announcement on

            def watch(ms):
                inner(ms)
                if at and not seen and rig.emu.current_capacity <= 9:
                    seen.append(rig.now_ms())
                if "announce" in marks:
                    area[0] += (pilot0 - rig.emu.current_capacity) * ms

            rig.radio.during_block = watch

            def step():
                if not at:
                    at.append(rig.set_house((15.3, 0, 0), "oven")[0])
                    if rig.emu.current_capacity <= 9:
                        seen.append(at[0])

            if when is None:
                step()
            else:
                wifi, bal = rig.fw.wifi, rig.fw.balancer
                post, handle = wifi.post, bal.handle

                def wifi_post(kind, payload=None):
                    if kind == m.NET_BLOCKING and payload[1] == W.CONNECT_MS and "announce" not in marks:
                        marks["announce"] = rig.now_ms()
                        if when == "announce":
                            step()
                    return post(kind, payload)

                def bal_handle(kind, payload):
                    if (kind == m.RAPI_REPLY and payload[0] == REQUEST_TAG and "announce" in marks
                            and "ack" not in marks and len(payload[2]) == 1):
                        marks["ack"] = rig.now_ms()
                    return handle(kind, payload)

                def block(what):
                    if what == "connect" and "join" not in marks:
                        marks["join"] = rig.now_ms()
                        if when == "start":
                            step()

                wifi.post, bal.handle = wifi_post, bal_handle
                rig.radio.on_block = block
                rig.wifi("add", "home", password="homepass1", join_ms=W.CONNECT_MS)
                rig.configure(wifi_ssid="home", wifi_pass="homepass1")
                rig.run_until(lambda: "join" in marks and (bool(at) or when == "none"), 20000)
            if when == "none":
                t0 = marks["announce"]
                last = [rig.now_ms()]

                def integrate():
                    now = rig.now_ms()
                    area[0] += (pilot0 - rig.emu.current_capacity) * (now - last[0])
                    last[0] = now

                rig.radio.during_block = inner
                while rig.now_ms() < t0 + 60000 and not (
                        rig.emu.current_capacity >= pilot0 and rig.now_ms() > marks["join"] + W.CONNECT_MS):
                    rig.run_for(10)
                    integrate()
                sc = rig.tape.commands(t0, rig.now_ms() + 1, ("SC",))
                cuts = [c for c in sc if (sc_amps(c[2]) or 99) < pilot0]
                cut = [c[0] for c in cuts]
                back = [c[0] for c in sc if (sc_amps(c[2]) or 0) >= pilot0 and cut and c[0] > cut[0]]
                out["blind_pilot_before_a"] = pilot0
                out["blind_capped_a"] = sc_amps(cuts[0][2]) if cuts else None
                out["blind_sc_before_join_ms"] = (marks["join"] - cut[0]) if cut else None
                out["blind_capped_ms"] = (back[0] - cut[0]) if cut and back else None
                out["blind_cost_as"] = area[0] // 1000
                out["blind_cuts"] = rig.fw.balancer.stats["blind_cuts"]
                continue
            t = at[0]
            if seen or rig.run_until(lambda: rig.emu.current_capacity <= 9, 15000):
                out[key + "_pilot_fits_ms"] = (seen[0] if seen else rig.now_ms()) - t
            else:
                out[key + "_pilot_fits_ms"] = None
            rig.run_for(10000)
            t_from = marks.get("announce", t)
            sc = [c for c in rig.tape.commands(t_from, rig.now_ms() + 1, ("SC",))
                  if (sc_amps(c[2]) or 99) <= 9]
            out[key + "_step_to_sc_ms"] = (sc[0][0] - t) if sc else None
            if "join" in marks:
                out[key + "_sc_before_join_ms"] = (marks["join"] - sc[0][0]) if sc else None
                out[key + "_ack_before_join_ms"] = (marks["join"] - marks["ack"]) if "ack" in marks else None
            out[key + "_controller_fell_back"] = rig.emu._hs_trigger != 0
        finally:
            rig.close()
    out["step_to_sc_ms"] = out["join_step_to_sc_ms"]
    return out


def run(args):
    res = measure()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0
