"""One process, the whole bench: the firmware (host port) and the OpenEVSE emulator joined by a
null-modem pseudo-terminal pair through pyserial. Virtual time for tests, scenarios and the
benchmark (deterministic, fast); real time for the demo."""
import tempfile
import time

from dinamics.app import App
from hil.clock import VirtualClock
from hil.evse_emulator import OpenEvseEmulator
from hil.host_port import Console, HostPort, open_serial
from hil.monitor import Monitor
from hil.null_modem import NullModem


LORA_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"  # the rig's pair


class World:
    def __init__(self, virtual=True, state_dir=None, out=None, min_level=20, app_factory=App,
                 port_kwargs=None, broker=None, serial=None, ct=False, house=None,
                 ct_period_ms=300, link="cable", lora_loss=0.0, lora_seed=1, lora_sf=7,
                 bridge_settings=None, **emulator_kwargs):
        """broker=(host, port) puts the unit on that MQTT broker (its MQTT socket traffic is real
        even on the virtual clock); serial names it (topic prefix Dinamics/<serial>/).
        ct=True or house=HouseLoad(...) adds the CT feed: a second pty pair into which a CtInjector
        plays house load + the car's draw, as a board in HIL mode reads it from usb_cdc.data.
        link="lora": a LoRa-linked install: the controller's line goes to a bridge (dinamics.
        bridge_app, its own scheduler on the same clock) that talks to the unit over a simulated
        medium (hil.radio_sim; `lora_loss` per frame, `lora_sf`); the unit's cable stays joined to
        the same line too, so `set("lora", 0)` swaps back live; `bridge_settings` (a dict) are the
        bridge's own, as its settings.toml would seed them (e.g. lora_failsafe_s)."""
        self.virtual = virtual
        self.clock = VirtualClock() if virtual else None
        if virtual:
            self.now_ms = self.clock
        else:
            t0 = time.monotonic()
            self.now_ms = lambda: int((time.monotonic() - t0) * 1000)
        # Virtual time: synchronous modems (hil/null_modem.py), so that no byte is in flight in
        # the kernel when a program looks for it: every port is opened through modem.attach().
        self.modem = NullModem(sync=virtual)
        unit_path, evse_path = self.modem.paths
        self.evse_serial = self.modem.attach(1, open_serial(evse_path))
        unit_serial = self.modem.attach(0, open_serial(unit_path))
        self.emu = OpenEvseEmulator(self.evse_serial, self.now_ms, **emulator_kwargs)
        self.link = link
        self.medium = self.bridge = self.shared = None
        if link == "lora":
            from hil.radio_sim import Medium, SharedPort

            self.shared = SharedPort(unit_serial)
            self.medium = Medium(self.now_ms, sf=lora_sf, loss=lora_loss, seed=lora_seed)
            unit_serial = self.shared.reader()
        elif link != "cable":
            raise ValueError("link: cable or lora")
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="dinamics-world-")
        from dinamics.clock import BoardClock
        clock = self.clock if virtual else BoardClock()
        self.console = Console(clock, out=out, min_level=min_level, keep=5000)
        port_kwargs = dict(port_kwargs or {})
        if broker is not None:
            port_kwargs.setdefault("mqtt", True)
            port_kwargs.setdefault("serial", serial)
        self.ct_modem = self.injector = self.ct_serial = None
        self.house = house
        if ct or house is not None:
            from hil.ct_feed_writer import CtFeedWriter
            from hil.house import CtInjector, HouseLoad

            self.house = house or HouseLoad()
            self.ct_modem = NullModem(sync=virtual)
            unit_ct, rig_ct = self.ct_modem.paths
            self.ct_serial = self.ct_modem.attach(1, open_serial(rig_ct))
            port_kwargs["ct_stream"] = self.ct_modem.attach(0, open_serial(unit_ct))
            self.injector = CtInjector(CtFeedWriter(self.ct_serial), self.house,
                                       lambda t: self.emu.ev_phase_currents(),
                                       period_ms=ct_period_ms)
        self.radio = port_kwargs.get("radio")  # a hil.sim_radio.SimRadio: its calls take virtual time
        if self.radio is not None and virtual and self.radio.clock is None:
            self.radio.clock = self.clock
        if self.medium is not None:
            port_kwargs["lora"] = self.medium.radio("unit")
        self.port = HostPort(unit_serial, self.state_dir, clock=clock, console=self.console,
                             **port_kwargs)
        if self.radio is not None and virtual:
            self.radio.during_block = self._blocked
        self.app = app_factory(self.port)
        self.sched = self.app.sched
        self.monitor = self.sched.add(Monitor())
        self.watchdog = None
        self._add_watchdog()
        self.mqtt = getattr(self.app, "mqtt", None)
        if serial is not None:
            self.set("serial", serial)
        if broker is not None:
            self.set("mqtt_port", broker[1])
            self.set("mqtt_host", broker[0])
        if self.medium is not None:
            self._make_bridge(clock, out, min_level, lora_sf, bridge_settings)
            self.set("lora_sf", lora_sf)
            self.set("lora_key", LORA_KEY)
            self.set("lora", 1)

    def _make_bridge(self, clock, out, min_level, sf, extra=None):
        import os

        from dinamics.bridge_app import BridgeApp
        from dinamics.store import SlotStore
        from hil.host_fs import DirFs
        from hil.radio_sim import BridgePort

        fs = DirFs(os.path.join(self.state_dir, "bridge"))
        if SlotStore(fs).load() is None:  # as its settings.toml would seed it (first boot)
            seed = {"lora_key": LORA_KEY, "lora_sf": sf}
            seed.update(extra or {})
            SlotStore(fs).save(seed)
        self.bridge_console = Console(clock, out=out, min_level=min_level, keep=2000, prefix="bridge")
        self.bridge_port = BridgePort(self.shared.reader(), self.medium.radio("bridge"), fs, clock,
                                      self.bridge_console)
        self.bridge = BridgeApp(self.bridge_port)

    def lora_pass(self):
        """The bridge's turn: the controller's bytes to both readers, one bridge pass."""
        if self.bridge is not None:
            self.shared.pump()
            self.bridge.sched.run_once()
    def ms(self):
        return self.now_ms()

    def _add_watchdog(self):
        """With a simulated radio (virtual time): the hardware watchdog too, fed by the firmware's
        WatchdogFeeder as board_port.start_watchdog does, so a blocking call that outlasts it
        resets the board (hil.sim_radio.BoardReset)."""
        if self.radio is None or not self.virtual:
            return
        from dinamics.watchdog import WatchdogFeeder
        from hil.sim_radio import SimWatchdog

        self.watchdog = SimWatchdog(self.clock)
        self.radio.watchdog = self.watchdog
        self.sched.add(WatchdogFeeder(self.watchdog))

    def _blocked(self, ms):
        """The unit is inside a blocking radio call: time passes, the controller and the CT feed
        run (their lines wait in the unit's serial buffers, as on a board), the unit does not."""
        self.clock.advance(ms)
        if self.injector is not None:
            self.injector.poll(self.ms())
            self.ct_modem.pump()
        self.modem.pump()
        self.emu.poll()
        self.modem.pump()

    def reboot_unit(self):
        """The board was reset (hil.sim_radio.BoardReset: the watchdog got a hung pass): a new
        App over the same port and settings files, the radio back to power-on; the controller
        (the emulator) runs on untouched."""
        if self.radio is not None:
            self.radio.powered_on()
        if self.mqtt is not None:
            self.mqtt.session.close_client()
        self.console(30, "--- board reset (watchdog) ---")
        self.app = type(self.app)(self.port)
        self.sched = self.app.sched
        self.monitor = self.sched.add(Monitor())
        self.mqtt = getattr(self.app, "mqtt", None)
        self._add_watchdog()

    def step(self, ms=10):
        """Advance the world by about `ms`: move bytes, run the controller, run the firmware.
        Virtual time: each pump() returns only when the bytes written so far are at their readers
        (synchronous modems), so the run does not depend on how busy the PC is."""
        if self.virtual:
            self.clock.advance(ms)
        if self.injector is not None:
            self.injector.poll(self.ms())
            self.ct_modem.pump()
        for _ in range(2):
            self.modem.pump()
            self.emu.poll()
            self.modem.pump()
            self.lora_pass()
            self.sched.run_once()
        if not self.virtual:
            time.sleep(ms / 1000)

    def run_for(self, ms, step=10, each=None):
        end = self.ms() + ms
        while self.ms() < end:
            self.step(step)
            if each is not None:
                each(self)

    def run_until(self, predicate, timeout_ms, step=10):
        end = self.ms() + timeout_ms
        while self.ms() < end:
            self.step(step)
            if predicate():
                return True
        return False

    def set(self, name, value):
        """As an installer would over MQTT: through the settings actor, validated and stored."""
        return self.app.settings_actor.set(name, str(value), "rig")

    def close(self):
        if self.mqtt is not None:
            self.mqtt.close()
        for s in (self.evse_serial, self.port.evse_uart, self.ct_serial, self.port.ct_stream,
                  self.shared.ser if self.shared is not None else None):
            try:
                if s is not None:
                    s.close()
            except Exception:
                pass
        self.modem.close()
        if self.ct_modem is not None:
            self.ct_modem.close()
