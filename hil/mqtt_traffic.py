"""`python -m hil mqtt-traffic`: MQTT bytes per hour published by one unit, idle and while
charging, counted on the broker side.

The whole unit runs on the virtual clock (firmware + emulated OpenEVSE on a pty pair), so an hour
takes well under a minute; its MQTT connection is real. A subscriber on the broker (paho, topics
Dinamics/<SN>/# and homeassistant/#) counts every PUBLISH the unit sends: topic + payload bytes,
and the wire size of the PUBLISH packet (fixed header + length + topic length + topic + payload).
A meter stand-in posts CT readings once a second, as the CT actor will: a house base load per
phase that steps to a new level every few minutes (appliances switching), +-0.05 A of measurement
noise, plus the car on CT1 while charging. The currentN topics (published when changed by >= 0.15 A)
dominate the figures, so they depend on this model: a busier house sends more.
Prints `name: value` lines."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def add_parser(sub):
    p = sub.add_parser("mqtt-traffic", help="measure MQTT bytes/hour of one unit, idle and charging")
    p.add_argument("--minutes", type=float, default=60.0,
                   help="simulated minutes per phase (default 60; results are scaled to 1 h)")
    p.add_argument("--broker", default=None, metavar="HOST:PORT",
                   help="broker to use (default: a private mosquitto, else an embedded amqtt)")
    p.add_argument("--step-ms", type=int, default=50, help="virtual ms per world step (default 50)")
    return p


class _Counter:
    def __init__(self, address, prefix):
        import paho.mqtt.client as paho

        from dinamics import mqtt_topics as mt
        from dinamics import settings as st

        ours = set(r[st.TOPIC] for r in st.TABLE if r[st.TOPIC]) | set(c[1] for c in mt.COMMANDS)
        self._commands = set(prefix + t for t in ours)
        self.lock = threading.Lock()
        self.messages = self.payload = self.wire = 0
        self.by_topic = {}
        self.marker = threading.Event()
        self._marker_topic = prefix + "timers"
        done = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="traffic-counter")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(
            [(prefix + "#", 0), ("homeassistant/#", 0)])
        self.client.on_subscribe = lambda *a: done.set()
        self.client.on_message = self._on_message
        self.client.connect(address[0], address[1], keepalive=60)
        self.client.loop_start()
        if not done.wait(10):
            raise RuntimeError("counter could not subscribe")

    def _on_message(self, client, userdata, msg):
        if msg.topic in self._commands:
            return  # our own request, not the unit's traffic
        n = len(msg.topic.encode()) + len(msg.payload)
        rem = 2 + n
        wire = 1 + (1 if rem < 128 else 2 if rem < 16384 else 3) + rem
        with self.lock:
            self.messages += 1
            self.payload += n
            self.wire += wire
            k = msg.topic.split("/")[-1] if msg.topic.startswith("Dinamics/") else "homeassistant"
            self.by_topic[k] = self.by_topic.get(k, 0) + wire
        if msg.topic == self._marker_topic:
            self.marker.set()

    def snapshot(self):
        with self.lock:
            return self.messages, self.payload, self.wire, dict(self.by_topic)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _private_broker():
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if exe is None:
        from hil.broker import EmbeddedBroker

        b = EmbeddedBroker().start()
        return b.address, b.stop
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = tempfile.mkdtemp(prefix="mosq-traffic-")
    conf = os.path.join(d, "m.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n" % port)
        if os.geteuid() == 0:
            f.write("user root\n")
    proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            try:
                proc.wait(0.02)
            except subprocess.TimeoutExpired:
                pass

    def stop():
        proc.kill()
        proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)

    return ("127.0.0.1", port), stop


def measure(address, minutes=60.0, step_ms=50, out=sys.stdout):
    """Run the two phases; returns a dict of results (also printed as `name: value`)."""
    import random

    from dinamics import messages as m
    from hil.ev_model import EvModel
    from hil.world import World

    serial = "TRAFFIC01"
    prefix = "Dinamics/%s/" % serial
    counter = _Counter(address, prefix)
    w = World(broker=address, serial=serial, build="full")
    rng = random.Random(7)
    span = int(minutes * 60000)
    results = {}
    state = {"next_ct": 0, "next_step": 0, "base": [3.0, 2.0, 1.5]}

    def meter(world):
        # One CT reading per second, as the CT actor will post them.
        now = world.ms()
        if now < state["next_ct"]:
            return
        state["next_ct"] = now + 1000
        if now >= state["next_step"]:  # an appliance switches somewhere: every 2-8 minutes
            state["next_step"] = now + rng.randint(120, 480) * 1000
            state["base"][rng.randrange(3)] = round(rng.uniform(0.5, 12.0), 1)
        car = world.emu.measured_ma() / 1000 if world.emu.relay_closed else 0.0
        amps = tuple(b + rng.uniform(-0.05, 0.05) for b in state["base"])
        world.sched.post(m.CT_READING, (world.sched.clock.now(), (amps[0] + car, amps[1], amps[2]),
                                        0b111, (0, 0, 0)))

    def settle():
        # Everything published so far has reached the counter when the reply to a request made
        # now arrives (one connection, in order).
        counter.marker.clear()
        pub = counter.client.publish(prefix + "get_timers", "1", qos=1)
        pub.wait_for_publish(10)
        deadline = time.monotonic() + 10
        while not counter.marker.is_set() and time.monotonic() < deadline:
            w.step(step_ms)
            counter.marker.wait(0.001)

    def phase(name):
        settle()
        m0, p0, b0, t0 = counter.snapshot()
        passes0 = w.sched.passes
        wall = time.monotonic()
        w.run_for(span, step=step_ms, each=meter)
        settle()
        m1, p1, b1, t1 = counter.snapshot()
        scale = 60.0 / minutes
        # the settle request's own reply is not traffic of the phase
        timers_reply = t1.get("timers", 0) - t0.get("timers", 0)
        results[name + "_messages_per_hour"] = round((m1 - m0 - 1) * scale)
        results[name + "_payload_bytes_per_hour"] = round((p1 - p0) * scale)
        results[name + "_wire_bytes_per_hour"] = round((b1 - b0 - timers_reply) * scale)
        top = sorted(((t1.get(k, 0) - t0.get(k, 0), k) for k in t1 if k != "timers"), reverse=True)
        results[name + "_top_topics"] = ", ".join("%s %d" % (k, round(v * scale)) for v, k in top[:6] if v)
        results[name + "_wall_s"] = round(time.monotonic() - wall, 1)
        results[name + "_scheduler_passes"] = w.sched.passes - passes0

    try:
        ok = w.run_until(lambda: w.mqtt.connected, 30000)
        if not ok:
            raise RuntimeError("the unit did not connect to %s:%d" % address)
        w.run_for(5000, step=step_ms, each=meter)
        settle()
        results["connect_burst_wire_bytes"] = counter.snapshot()[2]
        phase("idle")
        w.emu.plug(EvModel(max_amps=16, phases=1))
        w.run_until(lambda: w.emu.state == 3, 60000, step=step_ms)
        phase("charging")
        results["worst_scheduler_pass_ms"] = round(w.sched.worst_pass_us / 1000, 2)
        results["bridge_published"] = w.mqtt.stats["published"]
        results["bridge_downs"] = w.mqtt.stats["downs"]
    finally:
        w.close()
        counter.close()
    for k, v in results.items():
        print("%s: %s" % (k, v), file=out)
    return results


def run(args):
    from hil.unit_cli import parse_broker

    if args.broker:
        address, stop = parse_broker(args.broker), None
    else:
        address, stop = _private_broker()
    print("broker: %s:%d" % address)
    print("simulated_minutes_per_phase: %g" % args.minutes)
    try:
        measure(address, args.minutes, args.step_ms)
    finally:
        if stop is not None:
            stop()
    return 0
