"""BenchRig: a real unit on real serial ports, in real time (`python -m hil scenario --bench`).

The emulator plays the OpenEVSE controller on --evse-port (a USB serial adapter wired to the
unit's EVSE UART), the CT injector writes house + the car's draw to --ct-port (the unit's
usb_cdc.data in HIL mode). `rig.fw` is None: everything is measured from the rig's side.
Settings reach the unit over MQTT (--broker, --serial), through a hook (--host-unit), or are
printed for the operator to set.
"""
import os
import time

from hil.rigs import Rig


class _CutPort:
    """A serial port with a switch: while `cut`, bytes both ways are thrown away (the bench's
    version of the null modem's cut)."""

    def __init__(self, ser):
        self.ser = ser
        self.cut = False

    def read(self, n):
        data = self.ser.read(n)
        return b"" if self.cut else data

    def write(self, data):
        if self.cut:
            return len(data)
        return self.ser.write(data)

    @property
    def in_waiting(self):
        return self.ser.in_waiting

    def close(self):
        self.ser.close()


class BenchRig(Rig):
    """A real unit on real serial ports, real time; measured from the rig's side only."""

    virtual = False
    mode = "bench"

    def __init__(self, evse_port, ct_port, house=None, ct_period_ms=300, baud=115200,
                 mqtt=None, serial_number=None, broker=None, out=None, configure=None,
                 **emulator_kwargs):
        import serial

        from hil.ct_feed_writer import CtFeedWriter
        from hil.evse_emulator import OpenEvseEmulator
        from hil.house import CtInjector, HouseLoad

        self.out = out
        self.t0 = time.monotonic()
        self._ser = [serial.Serial(evse_port, baud, timeout=0, write_timeout=0.5)
                     if isinstance(evse_port, str) else evse_port]
        self._ct = (serial.Serial(ct_port, baud, timeout=0, write_timeout=0.5)
                    if isinstance(ct_port, str) else ct_port)
        self.port = _CutPort(self._ser[0])
        emu = OpenEvseEmulator(self.port, self.now_ms, **emulator_kwargs)
        house = house or HouseLoad((0, 0, 0))
        inj = CtInjector(CtFeedWriter(self._ct), house, lambda t: emu.ev_phase_currents(),
                         period_ms=ct_period_ms)
        super().__init__(emu, house, inj)
        self.broker = broker
        self.mqtt_addr = mqtt
        self.serial_number = serial_number
        self._watch = None
        self._configure_hook = configure  # callable(dict) that sets the unit's settings directly
        self.ct_errors = 0

    def now_ms(self):
        return int((time.monotonic() - self.t0) * 1000)

    def _advance(self, ms):
        end = self.now_ms() + ms
        while True:
            now = self.now_ms()
            self.emu.poll()
            try:
                self.injector.poll(now)
            except Exception as e:  # a full/closed CT port must not stop the scenario
                self.ct_errors += 1
                if self.ct_errors == 1:
                    self.notes.append("CT feed write failed (is the unit reading usb_cdc.data?): "
                                      "%s" % e)
            if now >= end:
                break
            time.sleep(0.001)

    def link_up(self):
        # The unit configured the heartbeat and talks to the controller.
        lr = self.tape.last_rx
        return self.emu.heartbeat[0] > 0 and lr is not None and self.now_ms() - lr < 3000

    def ct_fresh(self):
        return self.injector.sent > 3

    def _configure(self, values):
        if self._configure_hook is not None:
            self._configure_hook(values)
            self.run_for(500)
            return
        if self.mqtt_addr and self.serial_number:
            from dinamics import settings as st

            c = self._client()
            for name, value in values.items():
                topic = st.row(name)[st.TOPIC]
                if topic:
                    c.publish("Dinamics/%s/%s" % (self.serial_number, topic), str(value))
            self.run_for(1500)
            return
        text = "bench: make sure the unit has %s" % ", ".join(
            "%s=%s" % kv for kv in sorted(values.items()))
        self.notes.append(text)
        if self.out is not None:
            print(text, file=self.out, flush=True)

    def _client(self):
        if self._watch is None:
            self._watch = _MqttWatch(self.mqtt_addr, "Dinamics/%s/#" % self.serial_number)
        return self._watch

    def net_up(self):
        """The unit is online on the broker (its retained availability), when we watch MQTT."""
        if not (self.mqtt_addr and self.serial_number):
            return None
        try:
            w = self._client()
        except Exception:
            return False
        return w.last("Dinamics/%s/availability" % self.serial_number) == "online"

    def reset_watch(self):
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def cut_link(self, cut):
        self.tape.mark(self.now_ms(), "cable " + ("cut" if cut else "joined"))
        self.port.cut = bool(cut)

    def close(self):
        self.reset_watch()
        for s in (self._ser[0], self._ct):
            try:
                s.close()
            except Exception:
                pass


class _MqttWatch:
    """A paho client watching the unit's topics (bench mode) and publishing settings."""

    def __init__(self, addr, topic):
        import threading

        import paho.mqtt.client as paho

        self.msgs = {}
        self.lock = threading.Lock()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2,  # pyright: ignore[reportPrivateImportUsage]
                             client_id="hil-rig-%d" % os.getpid())
        ready = threading.Event()

        def on_connect(c, u, f, rc, p=None):
            c.subscribe(topic, 0)
            ready.set()

        def on_message(c, u, msg):
            with self.lock:
                self.msgs[msg.topic] = msg.payload.decode("utf-8", "replace")

        self.c.on_connect = on_connect
        self.c.on_message = on_message
        self.c.connect(addr[0], addr[1], keepalive=30)
        self.c.loop_start()
        if not ready.wait(5):
            raise RuntimeError("cannot reach the broker at %s:%d" % addr)

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def last(self, topic):
        with self.lock:
            return self.msgs.get(topic)

    def close(self):
        self.c.loop_stop()
        try:
            self.c.disconnect()
        except Exception:
            pass
