"""An embedded MQTT broker for the demo (amqtt, pure Python, in a background thread), so a newcomer
can watch and drive the unit's topics with any MQTT client without installing a broker.

    b = EmbeddedBroker(port=1883).start()   # listens on 127.0.0.1:1883 (0 = a free port)
    ...
    b.stop()
"""
import asyncio
import atexit
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time


def _free_port(host):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class EmbeddedBroker:
    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.port = port or _free_port(host)
        self._loop = None
        self._broker = None
        self._thread = None
        self._ready = threading.Event()
        self._error = None

    @property
    def address(self):
        return (self.host, self.port)

    def start(self, timeout=15.0):
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("embedded broker did not start within %.0f s" % timeout)
        if self._error is not None:
            raise RuntimeError("embedded broker failed: %s" % self._error)
        return self

    def _run(self):
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            from amqtt.broker import Broker

            config = {
                "listeners": {"default": {"type": "tcp", "bind": "%s:%d" % (self.host, self.port)}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }

            async def boot():
                self._broker = Broker(config)
                await self._broker.start()

            loop.run_until_complete(boot())
        except Exception as e:  # noqa: BLE001 - reported to start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def stop(self):
        loop = self._loop
        if loop is None or self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
        try:
            fut.result(10)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._broker = None


# --- a real mosquitto (tests, scenarios) ---------------------------------------------------------
class MosquittoMissing(RuntimeError):
    pass


class Mosquitto:
    """A mosquitto the rig starts, kills (SIGKILL: no goodbye) and restarts on the same port."""

    def __init__(self, port=None, bind="127.0.0.1"):
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(self.exe):
            raise MosquittoMissing("mosquitto is not installed (scripts/setup installs it)")
        self.host = bind
        self.port = port or _free_port(bind)
        self.dir = tempfile.mkdtemp(prefix="hil-mosq-")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        lines = ["listener %d %s" % (self.port, bind), "allow_anonymous true",
                 "persistence false", "log_dest none"]
        if os.geteuid() == 0:
            lines.append("user root")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self._guard = None

    @property
    def address(self):
        return ("127.0.0.1" if self.host in ("0.0.0.0", "") else self.host, self.port)

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # If this process is killed (a test timeout), a watchdog kills the broker within ~1 s.
        # (PR_SET_PDEATHSIG does not survive mosquitto's setuid/setgid.) stop() ends the watchdog
        # first, so it never signals a recycled pid.
        self._guard = subprocess.Popen(
            ["sh", "-c", "while kill -0 %d 2>/dev/null; do sleep 1; done; kill -9 %d 2>/dev/null"
             % (os.getpid(), self.proc.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError("mosquitto exited: %s" % err)
            try:
                socket.create_connection(self.address, timeout=0.2).close()
                return self
            except OSError:
                try:
                    self.proc.wait(0.02)
                except subprocess.TimeoutExpired:
                    pass
        raise RuntimeError("mosquitto did not listen on %d" % self.port)

    def stop(self):
        g = getattr(self, "_guard", None)
        if g is not None:
            if g.poll() is None:
                g.kill()
                g.wait(5)
            self._guard = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
