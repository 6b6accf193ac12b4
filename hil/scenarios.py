"""HIL scenarios: the registry (name -> scripted world) and the runner.

A scenario drives a rig (hil.rigs) through one situation (hil.scenario_scripts), measures from the
wire and from the truth (hil.tape, hil.figures, hil.oracle) and asserts (hil.checks); the
reaction budget and the violation rule are hil.budget.

Run one: `python -m hil scenario NAME` (virtual time) or `... --bench --evse-port P --ct-port Q`;
from code: `run(name, rig=None, params=None)` -> hil.checks.Result.
"""
from hil import scenario_scripts as scripts
from hil.checks import Result, Skip
from hil.rigs import Broker, WorldRig


class Spec:
    def __init__(self, name, func, text, needs=(), test_params=None):
        self.name = name
        self.func = func
        self.text = text
        self.needs = needs
        self.test_params = test_params or {}


SCENARIOS = {}
for _spec in (
        Spec("oven", scripts.oven_mid_charge, "oven switched on mid-charge, and off again"),
        Spec("ac", scripts.ac_cycling, "A/C cycling around the 6 A minimum: no chatter"),
        Spec("three_phase", scripts.three_phase_one_phase_car,
             "3-phase house, 1-phase car on L2: phase detection, only L2 loads cut"),
        Spec("ct_pulled", scripts.ct_clamp_pulled,
             "CT clamp pulled / feed silent: stale-data fallback"),
        Spec("cable_cut", scripts.cable_cut,
             "RAPI cable cut: controller heartbeat fallback, re-sync"),
        Spec("reboot", scripts.controller_reboot, "controller reboot with the pilot held low"),
        Spec("broker_gone", scripts.broker_gone, "MQTT broker killed mid-charge and restarted",
             needs=("broker",)),
        Spec("wifi", scripts.wifi_fallback,
             "no WiFi at boot: setup AP, load steps meanwhile, the network appears, is lost, "
             "comes back", needs=("wifi",)),
        Spec("mixed", scripts.mixed_load, "30 min busy evening: energy vs an oracle",
             test_params={"minutes": 10}),
):
    SCENARIOS[_spec.name] = _spec
NAMES = tuple(SCENARIOS)


def _mqtt_available():
    try:
        import actors.mqtt_bridge  # noqa: F401
    except ImportError:
        return False
    return True


def make_world_rig(spec, serial="HILSCEN1"):
    broker = None
    if "broker" in spec.needs:
        if not _mqtt_available():
            raise Skip("the MQTT bridge (device/actors/mqtt_bridge.py) is not there yet")
        broker = Broker().start()
    radio = None
    if "wifi" in spec.needs:
        from hil.sim_radio import SimRadio

        radio = SimRadio(ntp_epoch=1800000000)
    try:
        rig = WorldRig(broker=broker.address if broker else None,
                       serial=serial if broker else None, radio=radio)
    except Exception:
        if broker is not None:
            broker.close()
        raise
    rig.broker = broker
    return rig


def run(name, rig=None, params=None, mode=None, progress=None):
    """Run one scenario. Without a rig: a WorldRig (virtual time). Returns a Result.
    progress: a hil.progress.Progress for a line on stderr now and then while it runs."""
    spec = SCENARIOS[name]
    res = Result(name, mode or ("bench" if rig is not None and not rig.virtual
                                else "host (virtual time)"))
    own = rig is None
    try:
        if own:
            rig = make_world_rig(spec)
        rig.progress = progress
        spec.func(rig, res, **(params or {}))
    except Skip as e:
        res.skipped = str(e)
    except AssertionError as e:
        res.failures.append(str(e))
    finally:
        if rig is not None:
            res.notes.extend(rig.notes)
            if own:
                broker = rig.broker
                rig.close()
                if broker is not None:
                    broker.close()
    return res
