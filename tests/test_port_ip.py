"""The port's ip() (dinamics/app.py, the port contract): the unit's address, station else setup
AP, "" when there is none, never raises. Every reader (MQTT `ip` topic and reports, the web's WiFi
status, the console's net line, the LCD's network page) calls it as it is."""
import sys
import types

from hil.host_port import HostPort
from hil.sim_radio import SimRadio


def _board_port(monkeypatch):
    busio = types.ModuleType("busio")
    mc = types.ModuleType("microcontroller")
    for name, mod in (("busio", busio), ("microcontroller", mc)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "dinamics.board_port", raising=False)
    import dinamics.board_port as board_port

    monkeypatch.delitem(sys.modules, "dinamics.board_port")
    return board_port.BoardPort.__new__(board_port.BoardPort)  # no pins: ip() needs none


class _Radio:
    def __init__(self, sta=None, ap=None):
        self.ipv4_address = sta
        self.ipv4_address_ap = ap


def test_board_port_ip_station_then_ap_else_empty_and_never_raises(monkeypatch):
    p = _board_port(monkeypatch)
    p._wifi = types.SimpleNamespace(radio=_Radio("192.168.1.20", "192.168.4.1"))
    assert p.ip() == "192.168.1.20"
    p._wifi = types.SimpleNamespace(radio=_Radio(None, "192.168.4.1"))
    assert p.ip() == "192.168.4.1"
    p._wifi = types.SimpleNamespace(radio=_Radio())
    assert p.ip() == ""
    p._wifi = None  # a board without the wifi module
    assert p.ip() == ""

    class Off:
        @property
        def ipv4_address(self):
            raise RuntimeError("radio off")

    p._wifi = types.SimpleNamespace(radio=Off())
    assert p.ip() == ""
    p._wifi = types.SimpleNamespace(radio=types.SimpleNamespace(ipv4_address=None))  # no AP attr
    assert p.ip() == ""


def test_host_port_ip_is_the_radio_s_or_this_host_s(tmp_path):
    radio = SimRadio()
    p = HostPort(object(), str(tmp_path), radio=radio)
    assert p.ip() == ""  # not joined, no AP
    radio.start_ap("Dinamics-x", "")
    assert p.ip() == "192.168.4.1"
    p = HostPort(object(), str(tmp_path))
    ip = p.ip()
    assert isinstance(ip, str) and ip.count(".") == 3


def test_readers_show_what_the_port_says():
    """No reader guards the call any more: a port whose ip() is "" reads as no address."""
    from actors.net_console import NetConsole
    from dinamics import lcd_pages
    from dinamics.settings import Settings

    class Port:
        mac = b"\x24\x6f\x28\xaa\xbb\xcc"
        socket_pool = None
        addr = ""

        def ip(self):
            return self.addr

    port = Port()
    nc = NetConsole(Settings(), port)
    assert " ip none " in nc.text()
    port.addr = "10.1.2.3"
    assert " ip 10.1.2.3 " in nc.text()
    assert not hasattr(lcd_pages, "_port_ip")
    from dinamics import mqtt_topics as mt

    assert not hasattr(mt, "port_ip")
