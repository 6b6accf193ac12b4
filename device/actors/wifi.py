"""wifi: joins a network, or opens the setup AP, and keeps trying; never stalls the controller link.

Over a small radio interface the port gives (`port.radio`: dinamics/wifi_radio.py on a board,
hil/sim_radio.py on the host) and `port.wifi_env` = (CIRCUITPY_WIFI_SSID, CIRCUITPY_WIFI_PASSWORD,
DINAMICS_AP_PASSWORD) from settings.toml (None each where unset). Rules (docs/web.md "WiFi"):
- Known networks among those a scan sees, in credential order (dinamics/wifi_book.py: the stored
  `wifi_ssid`, settings.toml's, the service network last), never by signal.
- Nothing known in sight, or every join failed: the setup AP `Dinamics-<SN>` (WPA2 with the
  unit's own password, kept in the `wifiap` record; open if `wifi_ap_open`), announced by net.up
  (ip, "ap", ssid, password) and on the console; the station is tried again with a back-off.
  The AP stays up while the station is tried, lingers AP_LINGER_MS after a join, and is never
  restarted or dropped while the web actor says a client is mid-request (`client_busy(ms)`, at
  most BUSY_MAX_MS in a row): actors/wifi_ap.py.
- A scan, a join and the NTP request's DNS lookup block a pass on a board: each is announced
  (`net.blocking (self, ms)`) to the balancer, which cuts a charging car to hb_amps first when ms
  is longer than the reaction budget tolerates (a join: dinamics/blind_cap.py) and then asks
  rapi_link for the hold (`link.hold (self, ms)`: it pulses `$SY` behind that `$SC` and, when ms
  does not fit in the heartbeat interval, raises it for the hold); the call is done once
  rapi_link answers (rapi.reply tag "hold", or HOLD_WAIT_MS without an answer). A join is
  bounded by CONNECT_TIMEOUT_S; a DHCP server that never answers hangs CircuitPython's connect()
  for good (adafruit/circuitpython#7557): the hardware watchdog resets the board, and the `try`
  mark written before the join tells the next boot to open the AP first and wait longer.
- net.up (ip, "sta", ssid, "") on every join, net.down (reason) when the station is lost; the
  hostname/mDNS name `dinamics-<sn>`; the clock's epoch from SNTP (actors/wifi_ntp.py). No
  reboot for network trouble, ever.
"""
from adafruit_ticks import ticks_diff

from actors.rapi_evse import HOLD
from actors.wifi_ap import T_LINGER, WifiAp
from actors.wifi_ntp import NTP, T_NTP, WifiNtp
from dinamics import messages as m
from dinamics.wifi_book import WifiBook

try:
    from micropython import const
except ImportError:  # CPython
    def const(expr):
        return expr

SCAN_MS = const(3000)  # what a scan may block (one channel sweep, ~120 ms per channel)
CONNECT_TIMEOUT_S = const(5)  # passed to connect(): bounds its retries
CONNECT_MS = const(6500)  # what one join may block: announced to rapi_link (< the 8 s watchdog)
DNS_MS = const(3000)  # the NTP server's name lookup
FIRST_TRY_MS = const(3000)  # the controller link and the first pilot go before the first scan
BOOT_LINK_WAIT_MS = const(20000)  # after start, a link still down is waited for (the controller's
#                                   POST): the first $SC must not wait behind a blocking call
HOLD_WAIT_MS = const(1500)  # no answer to link.hold this long: go ahead (link busy or down);
#                             blind_cap.GRANT_MS counts on it
WATCH_MS = const(2000)  # look at the station this often (an attribute read, no blocking)

_T_TRY = "try"  # timer tags
_T_HOLD = "hold_wait"
_T_WATCH = "watch"
_T_GO = "go"
_T_ADOPT = "adopt"  # start(): what it found is announced from the first pass, once every actor
_T_BOOT_AP = "boot_ap"  # is registered (App adds the web and the lcd after this actor)
_SCAN = const(1)  # blocking operations, each announced by net.blocking
_CONNECT = const(2)  # (NTP = 3: actors/wifi_ntp.py)
_WIFI_NAMES = ("wifi_ssid", "wifi_pass", "wifi_service_ssid", "wifi_service_pass")


