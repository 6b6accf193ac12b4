"""`python -m hil demo`: the firmware on this PC, an emulated OpenEVSE with a car behind it,
joined by a pseudo-terminal pair; readable, timestamped log lines of what happens. The unit is on
an MQTT broker: --broker HOST:PORT, or a mosquitto started here (the embedded amqtt broker only when
mosquitto is missing), so its topics can be watched and driven with any MQTT client (the docs'
mosquitto_sub / mosquitto_pub commands) while the demo runs."""
from hil.signals import catch_stop


def add_parser(sub):
    p = sub.add_parser("demo", help="run firmware + emulated EVSE + car, with readable logs")
    p.add_argument("--seconds", type=float, default=80.0, help="how long to run (default 80)")
    p.add_argument("--broker", default=None, metavar="HOST:PORT",
                   help="MQTT broker to use (default: start mosquitto on 127.0.0.1:1883, or a free "
                        "port if 1883 is taken; the embedded amqtt broker if mosquitto is missing)")
    p.add_argument("--no-mqtt", action="store_true", help="run without any broker")
    p.add_argument("--web-port", type=int, default=0, metavar="PORT",
                   help="web UI port on 127.0.0.1 (default 0: a free port; -1: no web UI)")
    p.add_argument("--web-password", default="dinamics-demo", metavar="PW",
                   help="web UI admin password (default dinamics-demo)")
    p.add_argument("--serial", default="DEMO00000001", metavar="SN",
                   help="device serial, i.e. topic prefix Dinamics/<SN>/ (default DEMO00000001)")
    from hil.hd44780 import LCD_HELP

    p.add_argument("--lcd", default=None, metavar="BACKPACK[:SIZE]", help=LCD_HELP)
    p.add_argument("--wifi", action="store_true",
                   help="run the wifi actor on a simulated radio: no known network at boot (setup "
                        "AP), the network DemoHome appears and is joined at 20 s (the scans and "
                        "the join really stall the loop, as on a board)")
    p.add_argument("--link", choices=("cable", "lora"), default="cable",
                   help="lora: a LoRa-linked install, the unit talks to a bridge at the charger "
                        "over a simulated radio (docs/lora.md); its airtime on Dinamics/<SN>/lora")
    return p


def start_broker(text, say=print):
    """-> (host, port, broker we started or None). Without --broker: mosquitto (the broker the
    docs' commands are written for) on 127.0.0.1:1883, or a free port if 1883 is taken; the
    embedded amqtt broker only when mosquitto is not installed, with a warning."""
    from hil.unit_cli import parse_broker

    if text:
        host, port = parse_broker(text)
        return host, port, None
    import socket

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT is no listener
    try:
        s.bind(("127.0.0.1", 1883))
        port = 1883
    except OSError:
        port = 0
    finally:
        s.close()
    from hil.broker import EmbeddedBroker, Mosquitto, MosquittoMissing

    try:
        try:
            b = Mosquitto(port=port or None).start()
        except RuntimeError:  # 1883 was taken between the check and mosquitto's bind: a free port
            if not port:
                raise
            b = Mosquitto().start()
        return b.address[0], b.port, b
    except MosquittoMissing:
        say("WARNING: mosquitto is not installed (scripts/setup installs it): using the embedded "
            "amqtt broker, which may drop a QoS 0 message from a client that disconnects at "
            "once (mosquitto_pub: add -q 1)")
    b = EmbeddedBroker(port=port).start()
    return b.host, b.port, b


def how_to_watch(host, port, prefix):
    return [
        "MQTT broker %s:%d, unit topic prefix %s/" % (host, port, prefix),
        "  watch:  mosquitto_sub -h %s -p %d -t '%s/#' -v" % (host, port, prefix),
        "  drive:  mosquitto_pub -h %s -p %d -t %s/set_c_limit -m 10" % (host, port, prefix),
        "          mosquitto_pub -h %s -p %d -t %s/get_status -m 1" % (host, port, prefix),
        "  errors: %s/error   (python: paho-mqtt, see docs/mqtt.md)" % prefix,
    ]


def wifi_state(wifi):
    """One line: the station and the setup AP as the wifi actor sees them."""
    sta = ("joined %s, ip %s" % (wifi.ssid, wifi.ip)) if wifi.sta_up else "not joined"
    ap = ("setup AP %s (%s)" % (wifi.ap_ssid, ("password " + wifi.ap_pass) if wifi.ap_pass
                                   else "open")) if wifi.ap_on else "no AP"
    return "wifi: %s; %s; %d scans, %d joins" % (sta, ap, wifi.stats["scans"], wifi.stats["joins"])


