"""Runs INSIDE a MicroPython VM: the firmware's heap, piece by piece (python -m hil heap).

On the unix port it mounts the drive like runner.py. It builds what code.py builds, in App's
order (App's wiring is repeated here step by step so that each piece can be measured): the cost
of a piece is gc.mem_alloc() after gc.collect() before and after its import plus its
construction (plus sched.add, which runs its start()). Each piece is one step of a generator and
the collect runs at the start of the NEXT step: the wasm driver (wasm_probe.mjs) runs each step
in its own runPython() call, because a collect inside the call that made the garbage keeps some
of it (stale pointers on the wasm shadow stack). Then N idle scheduler passes on a frozen clock
(no timer due, nothing arrives: quiet stand-in streams, no broker set) with the GC disabled give
the allocations per idle pass, and the same per part of a pass. Prints "HEAP {json}"."""
import gc
import os
import sys

if getattr(os, "getenv", None) and os.getenv("DINAMICS_VM_DRIVE"):  # unix port (not wasm)
    os.umount("/")
    os.mount(os.VfsPosix(os.getenv("DINAMICS_VM_DRIVE")), "/")
    os.mount(os.VfsPosix("/dev"), "/dev")
    sys.path[:] = ["/.vm", "/", "/lib", ".frozen"]

import os as _shim_os  # noqa: E402  (builtins are not cached: this is the shim, on wasm too)

PASSES = _shim_os.getenv("DINAMICS_HEAP_PASSES")
PASSES = 1000 if PASSES is None else int(PASSES)
# The host shims stand for CircuitPython's built-in modules, which live in flash and cost no heap
# when imported: the first step imports them, before the baseline, so no piece is charged for them
# (their size is reported as "shims"). What the firmware builds with them (UART, socket pool, …)
# still counts. The baseline ("start") is taken like every piece's figure, at the start of a step
# (on wasm a call of its own): a collect in the call that made garbage keeps some of it (~12 KB of
# the shims' compilation when this was measured in the probe's first call), and that garbage, freed
# later, made "built - start" smaller than the sum of the pieces. Now built - start == the sum.
_SHIMS = ("microcontroller", "board", "busio", "supervisor", "storage", "usb_cdc", "usb_hid",
          "socketpool", "ssl", "wifi", "watchdog", "digitalio", "analogbufio", "re")
_BASELINE = "(host shims: the baseline)"
out = {"maxsize_bits": 32 if sys.maxsize < 2 ** 32 else 64}
costs = []
out["costs"] = costs


class _Frozen:
    def __init__(self, t):
        self.t = t

    def now(self):
        return self.t

    def idle(self, ms):
        pass

    def epoch(self):
        return 0


class _Quiet:
    """A stream with nothing to read and no allocation (the shims' pty polling would allocate)."""
    in_waiting = 0
    timeout = 0

    def read(self, n=None):
        return None

    def write(self, data):
        return len(data)


class _QuietRadio:
    rssi = 0

    def send(self, frame):
        return True

    def busy(self):
        return False

    def receive(self):
        return None

    def carrier(self):
        return False


class _RegSpi:
    """Answers adafruit_rfm9x like an SX127x register file (version 0x12, what is written)."""

    def __init__(self):
        self.r = bytearray(128)
        self.r[0x42] = 0x12
        self.a = None

    def try_lock(self):
        return True

    def unlock(self):
        pass

    def configure(self, baudrate=0, polarity=0, phase=0, bits=8):
        pass

    def write(self, buf, start=0, end=None):
        for i in range(start, len(buf) if end is None else end):
            if self.a is None:
                self.a = buf[i]
            elif self.a & 0x80:
                self.r[self.a & 0x7F] = buf[i]

    def readinto(self, buf, start=0, end=None, write_value=0):
        for i in range(start, len(buf) if end is None else end):
            buf[i] = self.r[self.a & 0x7F]


class _Cs:
    def __init__(self, spi):
        self.spi = spi
        self._v = True

    def switch_to_output(self, value=False, drive_mode=None):
        self._v = value

    @property
    def value(self):
        return self._v

    @value.setter
    def value(self, v):
        self._v = v
        if self.spi is not None:
            self.spi.a = None


