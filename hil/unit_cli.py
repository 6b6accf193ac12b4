"""`python -m hil unit`: the firmware on the host against a controller on a serial port, optionally
on an MQTT broker (settings, broker and serial persist in the state dir)."""
import os
import tempfile
import threading

from hil.signals import catch_stop


def add_parser(sub):
    p = sub.add_parser("unit", help="run the firmware on this PC against an EVSE on a serial port")
    p.add_argument("--evse-port", required=True, help="serial device of the OpenEVSE controller")
    p.add_argument("--state-dir", default=None, help="where settings persist (default: a temp dir)")
    p.add_argument("--broker", default=None, metavar="HOST:PORT",
                   help="MQTT broker (stored as the mqtt_host/mqtt_port settings)")
    p.add_argument("--serial", default=None, metavar="SN",
                   help="device serial = topic prefix Dinamics/<SN>/ (stored as the serial setting)")
    from hil.hd44780 import LCD_HELP

    p.add_argument("--lcd", default=None, metavar="BACKPACK[:SIZE]", help=LCD_HELP)
    p.add_argument("--sim-wifi", default=None, metavar="SSID[:PASSWORD]", nargs="?", const="",
                   help="run the wifi actor on a simulated radio (hil/sim_radio.py) with this "
                        "network in the air (none: the setup AP only); join it with "
                        "set_wifi_ssid / set_wifi_pass. Its scans and joins stall the loop as on "
                        "a board. The MQTT socket stays this PC's.")
    return p


def parse_broker(text):
    """"host:port" or "host" (port 1883) -> (host, port); ValueError when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 1883
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("broker must be HOST:PORT, got %r" % text)
    return host, int(port)


def configure(app, broker=None, serial=None, source="cli"):
    """Store --serial / --broker through the settings actor (validated, persisted)."""
    ok = True
    if serial is not None:
        ok = app.settings_actor.set("serial", serial, source) is not None and ok
    if broker is not None:
        ok = app.settings_actor.set("mqtt_port", str(broker[1]), source) is not None and ok
        ok = app.settings_actor.set("mqtt_host", broker[0], source) is not None and ok
    return ok


def run(args):
    from dinamics.app import App
    from hil.host_port import HostPort

    from dinamics.mqtt_topics import valid_serial

    from hil.cli import fail

    prog = "python -m hil unit"
    try:
        broker = parse_broker(args.broker) if args.broker else None
    except ValueError as e:
        fail(prog, "--broker: %s" % e)
    if args.serial is not None and not valid_serial(args.serial):
        fail(prog, "--serial: 1-12 letters, digits, '-' or '_' (it becomes a topic level)")
    lcd = None
    if getattr(args, "lcd", None):
        from hil import hd44780

        try:
            hd44780.parse_lcd(args.lcd)
        except ValueError as e:
            fail(prog, str(e))
        lcd = hd44780.terminal_lcd(args.lcd)
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="dinamics-")
    os.makedirs(state_dir, exist_ok=True)
    radio = None
    if getattr(args, "sim_wifi", None) is not None:
        from hil.sim_radio import SimRadio

        radio = SimRadio(scan_ms=1500)
        if args.sim_wifi:
            ssid, _, pw = args.sim_wifi.partition(":")
            if not ssid or len(ssid) > 32 or (pw and not 8 <= len(pw) <= 63):
                fail(prog, "--sim-wifi: SSID (1-32 characters)[:PASSWORD (8-63)]")
            radio.add(ssid, password=pw)
    try:
        port = HostPort(args.evse_port, state_dir, mqtt=True, serial=args.serial,
                        i2c=lcd[0] if lcd else None, radio=radio)
    except (OSError, ValueError) as e:  # serial.SerialException is an OSError
        fail(prog, "--evse-port: cannot open %s: %s" % (args.evse_port, getattr(e, "strerror", None) or e))
    app = App(port)
    if not configure(app, broker, args.serial):
        port.console(40, "bad --broker or --serial (see the error above)")
        return 2
    if lcd is not None:
        hd44780.lcd_settings(app, args.lcd)
        app.sched.add(hd44780.lcd_view(lcd[1], lambda t: port.console(20, t)))
    if app.mqtt is not None:
        from dinamics.mqtt_topics import serial_number

        port.console(20, "unit Dinamics/%s, broker %s (settings in %s)" % (
            serial_number(app.settings, port.mac),
            "%s:%d" % broker if broker else "from the stored settings", state_dir))
    # The signal only asks the loop to stop after the current pass: no actor is cut off
    # mid-message, and the settings still get flushed.
    catch_stop(app.sched.stop)
    # An actor stopped for crashing: a board resets (watchdog); here the process ends with exit 3
    # after a 2 s grace (the bridge publishes actor.stopped), for a supervisor to restart it.
    port.on_fatal = lambda actor: threading.Timer(2.0, app.sched.stop).start()
    try:
        app.run_forever()
    finally:
        if app.mqtt is not None:
            app.mqtt.close()
        app.settings_actor.flush()
    if port.fatal_actors:
        port.console(40, "unit stopped: %s kept crashing" % ", ".join(port.fatal_actors))
        return 3
    port.console(20, "unit stopped")
    return 0
