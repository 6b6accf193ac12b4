"""The wifi actor (device/actors/wifi.py) on a simulated radio (hil/sim_radio.py) in the whole
firmware against the OpenEVSE emulator, virtual time: credential order, the service network never
beating the user's, the setup AP and the station retries with back-off, a busy AP client, net.up
and net.down, blocking calls announced to rapi_link (heartbeat held, worst pass bounded), the DHCP
hang recovered by the watchdog, NTP, the MQTT reconnect at net.up, and no reboot ever."""
import pathlib
import socket
import struct
import threading

import pytest

from actors import wifi as W
from actors import wifi_ap as WA
from dinamics import messages as m
from hil.recorder import Recorder
from hil.sim_radio import BoardReset, SimRadio
from hil.world import World

NTP_EPOCH = 1800000000


def make(nets=(), env=None, settings=None, radio=None, **rkw):
    radio = radio or SimRadio(ntp_epoch=NTP_EPOCH, **rkw)
    for n in nets:
        radio.add(n[0], **n[1])
    w = World(virtual=True, out=None, port_kwargs={"radio": radio, "wifi_env": env})
    w.rec = w.sched.add(Recorder("netrec", (m.NET_UP, m.NET_DOWN, m.RAPI_TX_LINE), 256))
    for k, v in (settings or {}).items():
        w.set(k, v)
    w.radio = radio
    w.wifi = w.app.wifi
    return w


@pytest.fixture
def worlds():
    made = []

    def _make(*a, **kw):
        w = make(*a, **kw)
        made.append(w)
        return w

    yield _make
    for w in made:
        w.close()


def joins(w):
    return [t for t, what in w.radio.log if what.startswith("joined")]


def scans(w):
    return [t for t, what in w.radio.log if what == "scan"]


def test_credential_order_stored_then_settings_toml_then_service(worlds):
    nets = [("home", {"password": "homepass1", "rssi": -80}),
            ("toml", {"password": "tomlpass1", "rssi": -60}),
            ("svc", {"password": "svcpass12", "rssi": -30})]
    cfg = {"wifi_ssid": "home", "wifi_pass": "homepass1", "wifi_service_ssid": "svc",
           "wifi_service_pass": "svcpass12"}
    w = worlds(nets, env=("toml", "tomlpass1", None), settings=cfg)
    w.run_for(8000)
    assert w.wifi.sta_up and w.wifi.ssid == "home"
    # the stored network refuses: settings.toml's is next, in the same round
    w2 = worlds([("home", {"password": "other", "rssi": -80})] + nets[1:],
                env=("toml", "tomlpass1", None), settings=cfg)
    w2.run_for(12000)
    assert w2.wifi.ssid == "toml"
    # neither user network in sight: the service network
    w3 = worlds(nets[2:], env=("toml", "tomlpass1", None), settings=cfg)
    w3.run_for(8000)
    assert w3.wifi.ssid == "svc"


def test_the_service_network_never_beats_the_users_whatever_the_signal(worlds):
    w = worlds([("svc", {"password": "svcpass12", "rssi": -20}),
                ("home", {"password": "homepass1", "rssi": -89})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1",
                         "wifi_service_ssid": "svc", "wifi_service_pass": "svcpass12"})
    w.run_for(8000)
    assert w.wifi.ssid == "home"
    assert not any("svc" in what for t, what in w.radio.log if what.startswith("join"))


def test_no_service_network_by_default():
    from dinamics import settings as st

    assert st.row("wifi_service_ssid")[st.DEFAULT] == "" and st.row("wifi_service_pass")[st.DEFAULT] == ""
    assert st.row("wifi_service_pass")[st.FLAGS] & st.SECRET
    from dinamics import mqtt_reports

    s = st.Settings()
    s.apply("wifi_service_ssid", "svc")
    s.apply("wifi_service_pass", "svc-secret-1")
    report = mqtt_reports.report_json("wifi", s, "v", "192.168.1.2", "SN")  # get_wifi
    assert '"wifi_service_pass_set":1' in report and "svc-secret-1" not in report


