"""App wiring shared by the board (code.py) and the host (hil/host_port.py).

A port provides: clock, console(level, text), fatal(actor), fs (settings files), evse_uart
(the cable transport), ip() (the unit's address: station, else the setup AP; "" when there is
none; never raises), and optionally ct_stream, socket_pool, mac, mem_free(), restart(), radio
(+ wifi_env: the wifi actor, actors/wifi.py), i2c_bus() (the unit LCD's bus, or None while it
cannot be opened), lora_radio(settings) (the LoRa radio, or None: see actors/lora_link.py);
web=False leaves the web UI out (the host port without web_port)."""

from dinamics import messages as m
from dinamics.mailbox import Scheduler
from dinamics.settings import Settings
from dinamics.store import SlotStore


class App:
    def __init__(self, port):
        from actors.balancer import Balancer
        from actors.rapi_link import RapiLink
        from actors.settings_actor import SettingsActor
        from actors.uart_link import UartLink

        self.port = port
        self.sched = Scheduler(port.clock, console=port.console, on_fatal=port.fatal)
        self.store = SlotStore(port.fs)
        self.settings = Settings(self.store.load())
        add = self.sched.add
        # Registration order is delivery priority: measurement and the EVSE path first.
        self.ct = None
        if getattr(port, "ct_stream", None) is not None or getattr(port, "ct_adc", None) is not None:
            from actors.ct_meter import CtMeter
            self.ct = add(CtMeter(self.settings, port))
        self.uart = add(UartLink(port.evse_uart))
        self.rapi = add(RapiLink(self.settings))
        self.lora = None  # actors.lora_link, built (and imported) when the `lora` setting is first on
        self.rapi.medium = self._medium
        if self.settings.get("lora"):
            self.rapi.radio = self._medium(True)
        self.balancer = add(Balancer(self.settings))
        self.settings_actor = add(SettingsActor(self.settings, self.store))
        self.mqtt = None
        if getattr(port, "socket_pool", None) is not None:
            from actors.mqtt_bridge import MqttBridge
            self.mqtt = add(MqttBridge(self.settings, port))
        self.wifi = None
        if getattr(port, "radio", None) is not None:
            from actors.wifi import Wifi
            self.wifi = add(Wifi(self.settings, port))
        self.web = None
        if getattr(port, "socket_pool", None) is not None and getattr(port, "web", True):
            from actors.web import Web
            self.web = add(Web(self.settings, port))
        self.lcd = None  # the unit's LCD: last, it only shows what the others did
        if getattr(port, "i2c_bus", None) is not None:
            from actors.lcd import Lcd
            self.lcd = add(Lcd(self.settings, port))

    def _medium(self, lora):
        """Which transport carries the RAPI lines: True when it is the radio now."""
        if lora and self.lora is None:
            make = getattr(self.port, "lora_radio", None)
            radio = make(self.settings) if make is not None else None
            if radio is None:
                self.sched.log(m.ERROR_LEVEL, "lora: this unit has no LoRa radio; the cable stays")
                lora = False
            else:
                from actors.lora_link import LoraLink

                self.lora = LoraLink(self.settings, radio, SlotStore(self.port.fs, "lora"))
                self.sched.add(self.lora)
        if self.lora is not None:
            self.lora.activate(lora)
        self.uart.active = not lora
        return lora

    def run_forever(self):
        self.sched.log(m.INFO, "dinamics starting")
        self.sched.run_forever()
