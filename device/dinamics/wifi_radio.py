"""The board's radio behind the small interface the wifi actor uses (Adafruit-driver style: it is
given the `wifi` module, a socket pool and, if the build has it, the `mdns` module; it imports no
board module itself). The host's stand-in with the same surface is hil/sim_radio.py.

  scan()                      -> [(ssid, rssi, channel, is_open)], blocks one channel sweep
  connect(ssid, pw, channel)  blocks one attempt (raises ConnectionError/OSError on failure);
                              channel != 0 makes it a fast scan of that channel only
  connected, ip(), ssid()     the station now (attributes of wifi.radio: no blocking)
  start_ap(ssid, pw), stop_ap(), ap_active, ap_ip()
  set_hostname(name)          DHCP hostname and mDNS <name>.local (_http._tcp on 80)
  ntp_send(host), ntp_recv()  SNTP (dinamics.sntp): send may block for DNS, recv never blocks
The blocking calls are the ones the actor announces to rapi_link (link.hold) first.
"""

MAX_NETWORKS = 16  # scan results kept (strongest first after sorting)


class WifiRadio:
    def __init__(self, wifi, pool=None, mdns=None, web_port=80):
        self.wifi = wifi
        self.r = wifi.radio
        self.pool = pool
        self._mdns_mod = mdns
        self._mdns = None
        self._ntp = None
        self.web_port = web_port
        try:
            self.mac = bytes(self.r.mac_address)
        except (AttributeError, TypeError):
            self.mac = b"\x00" * 6

    def _on(self):
        # CircuitPython turns the radio off when its own settings.toml connect failed
        if getattr(self.r, "enabled", True) is False:
            self.r.enabled = True

    def scan(self):
        self._on()
        r = self.r
        out = []
        open_mode = getattr(getattr(self.wifi, "AuthMode", None), "OPEN", None)
        try:
            for n in r.start_scanning_networks():
                if n.ssid:
                    modes = getattr(n, "authmode", ())
                    out.append((n.ssid, n.rssi, n.channel, open_mode in modes if modes else True))
                    if len(out) >= MAX_NETWORKS:
                        break
        finally:
            r.stop_scanning_networks()
        return out

    def connect(self, ssid, pw, channel=0, timeout_s=5):
        self._on()
        if pw:
            self.r.connect(ssid, pw, channel=channel, timeout=timeout_s)
        else:
            self.r.connect(ssid, channel=channel, timeout=timeout_s)

    @property
    def connected(self):
        return bool(getattr(self.r, "connected", False))

    def ip(self):
        a = getattr(self.r, "ipv4_address", None)
        return str(a) if a is not None else ""

    def ssid(self):
        info = getattr(self.r, "ap_info", None)
        return getattr(info, "ssid", "") or "" if info is not None else ""

    def disconnect(self):
        try:
            self.r.stop_station()
        except (AttributeError, NotImplementedError):
            pass

    def start_ap(self, ssid, pw):
        self._on()
        if pw:
            am = self.wifi.AuthMode
            self.r.start_ap(ssid, pw, authmode=(am.WPA2, am.PSK))
        else:
            self.r.start_ap(ssid)

    def stop_ap(self):
        self.r.stop_ap()

    @property
    def ap_active(self):
        return bool(getattr(self.r, "ap_active", False))

    def ap_ip(self):
        a = getattr(self.r, "ipv4_address_ap", None)
        return str(a) if a is not None else ""

    def set_hostname(self, name):
        try:
            self.r.hostname = name
        except (AttributeError, ValueError):
            pass
        if self._mdns_mod is None:
            return
        if self._mdns is None:
            self._mdns = self._mdns_mod.Server(self.r)
            self._mdns.hostname = name
            self._mdns.advertise_service(service_type="_http", protocol="_tcp", port=self.web_port)
        else:
            self._mdns.hostname = name

    def ntp_send(self, host):
        if self.pool is None:
            raise OSError("no socket pool")
        if self._ntp is None:
            from dinamics.sntp import Sntp

            self._ntp = Sntp(self.pool)
        self._ntp.send(host)

    def ntp_recv(self):
        return self._ntp.recv() if self._ntp is not None else None