def test_setup_ap_with_its_own_password_then_station_retries_with_backoff(worlds):
    w = worlds()
    w.run_for(5000)
    r = w.radio
    assert r.ap_active and r.ap[0] == "Dinamics-0100004ED102"
    pw = r.ap[1]
    assert len(pw) == 10 and pw.isalnum()
    ups = w.rec.of(m.NET_UP)
    assert ups == [("192.168.4.1", "ap", "Dinamics-0100004ED102", pw)]
    assert any(pw in line for line in w.console.lines)  # printed on the console ...
    w.run_for(200000)
    s = scans(w)
    gaps = [b - a for a, b in zip(s, s[1:])]
    assert gaps[0] >= 10000 and gaps[0] < 14000  # timer11, then doubling
    assert gaps[1] >= 20000 and gaps[2] >= 40000
    assert all(b >= a for a, b in zip(gaps, gaps[1:]))
    assert len(w.rec.of(m.NET_UP)) == 1  # the AP was never restarted
    # the network appears: joined at the next try, the AP lingers, then closes
    r.add("home", password="homepass1")
    w.set("wifi_ssid", "home")
    w.set("wifi_pass", "homepass1")
    w.run_for(8000)
    assert w.wifi.sta_up and r.ap_active
    assert w.rec.of(m.NET_UP)[-1] == ("192.168.1.20", "sta", "home", "")
    w.run_for(WA.AP_LINGER_MS + 3000)
    assert not r.ap_active
    # the same password after a reboot (kept in the wifiap store), never in the MQTT log ring
    w2 = World(virtual=True, out=None, state_dir=w.state_dir,
               port_kwargs={"radio": SimRadio(), "wifi_env": None})
    try:
        w2.run_for(6000)
        assert w2.port.radio.ap == ("Dinamics-0100004ED102", pw)
    finally:
        w2.close()
    assert not any(pw in text for lvl, text in getattr(w.mqtt, "_ring", ()) or ())


def test_open_ap_when_the_installer_says_so_and_ap_password_from_settings_toml(worlds):
    w = worlds(settings={"wifi_ap_open": 1})
    w.run_for(5000)
    assert w.radio.ap == ("Dinamics-0100004ED102", "")
    assert w.rec.of(m.NET_UP)[-1][3] == ""
    w.set("serial", "UNIT7")  # the AP's name follows the serial (the MQTT prefix)
    w.run_for(100)
    assert w.radio.ap == ("Dinamics-UNIT7", "") and w.rec.of(m.NET_UP)[-1][2] == "Dinamics-UNIT7"
    w2 = worlds(env=(None, None, "installer-pw"))
    w2.run_for(5000)
    assert w2.radio.ap[1] == "installer-pw"
    # settings.toml gives whole numbers as ints: a numeric SSID and password still join
    w3 = worlds([("1234", {"password": "12345678"})], env=(1234, 12345678, None))
    w3.run_for(8000)
    assert w3.wifi.ssid == "1234"


def test_a_busy_ap_client_holds_off_the_station_but_not_for_ever(worlds):
    w = worlds()
    w.run_for(5000)
    assert w.radio.ap_active
    n0 = len(scans(w))
    t0 = w.ms()
    while w.ms() - t0 < 60000:  # a client on the setup page, one request after another
        w.wifi.client_busy(2000)
        w.run_for(1000)
    assert len(scans(w)) == n0  # no scan disturbed it (scans cost AP clients their frames)
    assert w.wifi.stats["deferred"] > 0
    while w.ms() - t0 < WA.BUSY_MAX_MS + 30000:  # ... but it cannot keep the unit off for ever
        w.wifi.client_busy(2000)
        w.run_for(1000)
    assert len(scans(w)) > n0
    assert w.radio.ap_active


def _joined_over_the_setup_ap(worlds, ms):
    """First boot with nothing known (the setup AP opens), then "home" appears and is entered as
    on the setup page: joined, the AP lingering."""
    w = worlds()
    w.run_for(5000)
    w.radio.add("home", password="homepass1")
    w.set("wifi_ssid", "home")
    w.set("wifi_pass", "homepass1")
    w.run_for(ms)
    assert w.wifi.sta_up and w.radio.ap_active
    return w


def test_the_ap_stays_while_a_client_is_busy_after_the_join(worlds):
    w = _joined_over_the_setup_ap(worlds, 6000)
    t0 = w.ms()
    while w.ms() - t0 < WA.AP_LINGER_MS + 10000:
        w.wifi.client_busy(2000)
        w.run_for(1000)
    assert w.radio.ap_active  # the setup page still talks to it
    w.run_for(8000)
    assert not w.radio.ap_active


