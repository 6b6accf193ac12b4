"""net_console: the unit's identity and network state on the serial console, for an installer
with a USB cable: serial number, topic prefix, IP and broker state, printed at start and whenever
one of them changes; while no broker is configured, once a minute.

  net: SN CCBBAA286F24 topics Dinamics/CCBBAA286F24/ ip 192.168.1.20 broker mqtt://h:1883 connected

It only listens to net.status from mqtt_bridge and looks at the shared settings and port.ip() every
10 s: no change to the bridge, and no subscription to setting.changed (a delete_settings burst
would overflow a small inbox). Heap: module ~2 KB, actor + timer + last line ~1 KB (measured on
MicroPython from .mpy).
"""

from dinamics import messages as m
from dinamics import mqtt_topics as mt
from dinamics.mailbox import Actor

TICK_MS = 10000
NO_BROKER_EVERY = 6  # ticks: the "no broker" line once a minute
_T_TICK = "tick"  # timer tag: look at the settings and the IP every TICK_MS


class NetConsole(Actor):
    name = "net_console"
    subscribes = (m.NET_STATUS,)
    inbox_size = 4

    def __init__(self, settings, port):
        super().__init__()
        self.settings = settings
        self.port = port
        self.reset()

    def reset(self):
        self.broker = None  # None = not connected yet, True up, False lost
        self.line = None
        self._cfg = None
        self._ticks = 0

    def start(self):
        self.every(TICK_MS, _T_TICK)
        self._check_config()
        self.report()

    def handle(self, kind, payload):
        self._check_config()
        if kind == m.NET_STATUS:
            self.broker = bool(payload)
        elif kind == m.TIMER:
            self._ticks += 1
        self.report()

    def _check_config(self):
        """A new broker or identity: the bridge reconnects, so the state starts over."""
        g = self.settings.get
        cfg = (g("serial"), g("mqtt_host"), g("mqtt_port"), g("mqtt_tls"))
        if cfg != self._cfg:
            if self._cfg is not None:
                self.broker = None
            self._cfg = cfg

    def text(self):
        g = self.settings.get
        sn = mt.serial_number(self.settings, getattr(self.port, "mac", b"\x00" * 6))
        ip = self.port.ip()
        host = g("mqtt_host")
        if getattr(self.port, "socket_pool", None) is None:
            broker = "none (no network on this unit)"
        elif not host:
            broker = "none configured: set DINAMICS_MQTT_HOST in settings.toml"
        else:
            state = "connecting" if self.broker is None else (
                "connected" if self.broker else "lost, reconnecting")
            broker = "%s://%s:%d %s" % ("mqtts" if g("mqtt_tls") else "mqtt", host,
                                        g("mqtt_port"), state)
        return "net: SN %s topics Dinamics/%s/ ip %s broker %s" % (sn, sn, ip or "none", broker)

    def report(self):
        line = self.text()
        again = (not self.settings.get("mqtt_host") and self._ticks >= NO_BROKER_EVERY)
        if line != self.line or again:
            self.line = line
            self._ticks = 0
            self.log(m.INFO, line[5:])