def run(args):
    from hil.ev_model import EvModel
    from hil.world import World

    seconds = max(12.0, args.seconds)
    from hil import hd44780

    if getattr(args, "lcd", None):
        try:
            hd44780.parse_lcd(args.lcd)
        except ValueError as e:  # before any broker is started
            from hil.cli import fail

            fail("python -m hil demo", str(e))
    embedded = None
    broker = None
    if not getattr(args, "no_mqtt", False):
        host, port, embedded = start_broker(getattr(args, "broker", None))
        broker = (host, port)
    from hil.house import HouseLoad

    # The house: a 25 A main breaker, 3 A of base load on L1 where the car charges; an oven and a
    # kettle come and go while it charges (times in ms from the start).
    events = [(14000, (13.0, 1.0, 1.0), "oven on: house 13 A"),
              (29000, (18.0, 1.0, 1.0), "kettle on too: house 18 A"),
              (44000, (13.0, 1.0, 1.0), "kettle off: house 13 A"),
              (56000, (3.0, 1.0, 1.0), "oven off: house 3 A")]
    house = HouseLoad(base=(3.0, 1.0, 1.0), steps=[(t, a) for t, a, _ in events])
    web_port = getattr(args, "web_port", 0)
    web = {} if web_port < 0 else {"web_port": web_port,
                                   "web_password": getattr(args, "web_password", "dinamics-demo")}
    lcd = hd44780.terminal_lcd(args.lcd) if getattr(args, "lcd", None) else None
    port_kwargs = dict(web)
    if lcd:
        port_kwargs["i2c"] = lcd[0]
    radio = None
    if getattr(args, "wifi", False):
        from hil.sim_radio import SimRadio

        radio = port_kwargs["radio"] = SimRadio(scan_ms=1500, ntp_epoch=lambda: int(__import__("time").time()))
    w = World(virtual=False, out=__import__("sys").stdout, broker=broker,
              serial=getattr(args, "serial", None) if broker else None, house=house,
              port_kwargs=port_kwargs or None, link=getattr(args, "link", "cable"))
    stop, _restore = catch_stop()
    say = lambda text: w.console(20, "demo " + text)  # noqa: E731
    say("unit on %s, EVSE emulator on %s (pyserial over a pty pair)" % w.modem.paths)
    if w.medium is not None:
        say("LoRa-linked: the unit <-> radio (SF7/BW125, EU868 1 %) <-> bridge <-> the EVSE line")
    if broker is not None:
        from dinamics.mqtt_topics import serial_number

        prefix = "Dinamics/" + serial_number(w.app.settings, w.port.mac)
        for line in how_to_watch(broker[0], broker[1], prefix):
            say(line)
    # Installer settings (as over MQTT): breaker, CTs on all phases, dynamic mode, limits; and
    # faster polls than the seed's defaults so a short demo shows current and energy moving.
    for name, value in (("breaker", 25), ("cte", 123), ("c_limit", 32), ("dinamics", 1),
                        ("timer7", 2000), ("timer9", 3000)):
        w.set(name, value)
    say("house: 25 A breaker, 3 A base load; dynamic load management on, c_limit 32 A")
    if w.app.web is not None and w.app.web.listening:
        say("web UI: http://127.0.0.1:%d/  (password %s; docs/web.md)"
            % (w.app.web.listening[1], web["web_password"]))
    if lcd is not None:
        hd44780.lcd_settings(w.app, args.lcd)
        w.sched.add(hd44780.lcd_view(lcd[1], say, period_ms=2500))
    if radio is not None:
        events.append((20000, None, "wifi: the network DemoHome appears; the installer enters it "
                                    "(set_wifi_ssid / set_wifi_pass, as the web setup page does)"))
        events.sort(key=lambda e: e[0])
    plug_at, unplug_at = 4000, int(seconds * 1000) - 4000
    plugged = unplugged = False
    next_view = 5000
    try:
        while not stop and w.ms() < seconds * 1000:
            w.step(5)
            while events and w.ms() >= events[0][0]:
                e = events.pop(0)
                say(e[2])
                if e[1] is None and radio is not None:
                    radio.add("DemoHome", password="demopass1", join_ms=1500)
                    w.set("wifi_ssid", "DemoHome")
                    w.set("wifi_pass", "demopass1")
            if w.ms() >= next_view:
                next_view += 5000
                h = house.amps(w.ms())
                car = w.emu.ev_phase_currents()[0]
                say("view: L1 %5.1f A on the CT (house %4.1f + car %4.1f), pilot %2d A, breaker 25 A"
                    % (h[0] + car, h[0], car, w.emu.current_capacity))
                if radio is not None:
                    say("view: " + wifi_state(w.app.wifi))
            if not plugged and w.ms() >= plug_at:
                plugged = True
                say("plugging in a car (32 A max, 1 phase, follows the pilot after 5 s)")
                w.emu.plug(EvModel(max_amps=32, phases=1))
            if not unplugged and w.ms() >= unplug_at:
                unplugged = True
                say("unplugging the car")
                w.emu.unplug()
    finally:
        if radio is not None:
            say(wifi_state(w.app.wifi) + "; longest blocking radio call %d ms"
                % max([ms for _, ms in radio.blocks] or [0]))
        if w.medium is not None and w.app.lora is not None:
            a = w.app.lora.air()
            say("LoRa: %d frames from the unit, %.1f s on air of a %d s budget per hour; %d lost"
                % (a[3], a[0] / 1000.0, a[1] // 1000, w.medium.stats["lost"]))
        st = w.app.rapi.stats
        if st["rtt_count"]:
            say("RAPI round trips: %d, mean %.1f ms, worst %d ms; worst scheduler pass %.1f ms"
                % (st["rtt_count"], st["rtt_sum"] / st["rtt_count"], st["rtt_worst"],
                   w.sched.worst_pass_us / 1000))
        w.close()
        if lcd is not None:
            lcd[2]()
        if embedded is not None:
            getattr(embedded, "close", embedded.stop)()
    return 0