def _steps():
    for n in _SHIMS:
        try:
            __import__(n)
        except ImportError:
            pass
    yield _BASELINE
    from dinamics.board_port import BoardPort

    port = BoardPort()
    import dinamics  # code.py drops the boot-time board_profiles once the port is built

    sys.modules.pop("dinamics.board_profiles", None)
    if hasattr(dinamics, "board_profiles"):
        delattr(dinamics, "board_profiles")
    yield "board_port (BoardPort, clock, console, fs, uart)"
    from dinamics.mailbox import Scheduler
    from dinamics.settings import Settings
    from dinamics.store import SlotStore

    class _App:
        pass

    app = _App()
    app.port = port
    app.sched = sched = Scheduler(port.clock, console=port.console, on_fatal=port.fatal)
    app.store = SlotStore(port.fs)
    app.settings = Settings(app.store.load())
    app.ct = app.mqtt = None
    yield "core (messages, mailbox, settings, store)"
    if port.ct_stream is not None or port.ct_adc is not None:
        from actors.ct_meter import CtMeter

        app.ct = sched.add(CtMeter(app.settings, port))
        yield "ct_meter"
    from actors.uart_link import UartLink

    app.uart = sched.add(UartLink(port.evse_uart))
    yield "uart_link"
    from actors.rapi_link import RapiLink

    app.rapi = sched.add(RapiLink(app.settings))
    yield "rapi_link"
    from actors.balancer import Balancer

    app.balancer = sched.add(Balancer(app.settings))
    yield "balancer"
    from actors.settings_actor import SettingsActor

    app.settings_actor = sched.add(SettingsActor(app.settings, app.store))
    yield "settings"
    if port.socket_pool is not None:
        from actors.mqtt_bridge import MqttBridge

        app.mqtt = sched.add(MqttBridge(app.settings, port))
        yield "mqtt_bridge"
        from actors.web import Web

        web = sched.add(Web(app.settings, port))
        yield "web"
        # what net.up adds on a board: the library, the guard and the routes (not listening here)
        from actors.web import trim_library
        from adafruit_httpserver import Server

        trim_library()
        yield "adafruit_httpserver (imported on net.up, trimmed)"
        from dinamics import web_routes
        from dinamics.web_guard import GuardPool

        web.guard = GuardPool(port.socket_pool, web.now)
        web.server = Server(web.guard, None)
        web_routes.add(web, web.server)
        web.guard = None  # no listening socket: the idle passes below poll nothing
        yield "web server (Server, guard, routes)"
    if getattr(port, "i2c_bus", None) is not None:
        from actors.lcd import Lcd

        sched.add(Lcd(app.settings, port))  # with DINAMICS_VM_LCD set: + its driver
        yield "lcd"
    if getattr(port, "radio", None) is not None:
        from actors.wifi import Wifi

        app.wifi = sched.add(Wifi(app.settings, port))
        yield "wifi"
        from dinamics.sntp import Sntp  # loaded at the first NTP sync

        app.sntp = Sntp(port.socket_pool)
        yield "sntp (NTP client, from the first sync)"
    from actors.net_console import NetConsole

    sched.add(NetConsole(app.settings, port))
    yield "net_console"
    port.start_watchdog(sched)
    yield "watchdog"
    # LoRa-linked installs (docs/lora.md): built only when `lora` is on (or on a bridge), so they
    # come after "built": the extra a LoRa unit pays. A quiet stand-in radio for the actor; the
    # RFM9x glue with adafruit_rfm9x on a register-file SPI stand-in (what the library reads).
    from actors.lora_link import LoraLink

    app.lora = sched.add(LoraLink(app.settings, _QuietRadio(), SlotStore(port.fs, "lora")))
    yield "lora_link (actor, frames, HMAC, ledger)"
    from dinamics.lora_radio import Rfm9xRadio

    spi = _RegSpi()
    app.rfm = Rfm9xRadio(spi, _Cs(spi), _Cs(None))
    yield "lora_radio (adafruit_rfm9x + bus_device + glue)"
    from dinamics import lora_failsafe  # a bridge's extra: the failsafe's code and state

    lora_failsafe.init(app.lora)
    yield "lora_failsafe (bridge role only)"
    if not PASSES:
        return
    for _ in range(50):  # settle: the first passes fire the timers armed at start
        sched.run_once()
    yield None  # (not a piece: the settle passes)
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
    for _ in range(PASSES):
        sched.run_once()
    a1 = gc.mem_alloc()
    gc.enable()
    out["idle_passes"] = PASSES
    out["idle_alloc_bytes"] = a1 - a0
    out["idle_delivered"] = sched.delivered - delivered
    import time

    def _mono():
        time.monotonic_ns()

    def _deliver():
        sched._deliver()

    def _fire():
        sched._fire_timers(sched.clock.now())

    def _noop():
        pass

    parts = []
    for name, fn in [("(loop overhead)", _noop), ("time.monotonic_ns", _mono),
                     ("deliver", _deliver), ("fire_timers", _fire)] + [
            ("poll " + a.name, (lambda a=a: a.poll(sched.poll_budget_ms))) for a in sched._pollers]:
        gc.collect()
        gc.disable()
        b0 = gc.mem_alloc()
        for _ in range(PASSES):
            fn()
        parts.append([name, (gc.mem_alloc() - b0) / PASSES])
        gc.enable()
    out["idle_parts_per_pass"] = parts
    yield None


_gen = _steps()
_state = {"pending": None, "last": None, "built": None}


def step():
    """Measure the previous step (after a collect), run the next one. False when done."""
    gc.collect()
    a = gc.mem_alloc()
    if _state["pending"] == _BASELINE:
        out["start"] = a
        out["shims"] = a - _state["last"]
    elif _state["pending"] is not None:
        costs.append([_state["pending"], a - _state["last"]])
    if _state["pending"] == "watchdog":
        out["built"] = a
    _state["last"] = a
    try:
        _state["pending"] = next(_gen)
    except StopIteration:
        return False
    return True


def finish():
    gc.collect()
    out["end"] = gc.mem_alloc()
    import json

    print("HEAP " + json.dumps(out))


try:
    import _vmstepwise  # noqa: F401  (written by the wasm driver: it steps call by call)
except ImportError:
    while step():
        pass
    finish()
