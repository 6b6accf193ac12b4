"""A simulated WiFi radio with the surface of dinamics/wifi_radio.WifiRadio, for tests, scenarios,
the demo and `python -m hil wifi-bench`.

The test (or scenario, or demo) owns the air: which networks exist, their signal, password and
channel, whether a join is refused, how long a scan or a join takes, and whether DHCP answers.
A blocking call advances the virtual clock by the time it takes (a board's pass would last that
long), so the scheduler, the controller emulator and the benchmark see the stall in virtual time.
A join to a network whose DHCP never answers is CircuitPython's connect() hang
(adafruit/circuitpython#7557): the clock runs to the hardware watchdog's timeout and BoardReset
is raised (a BaseException: the scheduler's supervision does not catch it, as nothing on a board
would), for the rig to "reset the board" (hil.sim_radio.reboot_world).
"""


class BoardReset(BaseException):
    """The hardware watchdog reset the board (a pass hung longer than its timeout)."""


class SimWatchdog:
    """The hardware watchdog (microcontroller.watchdog) on the virtual clock: the firmware's
    WatchdogFeeder feeds it; a blocking call that outlasts `timeout` since the last feed resets
    the board (SimRadio raises BoardReset)."""

    def __init__(self, clock, timeout_s=8):
        self.clock = clock
        self.timeout = timeout_s  # board_port.WATCHDOG_TIMEOUT_S
        self.fed_at = clock.ms
        self.feeds = 0
        self.worst_unfed_ms = 0  # the longest a blocking call left it unfed

    def feed(self):
        self.fed_at = self.clock.ms
        self.feeds += 1

    def expired(self):
        return self.clock.ms - self.fed_at >= self.timeout * 1000


class Net:
    def __init__(self, ssid, rssi=-60, password="", channel=6, refuse=None, dhcp=True,
                 join_ms=1500):
        self.ssid = ssid
        self.rssi = rssi
        self.password = password
        self.channel = channel
        self.refuse = refuse  # a ConnectionError text to fail every join with, or None
        self.dhcp = dhcp  # False: associates, DHCP never answers, connect() never returns
        self.join_ms = join_ms


class SimRadio:
    def __init__(self, clock=None, mac=b"\x02\xd1\x4e\x00\x00\x01", scan_ms=2200,
                 watchdog_ms=8000, ntp_epoch=None, ntp_delay_ms=40):
        self.clock = clock  # a hil.clock.VirtualClock (advanced by blocking calls), or None
        self.mac = mac
        self.scan_ms = scan_ms
        self.watchdog_ms = watchdog_ms
        self.nets = {}
        self.ntp_epoch = ntp_epoch  # callable() -> Unix seconds, an int, or None (no answer)
        self.ntp_delay_ms = ntp_delay_ms
        self.ntp_dns_ms = 30
        self.log = []  # (ms, what): scans, joins, AP changes, for tests and the demo
        self.on_block = None  # callable(what) run as each blocking call starts
        # callable(ms): advance the clock by ms and run the world around the unit (controller,
        # CT feed) but not the unit, which is blocked; hil.world.World sets it
        self.during_block = None
        self.watchdog = None  # a SimWatchdog: a call that outlasts it raises BoardReset
        self.blocks = []  # (what, ms) of every blocking call
        self.powered_on()

    def powered_on(self):
        """State after a reset: nothing joined, no AP."""
        self.connected = False
        self._ip = ""
        self._ssid = ""
        self.ap_active = False
        self.ap = None  # (ssid, password)
        self.hostname = ""
        self._ntp_sent = None
        self.ip_next = 20

    # --- the air, as a test sets it -------------------------------------------------------------
    def add(self, ssid, **kw):
        n = Net(ssid, **kw)
        self.nets[ssid] = n
        return n

    def remove(self, ssid):
        self.nets.pop(ssid, None)
        if self._ssid == ssid:
            self.drop()

    def drop(self):
        """The station loses its network (AP gone, out of range)."""
        self.connected = False
        self._ip = ""
        self._note("link lost")

    def _now(self):
        if self.clock is not None:
            return self.clock.ms
        import time

        return int(time.monotonic() * 1000)

    def _block(self, what, ms):
        self.blocks.append((what, ms))
        if self.on_block is not None:  # a test's hook: something happens as the call starts
            self.on_block(what)
        if self.clock is not None and ms:
            left = ms
            while left > 0:
                d = 10 if left > 10 else left
                if self.during_block is not None:  # the world goes on: controller, CT feed
                    self.during_block(d)  # advances the clock by d
                else:
                    self.clock.advance(d)
                left -= d
                wd = self.watchdog
                if wd is not None and self.clock.ms - wd.fed_at > wd.worst_unfed_ms:
                    wd.worst_unfed_ms = self.clock.ms - wd.fed_at
                if wd is not None and wd.expired():
                    self._note("watchdog reset during %s" % what)
                    raise BoardReset("watchdog: %s blocked %d ms since the last feed" % (
                        what, self.clock.ms - self.watchdog.fed_at))
        elif self.clock is None and ms:  # real time (the demo, `unit --sim-wifi`): really stall
            import time

            time.sleep(ms / 1000)

    def _note(self, what):
        self.log.append((self._now(), what))

    # --- the interface of dinamics.wifi_radio.WifiRadio -----------------------------------------
    def scan(self):
        self._block("scan", self.scan_ms)
        self._note("scan")
        return [(n.ssid, n.rssi, n.channel, not n.password) for n in self.nets.values()]

    def connect(self, ssid, pw, channel=0, timeout_s=5):
        n = self.nets.get(ssid)
        if n is None:
            self._block("connect", 2000 + timeout_s * 0)
            raise ConnectionError("No network with that ssid")
        if n.refuse:
            self._block("connect", n.join_ms)
            raise ConnectionError(n.refuse)
        if n.password and n.password != pw:
            self._block("connect", n.join_ms)
            raise ConnectionError("Authentication failure")
        if not n.dhcp:
            self._note("join %s: associated, DHCP silent: connect() hangs" % ssid)
            # for ever: until the watchdog (if the rig has one) or watchdog_ms
            self._block("connect (DHCP silent)", self.watchdog_ms if self.watchdog is None else 3600000)
            raise BoardReset("watchdog: connect() to %s never returned" % ssid)
        self._block("connect", n.join_ms)
        self.connected = True
        self._ssid = ssid
        self._ip = "192.168.1.%d" % self.ip_next
        self.ip_next += 1
        self._note("joined %s as %s" % (ssid, self._ip))

    def ip(self):
        return self._ip if self.connected else ""

    def ssid(self):
        return self._ssid if self.connected else ""

    def disconnect(self):
        self.connected = False

    def start_ap(self, ssid, pw):
        self.ap_active = True
        self.ap = (ssid, pw)
        self._note("AP %s up (%s)" % (ssid, "WPA2" if pw else "open"))

    def stop_ap(self):
        self.ap_active = False
        self._note("AP down")

    def ap_ip(self):
        return "192.168.4.1" if self.ap_active else ""

    def set_hostname(self, name):
        self.hostname = name

    def ntp_send(self, host):
        if not self.connected:
            raise OSError("no network")
        self._block("ntp dns", self.ntp_dns_ms)
        self._ntp_sent = self._now()

    def ntp_recv(self):
        if self._ntp_sent is None or self.ntp_epoch is None:
            return None
        if self._now() - self._ntp_sent < self.ntp_delay_ms:
            return None
        self._ntp_sent = None
        e = self.ntp_epoch
        return e() if callable(e) else e
