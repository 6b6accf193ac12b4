"""Runs INSIDE a MicroPython VM: the firmware's heap, piece by piece (python -m hil heap).

Mounts the drive like runner.py (unix port), then builds what code.py builds, in App's order,
measuring gc.mem_alloc() after gc.collect() around each step: the cost of each piece is its
import plus its construction (plus sched.add, which runs its start()). Then N idle scheduler
passes on a frozen clock (no timer is due, nothing arrives: the UART and CT feed are /dev/null,
no broker is set) give the allocations per idle pass. Prints one line "HEAP {json}"."""
import gc
import os
import sys

if getattr(os, "getenv", None) and os.getenv("DINAMICS_VM_DRIVE"):  # unix port (not wasm)
    os.umount("/")
    os.mount(os.VfsPosix(os.getenv("DINAMICS_VM_DRIVE")), "/")
    os.mount(os.VfsPosix("/dev"), "/dev")
    sys.path[:] = ["/.vm", "/", "/lib", ".frozen"]

gc.collect()
costs = []
_last = [gc.mem_alloc()]
out = {"start": _last[0], "maxsize_bits": 32 if sys.maxsize < 2 ** 32 else 64}


def mark(name):
    gc.collect()
    a = gc.mem_alloc()
    costs.append([name, a - _last[0]])
    _last[0] = a


from dinamics.board_port import BoardPort  # noqa: E402

port = BoardPort()
mark("board_port (BoardPort, clock, console, fs, uart)")
from dinamics import messages as m  # noqa: E402
from dinamics.mailbox import Scheduler  # noqa: E402
from dinamics.settings import Settings  # noqa: E402
from dinamics.store import SlotStore  # noqa: E402


class _App:
    pass


app = _App()
app.port = port
app.sched = sched = Scheduler(port.clock, console=port.console, on_fatal=port.fatal)
app.store = SlotStore(port.fs)
app.settings = Settings(app.store.load())
app.ct = app.mqtt = None
mark("core (messages, mailbox, settings, store)")
if port.ct_stream is not None or port.ct_adc is not None:
    from actors.ct_meter import CtMeter

    app.ct = sched.add(CtMeter(app.settings, port))
    mark("ct_meter")
from actors.uart_link import UartLink  # noqa: E402

app.uart = sched.add(UartLink(port.evse_uart))
mark("uart_link")
from actors.rapi_link import RapiLink  # noqa: E402

app.rapi = sched.add(RapiLink(app.settings))
mark("rapi_link")
from actors.balancer import Balancer  # noqa: E402

app.balancer = sched.add(Balancer(app.settings))
mark("balancer")
from actors.settings_actor import SettingsActor  # noqa: E402

app.settings_actor = sched.add(SettingsActor(app.settings, app.store))
mark("settings")
if port.socket_pool is not None:
    from actors.mqtt_bridge import MqttBridge

    app.mqtt = sched.add(MqttBridge(app.settings, port, app))
    mark("mqtt_bridge")
port.start_watchdog(sched)
mark("watchdog")
out["costs"] = costs
gc.collect()
out["built"] = gc.mem_alloc()
for _ in range(50):  # settle: the first passes fire the timers armed at start
    sched.run_once()


class _Frozen:
    def __init__(self, t):
        self.t = t

    def now(self):
        return self.t

    def idle(self, ms):
        pass

    def epoch(self):
        return 0


import os as _shim_os  # noqa: E402  (the shim's getenv works on wasm too)

n = int(_shim_os.getenv("DINAMICS_HEAP_PASSES") or 1000)
if n:  # 0: boot and construction only (the heap bisect)
    class _Quiet:
        """A stream with nothing to read and no allocation (the shims' pty polling would allocate)."""
        in_waiting = 0
        timeout = 0

        def read(self, n=None):
            return None

        def write(self, data):
            return len(data)


    sched.clock = _Frozen(port.clock.now())
    if getattr(app.uart, "uart", None) is not None:
        app.uart.uart = _Quiet()
    if app.ct is not None and getattr(app.ct, "stream", None) is not None:
        app.ct.stream = _Quiet()
    for _ in range(20):
        sched.run_once()
    delivered = sched.delivered
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for _ in range(n):
        sched.run_once()
    a1 = gc.mem_alloc()
    gc.enable()
    out["idle_passes"] = n
    out["idle_alloc_bytes"] = a1 - a0
    out["idle_delivered"] = sched.delivered - delivered
    parts = []
    import time  # noqa: E402
    def _mono():
        time.monotonic_ns()


    def _deliver():
        sched._deliver()


    def _fire():
        sched._fire_timers(sched.clock.now())


    def _noop():
        pass


    for name, fn in [("(loop overhead)", _noop), ("time.monotonic_ns", _mono), ("deliver", _deliver),
                     ("fire_timers", _fire)] + [
            ("poll " + a.name, (lambda a=a: a.poll(sched.poll_budget_ms))) for a in sched._pollers]:
        gc.collect()
        gc.disable()
        b0 = gc.mem_alloc()
        for _ in range(n):
            fn()
        parts.append([name, (gc.mem_alloc() - b0) / n])
        gc.enable()
    out["idle_parts_per_pass"] = parts
    gc.collect()
    out["after_idle"] = gc.mem_alloc()
import json  # noqa: E402

print("HEAP " + json.dumps(out))