def test_net_up_on_every_reconnect_and_net_down_when_lost(worlds):
    w = worlds([("home", {"password": "homepass1"})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"})
    w.run_for(8000)
    assert w.rec.of(m.NET_UP) == [("192.168.1.20", "sta", "home", "")]
    w.radio.drop()
    w.run_for(3000)
    assert w.rec.of(m.NET_DOWN) == ["lost home"]
    w.run_for(15000)
    assert w.rec.of(m.NET_UP)[-1] == ("192.168.1.21", "sta", "home", "")
    assert w.radio.hostname == "dinamics-0100004ed102"


def _sy_lines(w):
    """The $SY lines the unit sent: "SY" (a pulse) or "SY 13 6" (a configuration)."""
    out = []
    for line in w.rec.of(m.RAPI_TX_LINE):
        text = bytes(line).decode()
        if text.startswith("$SY"):
            out.append(text[1:].split(":")[0].split("^")[0].strip())
    return out


def test_a_join_is_announced_heartbeat_held_and_the_worst_pass_bounded(worlds):
    """A radio that takes the full bound for a scan and a join: rapi_link raises the heartbeat
    interval before the join (and only pulses before the scan), the controller never misses a
    pulse, and no pass lasts longer than the join's bound."""
    w = worlds([("home", {"password": "homepass1", "join_ms": W.CONNECT_MS})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"}, scan_ms=W.SCAN_MS)
    worst = [0]
    orig = w.sched.run_once

    def timed():
        t0 = w.clock.ms
        orig()
        worst[0] = max(worst[0], w.clock.ms - t0)

    w.sched.run_once = timed
    w.run_for(20000)
    assert w.wifi.sta_up
    assert W.CONNECT_MS <= worst[0] <= W.CONNECT_MS + 100
    assert w.emu._hs_trigger == 0  # never fell back to hb_amps
    assert w.emu._hs_interval == 5  # restored after the hold
    sy = _sy_lines(w)
    assert "SY 13 6" in sy  # 5 s + the join's 6.5 s + slack, for the hold
    assert sy[-1] == "SY" and "SY 5 6" in sy[sy.index("SY 13 6"):]  # then back to 5 s
    assert w.app.rapi.stats["downs"] == 0


def test_without_the_hold_the_controller_would_fall_back(worlds):
    w = worlds(scan_ms=W.SCAN_MS)
    w.run_for(15000)
    assert w.app.rapi.up and w.emu._hs_trigger == 0
    w.wifi.post = lambda kind, payload=None: kind != m.NET_BLOCKING and w.sched.post(kind, payload)
    w.radio.add("home", password="homepass1", join_ms=W.CONNECT_MS)
    w.set("wifi_ssid", "home")
    w.set("wifi_pass", "homepass1")
    w.run_for(15000)
    assert w.wifi.sta_up
    assert w.emu._hs_trigger != 0  # the join outlasted the heartbeat interval


def test_a_short_block_is_a_pulse_only_no_eeprom_write(worlds):
    w = worlds([("home", {"password": "homepass1", "join_ms": W.CONNECT_MS})],
               settings={"hb_interval": 10, "wifi_ssid": "home", "wifi_pass": "homepass1"},
               scan_ms=W.SCAN_MS)
    w.run_for(20000)
    assert w.wifi.sta_up and w.emu._hs_trigger == 0
    assert set(_sy_lines(w)) == {"SY", "SY 10 6"}  # pulses; the one configuration at link-up


def test_dhcp_silence_hangs_the_join_and_the_watchdog_path_recovers(worlds):
    w = worlds([("home", {"password": "homepass1", "dhcp": False})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"})
    with pytest.raises(BoardReset):
        w.run_for(20000)
    t_reset = w.ms()
    assert w.emu._hs_trigger == 0  # the raised interval covered the hang until the reset
    w.reboot_unit()
    w.wifi = w.app.wifi
    w.run_for(3000)
    assert w.wifi.stats["hangs"] == 1 and w.radio.ap_active  # AP first after a hang
    assert w.app.rapi.up
    w.run_for(15000)
    assert not [t for t, what in w.radio.log if t > t_reset and what.startswith("join")]
    # DHCP works again: joined at the next try, the hang count cleared
    w.radio.nets["home"].dhcp = True
    w.run_for(15000)
    assert w.wifi.sta_up and w.wifi._record().get("hung") == 0
    assert w.emu._hs_interval == 5
    assert w.port.fatal_actors == []


def test_ntp_sets_the_clock_epoch(worlds):
    w = worlds([("home", {"password": "homepass1"})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"})
    assert abs(w.clock.epoch() - NTP_EPOCH) > 1000
    assert w.run_until(lambda: w.wifi.stats["ntp"] == 1, 10000)
    assert abs(w.clock.epoch() - NTP_EPOCH) <= 10
    assert w.wifi.stats["ntp"] == 1


def test_no_reboot_for_network_trouble(worlds):
    w = worlds([("home", {"password": "homepass1", "refuse": "Unknown failure 15"})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"})
    w.run_for(30 * 60 * 1000, step=100)
    assert not w.wifi.sta_up and w.wifi.stats["join_failures"] >= 5
    assert w.port.fatal_actors == [] and w.sched.stopped == []
    src = pathlib.Path(W.__file__).read_text()
    assert "microcontroller" not in src and "reload" not in src and "supervisor" not in src


def test_sntp_against_a_local_udp_server():
    from dinamics.sntp import Sntp

    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def answer():
        data, addr = srv.recvfrom(64)
        out = bytearray(48)
        out[0] = 0x24  # version 4, mode 4 (server)
        out[1] = 2
        struct.pack_into("!I", out, 40, NTP_EPOCH + 2208988800)
        srv.sendto(bytes(out), addr)

    t = threading.Thread(target=answer)
    t.start()
    s = Sntp(socket)
    s.send("127.0.0.1", port)
    t.join(5)
    got = None
    for _ in range(200):
        got = s.recv()
        if got:
            break
        threading.Event().wait(0.01)
    srv.close()
    assert got == NTP_EPOCH


def test_the_bridge_connects_at_once_when_the_network_comes_up():
    from hil.broker import Mosquitto
    from mqtt_fixtures import BridgeRig, free_port

    port = free_port()
    r = BridgeRig(serial="NETUP", mqtt_host="127.0.0.1", mqtt_port=port)
    r.run(5 * 60 * 1000, step=100)  # no broker: the back-off reached its minute
    assert not r.bridge.connected and r.bridge.session._backoff >= 60000
    b = Mosquitto(port=port).start()
    try:
        r.sched.post(m.NET_UP, ("192.168.1.77", "sta", "home", ""))
        r.run(100)
        assert r.bridge.connected
        r.run(100)
        assert r.bridge.session.stats["published"] > 0
        r.sched.post(m.NET_DOWN, "lost home")
        r.run(10)
        assert not r.bridge.connected  # the socket died with the network: reconnect at net.up
        r.bridge.close()
    finally:
        b.close()


def test_a_blocked_pass_is_not_taken_for_a_dead_ct_feed():
    """Before: the tick right after a 3 s scan saw the CT data 3 s old and paused the charge
    (stale_ms 3000); the feed was fine, the loop was blocked. Now that tick skips the check and
    the readings made since arrive before the next one."""
    from hil.checks import Result
    from hil.ev_model import EvModel
    from hil.rigs import WorldRig
    from hil.scenario_scripts import start_charging

    rig = WorldRig(radio=SimRadio())
    try:
        rig.radio.scan_ms = W.SCAN_MS
        start_charging(rig, Result("t", "host"), EvModel(max_amps=32, phases=1, phase=1),
                       {"cte": 1, "breaker": 25, "c_limit": 32}, (2.3, 0, 0), settle_ms=40000)
        assert rig.fw.wifi.stats["scans"] >= 2  # blocking scans happened while charging
        assert rig.fw.balancer.stats["stale"] == 0 and rig.fw.balancer.pause is None
        rig.ct_feed(False)  # a feed that really dies is still caught
        assert rig.run_until(lambda: rig.fw.balancer.stats["stale"] > 0, 5000)
    finally:
        rig.close()


def test_demo_with_simulated_wifi_shows_the_setup_ap_and_the_network_state():
    import signal
    import subprocess
    import sys

    from test_cli import start, wait_for

    p, lines = start(["demo", "--no-mqtt", "--wifi", "--seconds", "60"])
    try:
        seen = wait_for(lines, "setup AP Dinamics-0100004ED102", timeout=30)
        seen += wait_for(lines, "view: wifi: not joined; setup AP", timeout=30)
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=15) == 0
    bad = subprocess.run([sys.executable, "-m", "hil", "unit", "--evse-port", "/dev/null",
                          "--sim-wifi", "x:short"], cwd=str(pathlib.Path(__file__).parents[1]),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--sim-wifi" in bad.stderr


def test_a_scan_for_the_setup_page_is_announced_and_answered_to_the_requester(worlds):
    from dinamics.mailbox import Actor

    got = []

    class Page(Actor):
        name = "page"

        def handle(self, kind, payload):
            got.append((kind, payload))

    w = worlds([("weak", {"rssi": -88}), ("strong", {"password": "abcdefgh1", "rssi": -40})])
    page = w.sched.add(Page())
    w.run_for(12000)
    n = w.wifi.stats["scans"]
    w.wifi.scan_for(page)  # what wifi.scan (web -> wifi) does
    w.run_for(3000)
    assert w.wifi.stats["scans"] == n + 1
    assert got == [(m.WIFI_NETWORKS, (("strong", -40, False), ("weak", -88, True)))]
    assert not w.wifi.sta_up  # a scan for the page joins nothing


def test_wifi_bench_figures():
    from hil import wifi_bench

    lines = []
    held, free, _hung, hang, step, ap = wifi_bench.measure(out=lines.append)
    assert held["worst_pass_ms"] == W.CONNECT_MS and not held["controller_fell_back"]
    assert "SY 13 6" in held["sy_configs"] and held["link_downs"] == 0 and held["sta_up"]
    assert free["controller_fell_back"]
    assert ap["net_up"][0][1] == "ap" and ap["net_up"][-1][1] == "sta"
    assert hang["ap_after_reset_ms"] < 100 and not hang["hang_network_retried_within_15s"]
    assert hang["fatal"] == [] and hang["sta_up"]
    assert step["idle_step_to_sc_ms"] < 700
    # the blind cut: the car is at hb_amps (6 A, fits under the oven) before the join blocks, its
    # $SC answered before the call; a step as the join is announced is cut within tens of ms
    for k in ("join", "join_fallback"):
        assert step[k + "_pilot_fits_ms"] == 0 and step[k + "_step_to_sc_ms"] < 0
        assert 0 < step[k + "_ack_before_join_ms"] <= step[k + "_sc_before_join_ms"] < 200
    assert not step["join_controller_fell_back"] and step["join_fallback_controller_fell_back"]
    assert 0 < step["join_announced_step_to_sc_ms"] < 100
    assert step["blind_capped_a"] == 6 and step["blind_cuts"] == 1
    assert W.CONNECT_MS < step["blind_capped_ms"] < W.CONNECT_MS + 5000
    assert any("controller fell back: YES" in line for line in lines)  # the suppressed hold


def test_hold_fallback_lets_the_controller_fall_back_during_a_long_join(worlds):
    """The installer's choice: no raised interval (no EEPROM write); while the unit is blind in a
    6.5 s join the controller drops to hb_amps, and is restored ($SY 165) right after."""
    w = worlds(scan_ms=W.SCAN_MS, settings={"hold_fallback": 1})
    w.emu.plug(__import__("hil.ev_model", fromlist=["EvModel"]).EvModel(max_amps=32, phases=1))
    w.run_for(15000)
    caps = []
    w.radio.on_block = lambda what: caps.append(w.emu.current_capacity)
    w.radio.add("home", password="homepass1", join_ms=W.CONNECT_MS)
    w.set("wifi_ssid", "home")
    w.set("wifi_pass", "homepass1")
    low = []
    w.run_for(15000, each=lambda world: low.append(world.emu.current_capacity))
    assert w.wifi.sta_up
    assert min(low) == 6 and low[-1] == 16  # fell back during the join, the pilot back after
    sy = _sy_lines(w)
    assert "SY 165" in sy and not [s for s in sy if s.startswith("SY 1") and s != "SY 165"]


def test_the_board_adapter_speaks_wifi_radio_as_circuitpython_documents_it():
    """dinamics/wifi_radio.WifiRadio over a fake `wifi` module with CircuitPython 10's signatures
    (circuitpython-stubs: Radio.connect/start_ap keyword arguments, Network.authmode lists)."""
    from types import SimpleNamespace as NS

    from dinamics.wifi_radio import WifiRadio

    class AuthMode:
        OPEN, WPA2, PSK = "OPEN", "WPA2", "PSK"

    calls = []

    class Radio:
        mac_address = b"\x24\x6f\x28\xaa\xbb\xcc"
        enabled = False  # CircuitPython's own settings.toml join failed: radio off
        connected = False
        ipv4_address = None
        ipv4_address_ap = None
        ap_info = None
        hostname = "cpy"

        def start_scanning_networks(self, *, start_channel=1, stop_channel=11):
            calls.append("scan")
            return iter([NS(ssid="home", rssi=-70, channel=6, authmode=[AuthMode.WPA2, AuthMode.PSK]),
                         NS(ssid="", rssi=-50, channel=1, authmode=[AuthMode.OPEN]),
                         NS(ssid="cafe", rssi=-60, channel=11, authmode=[AuthMode.OPEN])])

        def stop_scanning_networks(self):
            calls.append("stop")

        def connect(self, ssid, password=b"", *, channel=0, bssid=None, timeout=None):
            calls.append(("connect", ssid, password, channel, timeout))
            self.connected = True
            self.ipv4_address = "192.168.1.9"
            self.ap_info = NS(ssid=ssid)

        def start_ap(self, ssid, password=b"", *, channel=1, authmode=(), max_connections=4):
            calls.append(("ap", ssid, password, tuple(authmode)))

        def stop_ap(self):
            calls.append("stop_ap")

    class Mdns:
        def __init__(self, radio):
            calls.append("mdns")

        def advertise_service(self, *, service_type, protocol, port, txt_records=None):
            calls.append(("advertise", service_type, protocol, port))

    radio = Radio()
    a = WifiRadio(NS(radio=radio, AuthMode=AuthMode), None, NS(Server=Mdns))
    assert a.mac == b"\x24\x6f\x28\xaa\xbb\xcc"
    assert a.scan() == [("home", -70, 6, False), ("cafe", -60, 11, True)]
    assert radio.enabled is True and calls[:2] == ["scan", "stop"]
    a.connect("home", "homepass1", 6, 5)
    assert calls[-1] == ("connect", "home", "homepass1", 6, 5)
    assert a.connected and a.ip() == "192.168.1.9" and a.ssid() == "home"
    a.start_ap("Dinamics-X", "k7mq2xv9ra")
    assert calls[-1] == ("ap", "Dinamics-X", "k7mq2xv9ra", ("WPA2", "PSK"))
    a.start_ap("Dinamics-X", "")
    assert calls[-1] == ("ap", "Dinamics-X", b"", ())  # open: no password, no authmode
    a.set_hostname("dinamics-x")
    assert radio.hostname == "dinamics-x" and ("advertise", "_http", "_tcp", 80) in calls
    with pytest.raises(OSError):
        a.ntp_send("pool.ntp.org")  # no pool: an error the actor retries on, never a crash


def test_joins_that_take_their_full_bound_never_trip_the_watchdog(worlds):
    """The firmware's WatchdogFeeder feeds a simulated 8 s hardware watchdog every second; a scan
    and a join that each take their whole bound, over several reconnects (so the feeder's phase
    varies), leave it unfed at most CONNECT_MS + one feed period, and it never fires."""
    w = worlds([("home", {"password": "homepass1", "join_ms": W.CONNECT_MS})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"}, scan_ms=W.SCAN_MS)
    for i in range(4):
        w.run_for(20000 + 137 * i)
        assert w.wifi.sta_up
        w.radio.drop()
    assert w.wifi.stats["joins"] == 4
    assert W.CONNECT_MS <= w.watchdog.worst_unfed_ms <= W.CONNECT_MS + 1000 < w.watchdog.timeout * 1000


def test_web_busy_holds_off_retries_but_not_the_join_the_client_asked_for(worlds):
    """web.busy (the web actor, while requests come) defers the station's own retries while the
    AP is up; new credentials from the setup page are tried at once all the same."""
    w = worlds([("home", {"password": "homepass1"})])
    w.run_for(5000)
    assert w.radio.ap_active and not w.wifi.sta_up
    n0 = len(scans(w))
    t0 = w.ms()
    while w.ms() - t0 < 30000:  # the setup page polls
        w.sched.post(m.WEB_BUSY, 5000)
        w.run_for(1000)
    assert len(scans(w)) == n0 and w.wifi.stats["deferred"] > 0
    w.set("wifi_pass", "homepass1")
    w.set("wifi_ssid", "home")
    for _ in range(8):
        w.sched.post(m.WEB_BUSY, 5000)
        w.run_for(1000)
    assert w.wifi.sta_up and w.wifi.ssid == "home"
    assert w.radio.ap_active  # lingers for the page


def test_forgetting_the_network_it_is_on_leaves_it_and_opens_the_setup_ap(worlds):
    """delete_wifi (web Forget, MQTT) while the station is on the stored network: it leaves it at
    once and goes on as with no stored network; nothing else known, so the setup AP opens. Before
    the fix the station stayed joined until a reboot (the change showed no effect)."""
    w = worlds([("home", {"password": "homepass1"})],
               settings={"wifi_ssid": "home", "wifi_pass": "homepass1"})
    w.run_for(8000)
    assert w.wifi.sta_up and w.radio.connected and not w.radio.ap_active
    from dinamics import settings as st

    w.set(st.RESET_WIFI, "1")  # what MQTT delete_wifi and the web's Forget ask for
    w.run_for(5000)
    assert not w.radio.connected and not w.wifi.sta_up
    assert w.rec.of(m.NET_DOWN) == ["left home"]
    assert w.radio.ap_active and w.rec.of(m.NET_UP)[-1][1:3] == ("ap", "Dinamics-0100004ED102")
    w.run_for(60000)  # and it stays off the forgotten network (the AP stays, retries find nothing)
    assert not w.radio.connected and w.radio.ap_active and len(joins(w)) == 1


def test_clearing_wifi_ssid_leaves_for_the_settings_toml_network(worlds):
    """set_wifi_ssid "" while on the stored network: the next credential source, settings.toml's
    CIRCUITPY_WIFI_SSID, is joined; no setup AP."""
    w = worlds([("home", {"password": "homepass1", "rssi": -40}),
                ("toml", {"password": "tomlpass1", "rssi": -80})],
               env=("toml", "tomlpass1", None), settings={"wifi_ssid": "home", "wifi_pass": "homepass1"})
    w.run_for(8000)
    assert w.wifi.ssid == "home"
    w.set("wifi_ssid", "")
    w.run_for(8000)
    assert w.wifi.sta_up and w.wifi.ssid == "toml" and w.radio.ssid() == "toml"
    assert w.rec.of(m.NET_DOWN) == ["left home"] and not w.radio.ap_active
    assert w.rec.of(m.NET_UP)[-1][1:3] == ("sta", "toml")


def test_forgetting_a_network_it_is_not_on_changes_nothing_live(worlds):
    """On settings.toml's network (the stored one is not in sight): forgetting the stored one
    leaves the station alone: no scan, no join, no net.down. Nor does forgetting a stored network
    that settings.toml names too (the unit would be on it without a stored network as well)."""
    w = worlds([("toml", {"password": "tomlpass1"})], env=("toml", "tomlpass1", None),
               settings={"wifi_ssid": "away", "wifi_pass": "awaypass1"})
    w.run_for(10000)
    assert w.wifi.ssid == "toml"
    from dinamics import settings as st

    n_scans, n_joins = len(scans(w)), len(joins(w))
    w.set(st.RESET_WIFI, "1")
    w.run_for(20000)
    assert w.wifi.sta_up and w.radio.connected and w.wifi.ssid == "toml"
    assert (len(scans(w)), len(joins(w))) == (n_scans, n_joins) and w.rec.of(m.NET_DOWN) == []
    w.set("wifi_ssid", "toml")
    w.set("wifi_pass", "tomlpass1")
    w.run_for(5000)
    w.set(st.RESET_WIFI, "1")
    w.run_for(20000)
    assert w.wifi.sta_up and (len(scans(w)), len(joins(w))) == (n_scans, n_joins)
    assert w.rec.of(m.NET_DOWN) == []


def test_forgetting_while_the_ap_lingers_announces_the_ap_again(worlds):
    """Joined from the setup page (the AP lingers a minute): Forget leaves the network and the
    unit says it is reachable over the AP again (net.up "ap" after net.down), so the web page and
    the LCD show the AP rather than "down"."""
    w = _joined_over_the_setup_ap(worlds, 8000)
    from dinamics import settings as st

    w.set(st.RESET_WIFI, "1")
    w.run_for(3000)
    ups = w.rec.of(m.NET_UP)
    assert w.rec.of(m.NET_DOWN) == ["left home"] and ups[-1][1:3] == ("ap", "Dinamics-0100004ED102")
    assert [u[1] for u in ups] == ["ap", "sta", "ap"]
    w.run_for(70000)  # no station to linger for: the AP stays
    assert w.radio.ap_active and not w.radio.connected
