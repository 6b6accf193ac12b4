"""The bridge at the charger (role `bridge`, device/bridge.py): the same codebase, one actor.
lora_link in its bridge role passes authenticated frames to the controller's UART and the
controller's lines back over the radio, with the same key, counters and replay rules as the
unit. It runs no balancer and keeps no heartbeat of its own: the unit's `$SY` pulses cross it,
so when the radio dies the controller falls back to its safe current by itself; and lora_link's
failsafe (dinamics/lora_failsafe.py) writes one `$SC hb_amps V` after lora_failsafe_s without a
frame from the unit, for a controller whose heartbeat cannot act.

A port provides: clock, console, fatal(actor), fs (settings and counters), evse_uart,
lora_radio(settings)."""

from dinamics import messages as m
from dinamics.mailbox import Scheduler
from dinamics.settings import Settings
from dinamics.store import SlotStore


class BridgeApp:
    def __init__(self, port):
        from actors.lora_link import LoraLink

        self.port = port
        self.sched = Scheduler(port.clock, console=port.console, on_fatal=port.fatal)
        self.settings = Settings(SlotStore(port.fs).load())
        radio = port.lora_radio(self.settings)
        if radio is None:
            raise RuntimeError("bridge role: no LoRa radio (DINAMICS_LORA_* pins)")
        self.link = self.sched.add(LoraLink(self.settings, radio, SlotStore(port.fs, "lora"),
                                            uart=port.evse_uart))

    def run_forever(self):
        self.sched.log(m.INFO, "dinamics bridge starting")
        self.sched.run_forever()
