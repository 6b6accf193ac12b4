"""An embedded MQTT broker for the demo (amqtt, pure Python, in a background thread), so a newcomer
can watch and drive the unit's topics with any MQTT client without installing a broker.

    b = EmbeddedBroker(port=1883).start()   # listens on 127.0.0.1:1883 (0 = a free port)
    ...
    b.stop()
"""
import asyncio
import logging
import socket
import threading


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