class Wifi(WifiAp, WifiNtp):
    name = "wifi"
    subscribes = (m.SETTING_CHANGED, m.WIFI_SCAN, m.WEB_BUSY)  # + rapi.reply (hold)
    inbox_size = 8

    def __init__(self, settings, port):
        super().__init__()
        self.settings = settings
        self.port = port
        self.radio = port.radio
        self.book = WifiBook(settings, port, self.log)  # networks, back-off, AP password, record
        self.stats = {"scans": 0, "joins": 0, "join_failures": 0, "aps": 0, "downs": 0,
                      "ntp": 0, "deferred": 0, "hangs": 0}
        self.reset()

    def reset(self):
        self.sta_up = False
        self.ssid = ""
        self.ip = ""
        self.ap_on = False
        self.ap_ssid = ""
        self.ap_pass = ""
        self.failures = 0
        self.networks = ()  # (ssid, rssi, is_open) from the last scan, strongest first
        self._op = None  # the blocking operation waiting for link.hold's answer
        self._scan_only = False
        self._scan_req = []  # actors waiting for wifi.networks
        self._cands = []
        self._busy_until = None
        self._busy_since = None
        self._asked = False  # new credentials: the client that gave them wants the join now
        self._ntp_at = None  # when the SNTP request went out
        self._named = False
        self._t_try = self._t_hold = self._t_ntp = self._t_linger = None
        self._rehold = False
        self._block_pass = -1  # the scheduler pass that ran the last blocking call

    def start(self):
        self._t0 = self.now()
        self._name_ap()
        self.every(WATCH_MS, _T_WATCH)
        tried = self.book.hung()
        if tried:  # the board was reset in the middle of a join: the watchdog got it back
            self.stats["hangs"] += 1
            self.failures = self._record()["hung"] + 1  # 2 x timer11 after the first hang, doubling
            self.log(m.WARNING, "the join of %s never returned (no DHCP answer?): the watchdog "
                     "reset the board; setup AP first, %s again in %d s" % (
                         tried, tried, self.book.backoff_ms(self.failures) // 1000))
            self.after(1, _T_BOOT_AP)
            self._try_in(self.book.backoff_ms(self.failures))
            return
        if self.radio.connected and self.book.adoptable(self.radio):
            self.after(1, _T_ADOPT)  # not net.up from here: the actors added after this one
            return  # would never hear it (the web UI would never listen)
        self._try_in(FIRST_TRY_MS)

    # --- messages -------------------------------------------------------------------------------
    def handle(self, kind, payload):
        if kind == m.TIMER:
            self._timer(payload)
        elif kind == m.RAPI_REPLY:  # (tag, ok, fields, text)
            if payload[0] == HOLD and self._op is not None:
                if (payload[1] is None and payload[3] == "link down"
                        and ticks_diff(self.now(), self._t0) < BOOT_LINK_WAIT_MS):
                    self._rehold = True  # the controller is still booting: ask again in 1 s
                    self._arm_hold(1000)
                else:
                    self._go()
        elif kind == m.SETTING_CHANGED:
            self._settings(payload)
        elif kind == m.WIFI_SCAN:
            self.scan_for(payload)
        elif kind == m.WEB_BUSY:  # the web actor: a client is mid-request
            self.client_busy(payload)

    def scan_for(self, requester):
        """wifi.scan: a scan now (announced like any), answered with wifi.networks."""
        if requester not in self._scan_req:
            self._scan_req.append(requester)
        if self._op is None:
            self._scan_only = True
            self._want(_SCAN)

    def _timer(self, tag):
        if tag == _T_TRY:
            self._t_try = None
            self._attempt()
        elif tag == _T_HOLD:
            self._t_hold = None
            if self._rehold and self._op is not None:
                self._rehold = False
                self._want(self._op)
            elif self._op is not None:
                self._go()  # no answer from the link: it is busy or down; go ahead
        elif tag == _T_GO:
            self._go()
        elif tag == _T_ADOPT:
            if self.radio.connected and not self.sta_up:
                self._sta_up(self.radio.ssid() or self.book.env_ssid)
            elif not self.sta_up:
                self._try_in(FIRST_TRY_MS)
        elif tag == _T_BOOT_AP:
            if not self.ap_on:
                self._start_ap()
        elif tag == _T_WATCH:
            self._watch()
        elif tag == T_NTP:
            self._t_ntp = None
            self._ntp_tick()
        elif tag == T_LINGER:
            self._lingered()

    def _settings(self, names):
        creds = ap = ntp = False
        for n in names:
            creds = creds or n in _WIFI_NAMES
            ap = ap or n == "wifi_ap_open" or n == "serial"
            ntp = ntp or n == "ntp_server"
        if ap:  # the AP's name follows the serial
            self._name_ap()
            self._named = False
        if creds:
            want = self.settings.get("wifi_ssid")
            if self.sta_up and not want and self.book.after_forget(self.ssid)[0]:
                self._leave()  # the network it is on was forgotten: as with none stored
            if not self.sta_up or (want and want != self.ssid):
                self.failures = 0
                self._asked = True
                self._try_in(500)
        if ap and self.ap_on and not self._busy():
            self._stop_ap()
            self._start_ap()
        if ntp and self.sta_up:
            self._ntp_in(100)

    # --- station --------------------------------------------------------------------------------
    def _try_in(self, ms):
        if self._t_try is None:
            self._t_try = self.after(ms, _T_TRY)
        else:
            self.rearm(self._t_try, ms)

    def _attempt(self):
        if self._op is not None:
            return  # one at a time; the running one re-arms
        asked = self._asked
        self._asked = False
        if self.ap_on and self._busy() and not asked:
            self.stats["deferred"] += 1
            self._try_in(1000)
            return
        self._scan_only = False
        self._want(_SCAN)

    def _want(self, op):
        """Announce a blocking call to rapi_link; do it when the link answers (or after
        HOLD_WAIT_MS)."""
        self._op = op
        ms = SCAN_MS if op == _SCAN else CONNECT_MS if op == _CONNECT else DNS_MS
        self.post(m.NET_BLOCKING, (self, ms))  # the balancer: a blind cut if needed, then link.hold
        self._arm_hold(HOLD_WAIT_MS)

    def _arm_hold(self, ms):
        if self._t_hold is None:
            self._t_hold = self.after(ms, _T_HOLD)
        else:
            self.rearm(self._t_hold, ms)

    def _go(self):
        if self.sched.passes == self._block_pass:
            # never two blocking calls in one pass (the link answers at once while it is down)
            self.after(1, _T_GO)
            return
        op = self._op
        self._op = None
        self._rehold = False
        self.cancel(self._t_hold)
        self._t_hold = None
        if op == _SCAN:
            self._scan()
        elif op == _CONNECT:
            self._connect()
        elif op == NTP:
            self._ntp_send()
        if self._scan_req and self._op is None:  # a wifi.scan that came during another call
            self._scan_only = True
            self._want(_SCAN)

    def _scan(self):
        self._block_pass = self.sched.passes
        self.stats["scans"] += 1
        try:
            nets = self.radio.scan()
        except Exception as e:  # noqa: BLE001 - a radio error is one more failed round
            self.log(m.WARNING, "scan failed: %s" % e)
            nets = []
        nets.sort(key=lambda n: -n[1])
        self.networks = tuple((n[0], n[1], n[3]) for n in nets)
        for r in self._scan_req:
            if not r.stopped:
                self.sched.send(r, m.WIFI_NETWORKS, self.networks)
        self._scan_req = []
        if self._scan_only:
            self._scan_only = False
            if not self.sta_up and self._t_try is None:
                self._try_in(self.book.backoff_ms(self.failures))
            return
        self._cands = self.book.candidates(nets)
        if not self._cands:
            self._failed("no known network in sight")
            return
        self._want(_CONNECT)

    def _connect(self):
        self._block_pass = self.sched.passes
        ssid, pw, channel = self._cands.pop(0)
        self.book.mark(ssid)  # cleared when connect() returns; found at boot if it never did
        why = ""
        try:
            self.radio.connect(ssid, pw, channel, CONNECT_TIMEOUT_S)
            ok = self.radio.connected
        except Exception as e:  # noqa: BLE001 - ConnectionError/OSError: a failed join
            ok = False
            why = str(e) or type(e).__name__
        self.book.mark("")
        if ok:
            self._sta_up(ssid)
            return
        self.stats["join_failures"] += 1
        self.log(m.WARNING, "joining %s failed: %s" % (ssid, why or "not connected"))
        if self._cands:
            self._want(_CONNECT)
        else:
            self._failed("join failed")

    def _failed(self, why):
        self.failures += 1
        if not self.ap_on and not self.radio.connected:  # still on the old network: no AP
            self._start_ap()
        wait = self.book.backoff_ms(self.failures)
        self.log(m.INFO, "%s; station again in %d s" % (why, wait // 1000))
        self._try_in(wait)

    def _sta_up(self, ssid):
        self.sta_up = True
        self.ssid = ssid
        self.ip = self.radio.ip()
        self.failures = 0
        self.stats["joins"] += 1
        self.book.joined()
        self.cancel(self._t_try)
        self._t_try = None
        if not self._named:
            self._named = True
            try:
                self.radio.set_hostname("dinamics-" + self.sn.lower())
            except Exception as e:  # noqa: BLE001 - no mDNS is not a reason to stay offline
                self.log(m.WARNING, "mDNS: %s" % e)
        self.log(m.INFO, "joined %s, ip %s" % (ssid, self.ip))
        self.post(m.NET_UP, (self.ip, "sta", ssid, ""))
        self._linger()
        self._ntp_in(100)

    def _watch(self):
        if self._op is not None:
            return
        c = self.radio.connected
        if self.sta_up and not c:
            self.stats["downs"] += 1
            self.log(m.WARNING, "lost %s" % self.ssid)
            self._down("lost " + self.ssid)
            self._try_in(self.settings.get("timer11"))  # the radio retries by itself meanwhile
        elif not self.sta_up and c and self.ssid:  # it came back by itself
            self._sta_up(self.radio.ssid() or self.ssid)

    def _down(self, why):
        self.sta_up = False
        self.post(m.NET_DOWN, why)
        if self.ap_on:  # still reachable over the setup AP (lingering): say so again
            self._announce_ap()
        self.cancel(self._t_ntp)
        self._t_ntp = None
        self.failures = 0

    def _leave(self):
        """The station's network is no longer known (forgotten): leave it now, not at the next
        boot. The AP, if on, stays; the caller tries the other sources, else the AP opens."""
        ssid = self.ssid
        try:
            self.radio.disconnect()
        except Exception as e:  # noqa: BLE001 - it is forgotten all the same
            self.log(m.WARNING, "leaving %s: %s" % (ssid, e))
        self.ssid = ""  # not taken back if the radio reports it again
        self.log(m.INFO, "left %s: no longer a known network" % ssid)
        self._down("left " + ssid)

    def _record(self):  # the `wifiap` record (dinamics/wifi_book.py)
        return self.book.record()
