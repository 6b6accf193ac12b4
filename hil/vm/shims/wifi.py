"""VM shim: a connected radio (CircuitPython joins the network before code.py runs). The wifi
actor adopts that connection (dinamics/wifi_radio.py reads connected, ipv4_address, ap_info.ssid,
sets hostname); scanning, joining and the AP are not simulated here (hil/sim_radio.py is, on the
host)."""


class AuthMode:
    OPEN = 0
    WEP = 1
    WPA = 2
    WPA2 = 3
    WPA3 = 4
    PSK = 5
    ENTERPRISE = 6


class _ApInfo:
    ssid = "vm-network"
    rssi = -50
    channel = 6


class _Radio:
    mac_address = b"\x24\x6f\x28\xaa\xbb\xcc"
    ipv4_address = "127.0.0.1"
    ipv4_address_ap = None
    connected = True
    enabled = True
    ap_active = False
    ap_info = _ApInfo()
    hostname = "vm"

    def start_scanning_networks(self):
        return iter(())

    def stop_scanning_networks(self):
        pass

    def connect(self, ssid, password="", channel=0, timeout=None):
        raise ConnectionError("No network with that ssid")

    def start_ap(self, ssid, password="", authmode=(), channel=1, max_connections=4):
        self.ap_active = True
        self.ipv4_address_ap = "192.168.4.1"

    def stop_ap(self):
        self.ap_active = False
        self.ipv4_address_ap = None


radio = _Radio()
