"""A faithful OpenEVSE 8.2.x controller (RAPI 5.2.1) on a serial port, with a car behind the pilot.

Host-only (CPython). The emulator mirrors the AVR firmware (open_evse `rapi_proc.cpp`,
`J1772EvseController.cpp`) as described in /work/shared/reference/rapi.md:

* line assembly exactly as `EvseRapiProcessor::doCmd()`: `$` starts a line (and drops a partial
  one), CR ends it, every other byte (LF included) is just a byte of the line, more than 31 bytes
  before the CR -> the line is dropped with no reply at all;
* `tokenize()`: optional `^XX` XOR or `*XX` additive checksum over every byte before the marker,
  hex in either case, only the 2 characters after the marker are parsed (a bad hex digit parses
  as 0); a bad checksum or a 10th space -> a bare `$NK^21` (no id, nothing run);
* `processCmd()`: ` :SS` id taken from the last token and echoed (uppercase) when non-zero,
  replies `$OK`/`$NK` + fields + id + `^XX` + CR (+ LF when echo is on), then an `$AT` if the
  command changed the state, the pilot state, the capacity or the vflags masked by 0x211A;
* `J1772EVSEController::Update()`: pilot reading with 25 ms (to A) / 250 ms debounce, relay,
  sleep waiting for the car (<= 1 A, back to B, or 3 s), heartbeat supervision, faults;
* boot, as measured on a real 8.2.3 (rapi.md §8; figures and sources in hil/evse_timing.py):
  400 ms of bootloader (received bytes are lost), then the LCD splash: 2200 ms after the reset
  (3150 ms on the first boot with `blank_eeprom=True`; measured ~2.2 s and 2.9-3.4 s) comes
  `$AT 00 00 0 0200` (forced) and the V6 build's `relayCloseMs: 100` / `relayHoldPwm: 255` lines,
  then 1650 ms of POST (measured 1.2-2.1 s), `$AB 00 <version>`, the first real `$AT`. Commands
  sent after the bootloader wait in the 64-byte RX buffer and are answered one loop pass after
  `$AB` (measured 1.1-4.3 s late). Boot times are FIXED defaults (class constants).
* the AVR main loop (`latency=True`, default): RAPI is served once per loop pass, so every line
  is answered after a seeded pseudo-random loop delay (`random.Random`, `seed=823` by default;
  14-315 ms, median ~26 ms, p95 ~80 ms; measured median 23-30, p95 36-104, max 315 ms); all the
  lines in the RX buffer at that pass are answered together, `$OK` first, then the `$AT` the
  command causes. Bytes that wait (a pending pass, a stall, POST) share the 64-byte RX buffer;
  what overflows is dropped (`rx_overflow`), so a line can be lost or cut (a cut line that later
  gets a CR is parsed as it stands: a bad checksum gives `$NK^21`). `latency=False`: instant
  replies, no RX limit while running (tests that are about something else).
* RAPI stalls (`stalls=True`, default; lengths drawn from the same seed, in the measured ranges):
  at every entry into C the GFI self-test keeps the MCU busy 1130-1310 ms before the relay
  closes; the relay, its debug lines and the `$AT 03 ...` come at the end. At A->B and B->A
  (also C->A) the `$AT` goes out, then 270-320 ms without RAPI (the LCD redraw). `stall_log`.
* same seed + same bytes at the same virtual times = the same output at the same times.

Time: `now_ms()` is a monotonic, non-wrapping int in ms (a virtual clock in tests). The physics is
event driven: `poll()` walks through every debounce deadline, car reaction, timeout, ... between
the previous poll and now, so a virtual clock may jump by hours in one step.

Constructor extras (keyword, all optional; the defaults are the measured 8.2.3):
`saved_amps=None` (the `$SC` value in "EEPROM" for L2; None = never written: the factory 24 A,
measured: `$SC 32 V` -> `$NK 24`), `hw_max=32` (not measured; None = never written: 80, `$SC n M`
may set it once), `auto_svc_level=False` (False = PlatformIO/EU/V6 style build: `$GE` flags 0021
and `$SL A` -> NK; True = auto L1/L2 detection: flags 0001, and a car plugged in at power-up
makes the unit start on L1 (12 A, 120 V, vflag 0001, measured `$AT 02 03 12 0701`, `$SC 16 V`
-> `$NK 12`) until the relay closes for its first charge, whose `$AT` already shows L2
(measured `$AT 03 03 24 0540`)), `rtc=None` (None = no RTC chip; True or a datetime = chip
present, `$S1` sets it), `debug_text=True` (the V6 lines at every boot and relay close),
`latency=True`, `stalls=True`, `seed=823`, `blank_eeprom=False`, `voltage_mv=230000`,
`dialect="openevse"` (or "emulator" = jeremypoulter/OpenEVSE_Emulator, "old" = RAPI 2.x without
ids: hil/evse_dialects.py; a dialect brings its own defaults for version, latency, stalls, ...).

Assumptions where §8 says what but not exactly when (kept simple, change them here if a capture
says otherwise): the V6 relay lines print right after `$AT 00` at boot; the B->C stall precedes
the relay close and its `$AT`, the A<->B stall follows its `$AT`; C->A stalls like B->A; the
RX buffer holds 64 bytes (Arduino's 64-byte ring holds 63); a loop delay is drawn once per
batch of bytes that finds the loop idle, not per byte.

Deviations from code reading, kept on purpose:
* after `$FE` the pilot debounce always restarts, so the state stays `00` for 25 ms (no car) or
  250 ms (car) before the `$AT` (the AVR may resolve at once if its debounce memory matches);
* measured current is the car's current scaled by `$SA` (scale/220, minus offset), without the
  AVR's ADC quantisation and 32-sample moving average;
* the delay timer (`$ST`) is stored and reported but never puts the station to sleep;
* fault injection is simplified: "no_ground" and "stuck_relay" are detected at once (CGMI-style),
  "over_temp" is a hard fault that opens the relay 5 s later, "gfci" trips at once and then
  follows the firmware's retry/hard-fault logic; `clear_fault()` removes the condition at once.
"""
import datetime

from hil import evse_timing as timing
from hil.ev_model import EvModel

# EVSE states
ST_UNKNOWN = 0x00
ST_A = 0x01
ST_B = 0x02
ST_C = 0x03
ST_D = 0x04
ST_DIODE = 0x05
ST_GFCI = 0x06
ST_NO_GROUND = 0x07
ST_STUCK_RELAY = 0x08
ST_GFI_TEST = 0x09
ST_OVER_TEMP = 0x0A
ST_OVER_CURRENT = 0x0B
FAULT_BEGIN = ST_D
FAULT_END = ST_OVER_CURRENT
ST_SLEEPING = 0xFE
ST_DISABLED = 0xFF

# pilot drive
P12 = "P12"
PWM = "PWM"
N12 = "N12"

# ECF_* (saved flags, $GE)
ECF_L2 = 0x0001
ECF_DIODE_CHK_DISABLED = 0x0002
ECF_VENT_REQ_DISABLED = 0x0004
ECF_GND_CHK_DISABLED = 0x0008
ECF_STUCK_RELAY_CHK_DISABLED = 0x0010
ECF_AUTO_SVC_LEVEL_DISABLED = 0x0020
ECF_MONO_LCD = 0x0100
ECF_GFI_TEST_DISABLED = 0x0200
ECF_TEMP_CHK_DISABLED = 0x0400
ECF_BUTTON_DISABLED = 0x8000

# ECVF_* (volatile flags, $GS/$AT)
ECVF_AUTOSVCLVL_SKIPPED = 0x0001
ECVF_HARD_FAULT = 0x0002
ECVF_LIMIT_SLEEP = 0x0004
ECVF_AUTH_LOCKED = 0x0008
ECVF_TIME_LIMIT = 0x0010
ECVF_NOGND_TRIPPED = 0x0020
ECVF_CHARGING_ON = 0x0040
ECVF_GFI_TRIPPED = 0x0080
ECVF_EV_CONNECTED = 0x0100
ECVF_SESSION_ENDED = 0x0200
ECVF_EV_CONNECTED_PREV = 0x0400
ECVF_TIMER_ON = 0x1000
ECVF_CHARGE_LIMIT = 0x2000
ECVF_MENNEKES_MANUAL = 0x8000
ECVF_DEFAULT = ECVF_SESSION_ENDED
ECVF_CHANGED_TEST = 0x211A  # AUTH_LOCKED|EV_CONNECTED|TIME_LIMIT|CHARGE_LIMIT|HARD_FAULT

MIN_AMPS = 6
MAX_AMPS_L1 = 24
MAX_HW_AMPS_L2 = 80
DEFAULT_AMPS_L1 = 12
DEFAULT_AMPS_L2 = 24
MV_FOR_L1 = 120000

HS_ACK_COOKIE = 0xA5
HS_MISSEDPULSE_NOACK = 2
HS_MISSEDPULSE = 1

BUFLEN = 32        # ESRAPI_BUFLEN: 31 bytes + NUL
MAX_TOKENS = 10    # ESRAPI_MAX_ARGS

# phases of the emulated MCU
PH_RESETTING = "resetting"   # $FR accepted: waiting (3 s if the relay was closed) + watchdog
PH_SILENT = "silent"         # after reset: the bootloader; bytes are lost
PH_INIT = "init"             # LCD splash, EEPROM: silent; bytes wait in the 64-byte RX buffer
PH_POST = "post"             # `$AT 00 ...` sent; POST running; bytes wait in the 64-byte buffer
PH_POSTFAIL = "postfail"     # UL-style POST failure: fault loop, RAPI answered, nothing else
PH_RUN = "run"

FAULT_KINDS = ("gfci", "no_ground", "over_temp", "stuck_relay")


def _xor(data):
    x = 0
    for b in data:
        x ^= b
    return x


def _htou8(s):
    """rapi_proc.cpp htou8(): 2 hex digits, either case; a bad digit gives 0; NUL ends early."""
    u = 0
    for i in range(2):
        c = s[i] if i < len(s) else 0
        if c != 0:
            if i == 1:
                u = (u << 4) & 0xFF
            if 0x30 <= c <= 0x39:
                u += c - 0x30
            elif 0x41 <= c <= 0x46:
                u += c - 0x41 + 10
            elif 0x61 <= c <= 0x66:
                u += c - 0x61 + 10
            else:
                return 0
    return u & 0xFF


def _dtoi32(s):
    """rapi_proc.cpp dtoi32() as in 8.2.3: unsigned decimal, no validation, 32-bit wrap.
    Every byte counts as (byte - '0') with AVR signed chars, so '-' and letters give garbage."""
    i = 0
    for b in s:
        c = b - 256 if b >= 128 else b
        i = (i * 10 + (c - 48)) & 0xFFFFFFFF
    return i


def _int16(v):
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


def _int32(v):
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


class OpenEvseEmulator:
    # timings (ms), from open_evse.h / J1772EvseController.cpp
    DEBOUNCE_MS = 250              # DELAY_STATE_TRANSITION
    DEBOUNCE_A_MS = 25             # DELAY_STATE_TRANSITION_A
    # boot, measured on a real 8.2.3 (rapi.md §8; hil/evse_timing.py has the table)
    RESET_SILENCE_MS = timing.BOOTLOADER_MS        # reset -> bytes accepted (bootloader: lost)
    BOOT_SILENCE_MS = timing.BOOT_SILENCE_MS       # reset -> `$AT 00 00 0 0200` (~2.2 s)
    BLANK_EEPROM_SILENCE_MS = timing.BLANK_EEPROM_SILENCE_MS   # the same, blank EEPROM (2.9-3.4 s)
    POST_MS = timing.POST_MS                       # `$AT 00` -> `$AB` (1.2-2.1 s)
    STALL_BC_MS = timing.STALL_BC_MS               # B->C: GFI self-test, no RAPI (1.13-1.31 s)
    STALL_AB_MS = timing.STALL_AB_MS               # A->B, B->A: no RAPI (0.27-0.32 s)
    WDT_MS = 1000                  # $FR: watchdog fires after 1 s
    FR_RELAY_WAIT_MS = 3000        # $FR with the relay closed: give the car 3 s first
    SLEEP_RELAY_TIMEOUT_MS = 3000  # $FS: open the relay anyway after 3 s
    SLEEP_RELAY_MA = 1000          # $FS: the car stopped drawing at <= 1 A
    GROUND_CHK_DELAY_MS = 1000
    GFI_TIMEOUT_MS = 5 * 60000
    GFI_RETRY_COUNT = 6
    OVER_TEMP_RELAY_MS = 5000
    RX_BUFFER = 64                 # the AVR's serial RX buffer (bytes beyond it are dropped)
    RELAY_CLOSE_MS = 100           # `relayCloseMs: 100` printed by the real V6 build (§8)
    RELAY_HOLD_PWM = 255           # `relayHoldPwm: 255` printed by the real V6 build (§8)
    LOG_MAX = 500

    def __init__(self, port, now_ms, build="stock", ev=None, version=None,
                 rapi_version=None, debug_text=None, voltage_mv=None, hw_max=32,
                 saved_amps=None, auto_svc_level=False, rtc=None, latency=None, stalls=None,
                 seed=timing.DEFAULT_SEED, blank_eeprom=False, dialect="openevse"):
        from hil.evse_dialects import get_dialect
        if build not in ("stock", "full"):
            raise ValueError("build must be 'stock' or 'full'")
        self.dialect = get_dialect(dialect)
        d = self.dialect
        version = d.version if version is None else version
        rapi_version = d.rapi_version if rapi_version is None else rapi_version
        debug_text = d.debug_text if debug_text is None else debug_text
        voltage_mv = d.voltage_mv if voltage_mv is None else voltage_mv
        self.latency = d.latency if latency is None else bool(latency)
        self.stalls = d.stalls if stalls is None else bool(stalls)
        self.seed = seed
        self._timer = timing.LoopTimer(seed)
        self.blank_eeprom = bool(blank_eeprom)
        self._port = port
        self._now = now_ms
        self.build = build
        self.version = version
        self.rapi_version = rapi_version
        self.debug_text = debug_text
        self.auto_svc_level_build = bool(auto_svc_level)
        self._mv_l2 = int(voltage_mv)

        # --- "EEPROM": survives reboots -------------------------------------------------------
        if hw_max is None:
            self._ee_hw_max = None          # never written: SC M may set it once
        else:
            self._ee_hw_max = max(MIN_AMPS, min(MAX_HW_AMPS_L2, int(hw_max)))
        self._ee_amps: dict = {1: None, 2: None}
        if saved_amps is None:
            saved_amps = d.saved_amps
        if saved_amps is not None:
            self._ee_amps[2] = int(saved_amps) & 0xFF
        self._dl_max_conf = 32              # dialect "emulator": its $SC ceiling, $SC M once
        self._dl_max_locked = False
        self._dl_hb = (0, 0)                # dialect "emulator": $SY settings (never enforced)
        self._ee_flags = ECF_L2
        self._ee_hs = (0, 0)               # heartbeat interval, fallback amps
        self.total_wh = 0
        self._gfi_cnt = 0
        self._nognd_cnt = 0
        self._stuck_cnt = 0
        self._ee_scale = 220
        self._ee_offset = 0
        self._ee_timer = None               # (sh, sm, eh, em) or None
        self._relay_close_ms = self.RELAY_CLOSE_MS
        self._relay_hold_pwm = self.RELAY_HOLD_PWM
        self._ee_mennekes_manual = False

        # --- hardware around the MCU ----------------------------------------------------------
        self.temperatures = list(d.temperatures)  # DS3231, MCP9808, TMP007 (tenths of degC)
        self._normal_temps = list(self.temperatures)
        if rtc is True:
            rtc = datetime.datetime(2024, 1, 1, 0, 0, 0)
        self._rtc_base = rtc                # datetime or None (no RTC chip)
        self._rtc_base_ms = 0
        self._faults = set()                # physical fault conditions (survive reboots)

        # --- observables ---------------------------------------------------------------------
        self.log = []
        self.log_total = 0
        self.lines_received = 0
        self.lines_dropped = 0
        self.lines_sent = 0
        self.bytes_sent = 0
        self.tx_lost = 0
        self.rx_lost = 0                    # bytes sent while the bootloader ran
        self.rx_overflow = 0                # bytes dropped because the 64-byte RX buffer was full
        self.stall_log = []                 # (start ms, length ms, "B->C" | "A<->B")
        self.lcd = {}
        self.lcd_updates = True
        self.backlight = None
        self.ev = None

        t0 = int(self._now())
        self._t = t0
        self._rtc_base_ms = t0
        self._ram_reset(t0)
        self._do_reset(t0)
        if ev is not None:
            self._attach(ev, t0)

    # =========================================================================================
    # public control API
    # =========================================================================================
    def poll(self):
        """Read what arrived, run it, bring the simulated hardware up to now, write the output."""
        now = int(self._now())
        if now < self._t:
            now = self._t
        data = self._read_port()
        if data:
            # The bytes were written before this poll: they arrive at the time of the last one.
            self._ingest(data, self._t)
        self._advance(now)

    def plug(self, ev=None):
        """Plug a car in (an EvModel; a default one if None). Returns the car."""
        now = self._sync()
        if ev is None:
            ev = EvModel()
        self._attach(ev, now)
        self._after_external(now)
        return ev

    def unplug(self):
        now = self._sync()
        if self.ev is not None:
            self.ev.set_relay(now, False)
            self.ev.set_pilot(now, 0)
        self.ev = None
        self._after_external(now)

    def inject_fault(self, kind):
        """Start a fault condition: "gfci" (06), "no_ground" (07), "over_temp" (0a, hard fault),
        "stuck_relay" (08; at POST it gives the UL-style `$AB 08`)."""
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(FAULT_KINDS)))
        now = self._sync()
        self._faults.add(kind)
        if kind == "gfci":
            self._gfi_trip(now)
        elif kind == "over_temp":
            self.temperatures[0] = 700
        self._after_external(now)

    def clear_fault(self, kind=None):
        """Remove one fault condition (or all of them); the controller recovers on its own."""
        now = self._sync()
        kinds = list(self._faults) if kind is None else [kind]
        for k in kinds:
            self._faults.discard(k)
            if k == "gfci":
                self._gfi_latched = False
                self._gfi_retry = 0
                if self._state == ST_GFCI:
                    self._vflags &= ~ECVF_HARD_FAULT
            elif k == "over_temp":
                self.temperatures[:] = self._normal_temps
                self._ot_relay_off_at = None
        self._after_external(now)

    def reboot(self):
        """Watchdog reset now (no `$OK`, no 3 s wait): the boot sequence follows."""
        now = self._sync()
        self._do_reset(now)

    def press_button(self, kind="short"):
        """Front button: "short", "long", or "hold10" (held 10 s: asks the gateway for AP mode).
        With the button disabled (`$FF B 0`) short/long presses come out as `$AN 0` / `$AN 1`."""
        now = self._sync()
        if self._phase not in (PH_RUN, PH_POSTFAIL):
            return
        if kind == "hold10":
            self._emit(b"WF 02")
            return
        if self._flags & ECF_BUTTON_DISABLED:
            self._emit(b"AN 1" if kind == "long" else b"AN 0")
            return
        if kind == "short":
            self._short_press(now)
            self._after_external(now)

    # =========================================================================================
    # observables
    # =========================================================================================
    @property
    def state(self):
        return self._state

    @property
    def pilot_state(self):
        return self._pilot_state

    @property
    def pilot_mode(self):
        return self._pilot_mode

    @property
    def current_capacity(self):
        return self._capacity

    @property
    def relay_closed(self):
        return self._relay

    @property
    def vflags(self):
        return self._vflags

    @property
    def flags(self):
        return self._flags

    @property
    def phase(self):
        return self._phase

    @property
    def booting(self):
        return self._phase != PH_RUN

    @property
    def echo(self):
        return self._echo

    @property
    def voltage_mv(self):
        return self._voltage

    @property
    def session_ws(self):
        return self._energy_nws // 1000000000

    @property
    def heartbeat(self):
        return (self._hs_interval, self._hs_fallback, self._hs_trigger)

    @property
    def saved_amps(self):
        return self._max_current_capacity()

    @property
    def hw_max(self):
        return self._hw_max()

    @property
    def fault_counters(self):
        return (self._gfi_cnt, self._nognd_cnt, self._stuck_cnt)

    @property
    def faults(self):
        return frozenset(self._faults)

    def measured_ma(self):
        """What the controller's ammeter reads now ($GG field 1)."""
        return self._measured_ma(self._t)

    def ev_phase_currents(self):
        """(l1, l2, l3) amps the car draws now; zeros when nothing flows."""
        if self.ev is None or not self._relay:
            return (0, 0, 0)
        return self.ev.phase_currents(max(self._t, int(self._now())))

    # =========================================================================================
    # MCU RAM state
    # =========================================================================================
    def _ram_reset(self, t):
        self._phase = PH_SILENT
        self._phase_until = t
        self._state = ST_UNKNOWN
        self._pilot_state = ST_UNKNOWN
        self._tmp_evse = ST_UNKNOWN
        self._tmp_pilot = ST_UNKNOWN
        self._tmp_evse_start = t
        self._tmp_pilot_start = t
        self._capacity = 0
        self._vflags = ECVF_DEFAULT
        self._flags = self._ee_flags
        self._relay = False
        self._pilot_mode = P12
        self._level = None
        self._charge_on_ms = t
        self._charge_off_ms = t
        self._elapsed_s = 0
        self._accum_s = 0
        self._echo = False
        self._echo_buf = bytearray()
        self._line = None               # bytearray while a line is open
        self._rx_fifo = bytearray()
        self._service_at = None         # when the main loop next serves RAPI (bytes waiting)
        self._busy_until = None         # a stall: the MCU serves no RAPI and sends nothing
        self._busy_then = None          # what the MCU does when the stall ends
        self._in_cmd = False
        self._sent = (ST_UNKNOWN, ST_UNKNOWN, 0, 0)
        self._sent_dialect = None
        self._dialect_echo = False
        self._hs_interval, self._hs_fallback = self._ee_hs
        self._hs_trigger = 0
        self._hs_last = t
        self._gfi_latched = False
        self._gfi_start = t
        self._gfi_retry = 0
        self._ot_relay_off_at = None
        self._time_limit15 = 0
        self._time_limit_end_s = 0
        self._charge_limit_kwh = 0
        self._charge_limit_ws = 0
        self._fake_ma = None
        self._ammeter_cal = False
        self._voltage = self._mv_l2
        self._energy_nws = 0            # session energy in nano-watt-seconds (mA * mV * ms)
        self._in_session = False
        self._svclvl_boot = 2
        self._reset_at = None
        self._mennekes_locked = False
        if self._ee_mennekes_manual:
            self._vflags |= ECVF_MENNEKES_MANUAL

    # =========================================================================================
    # time and events
    # =========================================================================================
    def _sync(self):
        now = int(self._now())
        if now < self._t:
            now = self._t
        self._advance(now)
        return now

    def _after_external(self, now):
        if self._phase == PH_RUN and self._busy_until is None:
            self._update_stable(now)

    def _advance(self, to):
        guard = 0
        while guard < 200000:
            guard += 1
            nxt = self._next_event()
            if nxt is None or nxt > to:
                break
            self._integrate(nxt)
            self._t = nxt
            self._on_event(nxt)
        self._integrate(to)
        if to > self._t:
            self._t = to
        if self._phase == PH_RUN and self._busy_until is None:
            self._update_stable(self._t)

    def _next_event(self):
        t = self._t
        cands = []
        ph = self._phase
        if ph == PH_RESETTING:
            cands.append(self._reset_at)
        elif ph in (PH_SILENT, PH_INIT, PH_POST):
            cands.append(self._phase_until)
        elif self._busy_until is not None:
            cands.append(self._busy_until)
        elif ph == PH_POSTFAIL:
            cands.append(self._service_at)
        elif ph == PH_RUN:
            cands.append(self._service_at)
            if self._state not in (ST_DISABLED,):
                if self._tmp_evse != self._state:
                    d = self.DEBOUNCE_A_MS if self._tmp_evse == ST_A else self.DEBOUNCE_MS
                    cands.append(self._tmp_evse_start + d)
                if self._tmp_pilot != self._pilot_state:
                    cands.append(self._tmp_pilot_start + self.DEBOUNCE_MS)
            if self._state == ST_SLEEPING and self._relay:
                cands.append(self._charge_off_ms + self.SLEEP_RELAY_TIMEOUT_MS)
            if (self._hs_interval and self._state not in (ST_SLEEPING, ST_DISABLED)
                    and not self._vflags & ECVF_HARD_FAULT):
                cands.append(self._hs_last + self._hs_interval * 1000 + 1)
            if self._gfi_latched and self._state == ST_GFCI and not self._vflags & ECVF_HARD_FAULT:
                cands.append(self._gfi_start + self.GFI_TIMEOUT_MS)
            if self._ot_relay_off_at is not None and self._relay:
                cands.append(self._ot_relay_off_at)
            if self._state == ST_C and self._relay:
                if self._time_limit_end_s:
                    cands.append(self._charge_on_ms
                                 + (self._time_limit_end_s - self._accum_s) * 1000)
                if self._charge_limit_ws:
                    rate = self._measured_ma(t) * self._voltage
                    need = self._charge_limit_ws * 1000000000 - self._energy_nws
                    if rate > 0 and need > 0:
                        cands.append(t + -(-need // rate))
        if self.ev is not None:
            e = self.ev.next_event_ms(t)
            if e is not None:
                cands.append(e)
        cands = [c for c in cands if c is not None and c > t]
        return min(cands) if cands else None

    def _on_event(self, t):
        ph = self._phase
        if ph == PH_RESETTING and t >= self._reset_at:
            self._do_reset(t)
        elif ph == PH_SILENT and t >= self._phase_until:
            self._phase = PH_INIT
            self._phase_until = self._reset_t + self._silence_ms
        elif ph == PH_INIT and t >= self._phase_until:
            self._begin_post(t)
        elif ph == PH_POST and t >= self._phase_until:
            self._finish_boot(t)
        elif ph in (PH_RUN, PH_POSTFAIL):
            if self._busy_until is not None:
                if t < self._busy_until:
                    return
                then = self._busy_then
                self._busy_until = self._busy_then = None
                if then is not None:
                    then(t)
            if ph == PH_RUN:
                self._update_stable(t)
            if self._busy_until is None and self._service_at is not None and t >= self._service_at:
                self._service(t)
            self._kick(t)

    # -- the AVR main loop: RAPI is served once per loop pass; stalls ------------------------
    def _ingest(self, data, t):
        """Bytes arrive on the UART at t: lost in the bootloader, else into the RX buffer."""
        ph = self._phase
        if ph in (PH_RESETTING, PH_SILENT):
            self.rx_lost += len(data)
            self._log("lost", data.decode("latin-1"))
            return
        running = ph in (PH_RUN, PH_POSTFAIL) and self._busy_until is None
        if running and not self.latency and not self._rx_fifo:
            self._feed(data, t)                      # instant replies (latency=False)
            return
        room = max(0, self.RX_BUFFER - len(self._rx_fifo))
        if len(data) > room:
            self.rx_overflow += len(data) - room
            self._log("ovf", data[room:].decode("latin-1"))
            data = data[:room]
        self._rx_fifo += data
        if running:
            self._kick(t)

    def _kick(self, t):
        """Bytes are waiting and the MCU runs: the loop serves them after its current pass."""
        if (self._rx_fifo and self._service_at is None and self._busy_until is None
                and self._phase in (PH_RUN, PH_POSTFAIL)):
            if self.latency:
                self._service_at = t + self._timer.loop_delay_ms()
            else:
                self._service(t)

    def _service(self, t):
        self._service_at = None
        data = bytes(self._rx_fifo)
        self._rx_fifo = bytearray()
        if data:
            self._feed(data, t)

    def _stall(self, t, span, what, then=None):
        ms = self._timer.stall_ms(span)
        self._busy_until = t + ms
        self._busy_then = then
        self.stall_log.append((t, ms, what))
        del self.stall_log[:-100]

    def _integrate(self, to):
        dt = to - self._t
        if dt <= 0 or not self._relay:
            return
        ma = self._measured_ma(self._t)
        if ma > 0:
            self._energy_nws += ma * self._voltage * dt

    def _measured_ma(self, t):
        """m_ChargingCurrent: what $GG reports and the energy meter integrates."""
        if self._fake_ma is not None:
            return self._fake_ma                    # $T0: kept until chargingOff() zeroes it
        return self._ammeter_ma(t)

    def _ammeter_ma(self, t):
        """A real ammeter reading (the sleep logic reads it even in FAKE_CHARGING_CURRENT)."""
        if not self._relay or self.ev is None:
            return 0
        if self._ee_scale <= 0:
            return 0
        true_ma = self.ev.draw_amps(t) * 1000.0
        ma = int(round(true_ma * self._ee_scale / 220.0)) - self._ee_offset
        return max(0, ma)

    # =========================================================================================
    # reset and boot
    # =========================================================================================
    def _do_reset(self, t):
        """The MCU resets: relay open, pilot not driven, RAM lost."""
        if self._relay and self.ev is not None:
            self.ev.set_relay(t, False)
        self._ram_reset(t)
        self._sync_ev(t)
        self._reset_t = t
        if self.dialect.fast_boot:                  # other emulators: `$AB` at once, no POST
            self._post_setup(t)
            self._finish_boot(t)
            return
        self._silence_ms = (self.BLANK_EEPROM_SILENCE_MS if self.blank_eeprom
                            else self.BOOT_SILENCE_MS)
        self.blank_eeprom = False                   # the first boot writes the EEPROM
        self._phase = PH_SILENT
        self._phase_until = t + self.RESET_SILENCE_MS

    def _begin_post(self, t):
        self._phase = PH_POST
        self._phase_until = t + self.POST_MS
        if self.dialect.boot_at00:
            self._send_state(force=True)           # $AT 00 00 0 0200
        self._debug("\nrelayCloseMs: %d\r\nrelayHoldPwm: %d\r\n"
                    % (self._relay_close_ms, self._relay_hold_pwm))
        self._post_setup(t)

    def _post_setup(self, t):
        if not self.auto_svc_level_build:
            self._flags |= ECF_AUTO_SVC_LEVEL_DISABLED
        # POST: auto service level needs the pilot at +12 V with no car.
        svclvl = 2 if self._flags & ECF_L2 else 1
        if self.auto_svc_level_build and not self._flags & ECF_AUTO_SVC_LEVEL_DISABLED:
            if self.ev is not None:
                svclvl = 1
                self._vflags |= ECVF_AUTOSVCLVL_SKIPPED
            else:
                svclvl = 2
        self._svclvl_boot = svclvl

    def _finish_boot(self, t):
        if "stuck_relay" in self._faults and not self._flags & ECF_STUCK_RELAY_CHK_DISABLED:
            # UL build: $AB with the fault state, forced $AT, then a fault loop that answers RAPI.
            self._state = ST_STUCK_RELAY
            self._stuck_cnt = min(0xFF, self._stuck_cnt + 1)
            if self.dialect.boot_ab:
                self._emit(b"AB %02x %s" % (self._state, self.version.encode()))
            self._send_state(force=True)
            self._phase = PH_POSTFAIL
        else:
            self._set_svc_level(self._svclvl_boot, t)
            if self.dialect.boot_ab:
                self._emit(b"AB %02x %s" % (self._state, self.version.encode()))
            self._hs_interval, self._hs_fallback = self._ee_hs
            self._hs_last = t
            self._phase = PH_RUN
            self._update_stable(t)
        self._kick(t)                              # held commands: served by the next loop pass

    # =========================================================================================
    # serial I/O
    # =========================================================================================
    def _read_port(self):
        chunks = []
        for _ in range(64):
            try:
                data = self._port.read(4096)
            except Exception:
                break
            if not data:
                break
            chunks.append(bytes(data))
        return b"".join(chunks)

    def _flush_echo(self):
        if self._echo_buf:
            data = bytes(self._echo_buf)
            self._echo_buf = bytearray()
            self._write(data, "echo", data.decode("latin-1"))

    def _write(self, data, kind, text):
        if kind != "echo" and self._echo_buf:
            self._flush_echo()
        try:
            n = self._port.write(data)
        except Exception:
            n = 0
            self.tx_lost += len(data)
        self.bytes_sent += len(data) if n is None else n
        if n is not None and n < len(data):
            self.tx_lost += len(data) - n
        self._log(kind, text)

    def _log(self, kind, text):
        parts = [x for x in text.splitlines() if x.strip()] if kind == "dbg" else [text]
        for part in parts:
            self.log.append((self._t, kind, part))
            self.log_total += 1
        if len(self.log) > self.LOG_MAX:
            del self.log[:len(self.log) - self.LOG_MAX]

    def _emit(self, body, response=False):
        """Write `$` + body + `^XX` CR (+ LF for a response while echo is on)."""
        line = b"$" + body
        line += b"^%02X\r" % _xor(line)
        if response and self._echo:
            line += b"\n"
        self.lines_sent += 1
        self._write(line, "tx", line.rstrip(b"\r\n").decode("latin-1"))

    def _debug(self, text):
        if self.debug_text:
            self._write(text.encode("latin-1"), "dbg", text.strip())

    def _feed(self, data, now):
        if self._phase not in (PH_RUN, PH_POSTFAIL):
            return                                   # (never: _ingest holds or drops them)
        for i, c in enumerate(data):
            if self._echo:
                self._echo_buf.append(c)
            if c == 0x24:                            # '$'
                self._line = bytearray(b"$")
            elif self._line is not None:
                if len(self._line) < BUFLEN:
                    if c == 0x0D:
                        line = bytes(self._line)
                        self._line = None
                        self.lines_received += 1
                        self._log("rx", line.decode("latin-1"))
                        self._run_line(line, now)
                        if self._phase != PH_RUN and self._phase != PH_POSTFAIL:
                            self._flush_echo()
                            return                   # $FR: the rest is lost in the reset
                    else:
                        self._line.append(c)
                else:                                # too many chars: drop, no reply
                    self.lines_dropped += 1
                    self._log("drop", bytes(self._line).decode("latin-1"))
                    self._line = None
        self._flush_echo()

    # =========================================================================================
    # RAPI parsing (rapi_proc.cpp)
    # =========================================================================================
    @staticmethod
    def _tokenize(line):
        """Returns the token list, or None for a bad checksum / too many tokens."""
        nul = line.find(b"\0")
        if nul >= 0:
            line = line[:nul]
        c1 = line[1] if len(line) > 1 else 0
        achk = (0x24 + c1) & 0xFF
        xchk = 0x24 ^ c1
        tokens = []
        start = 1
        chktype = 0
        hchk = 0
        i = 2
        n = len(line)
        while i < n:
            ch = line[i]
            if ch == 0x20:
                if len(tokens) + 1 >= MAX_TOKENS:
                    chktype = 255
                    break
                achk = (achk + ch) & 0xFF
                xchk ^= ch
                tokens.append(line[start:i])
                start = i + 1
            elif ch in (0x2A, 0x5E):                 # '*' additive, '^' XOR
                chktype = 1 if ch == 0x2A else 2
                hchk = _htou8(line[i + 1:i + 3])
                break
            else:
                achk = (achk + ch) & 0xFF
                xchk ^= ch
            i += 1
        tokens.append(line[start:max(start, min(i, n))])
        ok = (chktype == 0 or (chktype == 1 and hchk == achk)
              or (chktype == 2 and hchk == xchk))
        return tokens if ok else None

    def _run_line(self, line, now):
        d = self.dialect
        tokens = self._tokenize(line) if d.tokenize is None else d.tokenize(line)
        if tokens is None:
            self._emit(b"NK", response=True)         # bare $NK^21, nothing run, no id
            return
        seq = 0
        if d.echo_ids and len(tokens) > 1 and tokens[-1][:1] == b":":
            seq = _htou8(tokens[-1][1:])
            tokens = tokens[:-1]
        if self._dialect_echo:
            d.echo(self, tokens)
        self._in_cmd = True
        try:
            res = self._process(tokens, now)
        finally:
            self._in_cmd = False
        if res is None:                              # $FR: the MCU resets before replying
            return
        rc, text = res
        body = b"OK" if rc == 0 else b"NK"
        if text is not None:
            body += b" " + text
        if seq:
            body += b" :%02X" % seq
        self._emit(body, response=True)
        self._send_state()                          # what the command changed, after the reply

    def _has(self, cmd):
        """Whether the simulated build compiles this command in."""
        if cmd in (b"S2", b"T0", b"S3", b"G3", b"SH", b"GH"):
            return self.build == "full"
        return True

    # =========================================================================================
    # commands
    # =========================================================================================
    def _process(self, tokens, now):
        cmd = tokens[0]
        n = len(tokens)
        g = cmd[0:1]
        c = cmd[1:2] or b"\0"
        key = g + c
        d = self.dialect
        if d.commands is not None:                   # another dialect: its own command table
            handler = d.commands.get(cmd if d.exact_names else key)
            if handler is None:
                return (1, None)
            if handler is not True:
                return handler(self, tokens, n, now)
        if not self._has(key):
            return (1, None)
        handler = self._HANDLERS.get(key)
        if handler is None:
            return (1, None)
        return handler(self, tokens, n, now)

    # -- F ----------------------------------------------------------------------------------
    def _cmd_f0(self, tk, n, now):
        if n == 2:
            self.lcd_updates = tk[1][:1] != b"0"
            return (0, None)
        return (1, None)

    def _cmd_f1(self, tk, n, now):
        self._short_press(now)
        return (0, None)

    def _cmd_fb(self, tk, n, now):
        if n == 2:
            self.backlight = _dtoi32(tk[1]) & 0xFF
            return (0, None)
        return (1, None)

    def _cmd_fd(self, tk, n, now):
        self._disable(now)
        return (0, None)

    def _cmd_fe(self, tk, n, now):
        self._enable(now)
        return (0, None)

    def _cmd_ff(self, tk, n, now):
        if n != 3:
            return (1, None)
        v = ((tk[2][0] if tk[2] else 0) - 0x30) & 0xFF
        if v > 1:
            return (1, None)
        f = tk[1][:1]
        bits = {b"B": ECF_BUTTON_DISABLED, b"D": ECF_DIODE_CHK_DISABLED,
                b"F": ECF_GFI_TEST_DISABLED, b"G": ECF_GND_CHK_DISABLED,
                b"R": ECF_STUCK_RELAY_CHK_DISABLED, b"T": ECF_TEMP_CHK_DISABLED,
                b"V": ECF_VENT_REQ_DISABLED}
        if f == b"E":
            # Firmware bug: compares 0/1 with the character '0', so echo always goes ON.
            self._echo = not (v == 0x30)
            return (0, None)
        if f not in bits:
            return (1, None)
        if v:
            self._flags &= ~bits[f]
        else:
            self._flags |= bits[f]
        self._save_flags()
        return (0, None)

    def _cmd_fp(self, tk, n, now):
        if n >= 4 and not self._vflags & ECVF_HARD_FAULT:
            x = _dtoi32(tk[1])
            y = _dtoi32(tk[2])
            self.lcd[(x, y)] = b" ".join(tk[3:])
            return (0, None)
        return (1, None)

    def _cmd_fr(self, tk, n, now):
        self._set_pilot(P12, now)
        wait = self.FR_RELAY_WAIT_MS if self._relay else 0
        self._phase = PH_RESETTING
        self._reset_at = now + wait + self.WDT_MS
        self._line = None
        return None

    def _cmd_fs(self, tk, n, now):
        self._sleep(now)
        return (0, None)

    # -- S ----------------------------------------------------------------------------------
    def _cmd_s0(self, tk, n, now):
        if n == 2:
            if tk[1][:1] == b"0":
                self._flags |= ECF_MONO_LCD
            else:
                self._flags &= ~ECF_MONO_LCD
            self._save_flags()
            return (0, None)
        return (1, None)

    def _cmd_s1(self, tk, n, now):
        if n == 7:
            v = [_dtoi32(x) & 0xFF for x in tk[1:7]]
            if self._rtc_base is not None:
                try:
                    self._rtc_base = datetime.datetime(2000 + v[0], v[1], v[2], v[3], v[4], v[5])
                    self._rtc_base_ms = now
                except ValueError:
                    pass
            return (0, None)
        return (1, None)

    def _cmd_s2(self, tk, n, now):
        if n == 2:
            self._ammeter_cal = tk[1][:1] == b"1"
            return (0, None)
        return (1, None)

    def _cmd_s3(self, tk, n, now):
        if n == 2 and self._limits_allowed():
            v = _dtoi32(tk[1]) & 0xFF
            if v:
                self._time_limit15 = v
                self._time_limit_end_s = 15 * 60 * v
                self._vflags |= ECVF_TIME_LIMIT
            else:
                self._clr_time_limit()
            return (0, None)
        return (1, None)

    def _cmd_s5(self, tk, n, now):
        if n == 2:
            a = tk[1][:1]
            if a == b"0":
                self._mennekes_locked = False
            elif a == b"1":
                self._mennekes_locked = True
            elif a == b"A":
                self._ee_mennekes_manual = False
                self._vflags &= ~ECVF_MENNEKES_MANUAL
            elif a == b"M":
                self._ee_mennekes_manual = True
                self._vflags |= ECVF_MENNEKES_MANUAL
            else:
                return (1, None)
            return (0, None)
        return (1, None)

    def _cmd_sa(self, tk, n, now):
        if n == 3:
            self._ee_scale = _int16(_dtoi32(tk[1]))
            self._ee_offset = _int16(_dtoi32(tk[2]))
            return (0, None)
        return (1, None)

    def _cmd_sc(self, tk, n, now):
        if n not in (2, 3):
            return (1, None)
        amps = _dtoi32(tk[1]) & 0xFF
        if n == 3 and tk[2][:1] == b"M":
            rc = self._set_max_hw(amps, now)
            return (rc, b"%d" % self._hw_max())
        nosave = n == 3
        if "over_temp" in self._faults and amps > self._capacity:
            rc = 1
        else:
            rc = self._set_current_capacity(amps, now, nosave=nosave)
        return (rc, b"%d" % self._capacity)

    def _cmd_sh(self, tk, n, now):
        if n == 2 and self._limits_allowed():
            v = _dtoi32(tk[1]) & 0xFF
            if v:
                self._charge_limit_kwh = v
                self._charge_limit_ws = 3600000 * v
                self._vflags |= ECVF_CHARGE_LIMIT
            else:
                self._clr_charge_limit()
            return (0, None)
        return (1, None)

    def _cmd_sk(self, tk, n, now):
        self.total_wh = _dtoi32(tk[1]) if n > 1 else 0
        return (0, None)

    def _cmd_sl(self, tk, n, now):
        if n != 2:
            return (1, None)
        a = tk[1][:1]
        if a in (b"1", b"2"):
            self._set_svc_level(a[0] - 0x30, now)
            if self.auto_svc_level_build:
                self._flags |= ECF_AUTO_SVC_LEVEL_DISABLED
                self._save_flags()
            return (0, None)
        if a == b"A" and self.auto_svc_level_build:
            self._flags &= ~ECF_AUTO_SVC_LEVEL_DISABLED
            self._save_flags()
            return (0, None)
        return (1, None)

    def _cmd_st(self, tk, n, now):
        if n == 5:
            v = tuple(_dtoi32(x) & 0xFF for x in tk[1:5])
            if v == (0, 0, 0, 0):
                self._ee_timer = None
                self._vflags &= ~ECVF_TIMER_ON
            else:
                self._ee_timer = v
                self._vflags |= ECVF_TIMER_ON
            return (0, None)
        return (1, None)

    def _cmd_sv(self, tk, n, now):
        if n == 2:
            self._voltage = _dtoi32(tk[1])
            return (0, None)
        return (1, None)

    def _cmd_sy(self, tk, n, now):
        if n == 1:
            rc = 1 if self._hs_trigger == HS_MISSEDPULSE_NOACK else 0
            self._hs_last = now
        elif n == 3:
            interval = _dtoi32(tk[1]) & 0xFFFF
            amps = _dtoi32(tk[2]) & 0xFF
            rc = 0
            if interval == 0:
                rc = self._hs_restore(now)
            self._hs_interval = interval
            self._hs_fallback = amps
            self._hs_trigger = 0
            self._hs_last = now
            self._ee_hs = (interval, amps)
            rc = 1 if rc else 0
        elif n == 2:
            cookie = _dtoi32(tk[1]) & 0xFF
            rc = 1
            if cookie == HS_ACK_COOKIE:
                if self._hs_trigger == HS_MISSEDPULSE_NOACK:
                    rc = self._hs_restore(now)
                    if rc == 0:
                        self._hs_trigger = HS_MISSEDPULSE
                else:
                    rc = 0
        else:
            rc = 1
        return (1 if rc else 0,
                b"%d %d %d" % (self._hs_interval, self._hs_fallback, self._hs_trigger))

    # -- G ----------------------------------------------------------------------------------
    def _cmd_g0(self, tk, n, now):
        if self._pilot_mode == N12:
            v = 2
        else:
            v = 1 if self._vflags & ECVF_EV_CONNECTED else 0
        return (0, b"%d" % v)

    def _cmd_g3(self, tk, n, now):
        return (0, b"%d" % self._time_limit15)

    def _cmd_g5(self, tk, n, now):
        if self._vflags & ECVF_MENNEKES_MANUAL:
            locked = self._mennekes_locked
        else:
            locked = bool(self._vflags & ECVF_EV_CONNECTED)
        return (0, b"%d %s" % (1 if locked else 0,
                               b"M" if self._vflags & ECVF_MENNEKES_MANUAL else b"A"))

    def _cmd_ga(self, tk, n, now):
        return (0, b"%d %d" % (self._ee_scale, self._ee_offset))

    def _cmd_gc(self, tk, n, now):
        hmax = self._hw_max() if self._svc_level() == 2 else MAX_AMPS_L1
        return (0, b"%d %d %d %d" % (MIN_AMPS, hmax, self._capacity,
                                     self._max_current_capacity()))

    def _cmd_gd(self, tk, n, now):
        v = self._ee_timer or (0, 0, 0, 0)
        return (0, b"%d %d %d %d" % v)

    def _cmd_ge(self, tk, n, now):
        return (0, b"%d %04x" % (self._capacity, self._flags))

    def _cmd_gf(self, tk, n, now):
        return (0, b"%x %x %x" % (self._gfi_cnt, self._nognd_cnt, self._stuck_cnt))

    def _cmd_gg(self, tk, n, now):
        return (0, b"%d %d" % (_int32(self._measured_ma(now)), _int32(self._voltage)))

    def _cmd_gh(self, tk, n, now):
        return (0, b"%d" % self._charge_limit_kwh)

    def _cmd_gi(self, tk, n, now):
        return (0, b" \x1e\x95\x0fOEV0A1B2C3D")

    def _cmd_gp(self, tk, n, now):
        return (0, b"%d %d %d" % tuple(self.temperatures[:3]))

    def _cmd_gs(self, tk, n, now):
        return (0, b"%02x %d %02x %04x" % (self._state, self._elapsed_total(now),
                                           self._pilot_state, self._vflags))

    def _cmd_gt(self, tk, n, now):
        if self._rtc_base is None:
            return (0, b"165 165 165 165 165 85")
        dt = self._rtc_base + datetime.timedelta(seconds=(now - self._rtc_base_ms) // 1000)
        return (0, b"%d %d %d %d %d %d" % (dt.year % 100, dt.month, dt.day, dt.hour, dt.minute,
                                           dt.second))

    def _cmd_gu(self, tk, n, now):
        return (0, b"%d %d" % (self.session_ws & 0xFFFFFFFF, self.total_wh & 0xFFFFFFFF))

    def _cmd_gv(self, tk, n, now):
        return (0, self.version.encode() + b" " + self.rapi_version.encode())

    def _cmd_gy(self, tk, n, now):
        return (0, b"%d %d %d" % (self._hs_interval, self._hs_fallback, self._hs_trigger))

    # -- T / Z --------------------------------------------------------------------------------
    def _cmd_t0(self, tk, n, now):
        if n == 2:
            self._fake_ma = _int32(_dtoi32(tk[1]) * 1000)
            return (0, None)
        return (1, None)

    def _cmd_z0(self, tk, n, now):
        if n == 3:
            a = _dtoi32(tk[1]) & 0xFF
            b = _dtoi32(tk[2]) & 0xFF
            self._relay_close_ms, self._relay_hold_pwm = a, b
            text = "\nZ0 %u %u\r\n" % (a, b)
            self._write(text.encode(), "dbg", text.strip())
        return (0, None)

    _HANDLERS = {
        b"F0": _cmd_f0, b"F1": _cmd_f1, b"FB": _cmd_fb, b"FD": _cmd_fd, b"FE": _cmd_fe,
        b"FF": _cmd_ff, b"FP": _cmd_fp, b"FR": _cmd_fr, b"FS": _cmd_fs,
        b"S0": _cmd_s0, b"S1": _cmd_s1, b"S2": _cmd_s2, b"S3": _cmd_s3, b"S5": _cmd_s5,
        b"SA": _cmd_sa, b"SC": _cmd_sc, b"SH": _cmd_sh, b"SK": _cmd_sk, b"SL": _cmd_sl,
        b"ST": _cmd_st, b"SV": _cmd_sv, b"SY": _cmd_sy,
        b"G0": _cmd_g0, b"G3": _cmd_g3, b"G5": _cmd_g5, b"GA": _cmd_ga, b"GC": _cmd_gc,
        b"GD": _cmd_gd, b"GE": _cmd_ge, b"GF": _cmd_gf, b"GG": _cmd_gg, b"GH": _cmd_gh,
        b"GI": _cmd_gi, b"GP": _cmd_gp, b"GS": _cmd_gs, b"GT": _cmd_gt, b"GU": _cmd_gu,
        b"GV": _cmd_gv, b"GY": _cmd_gy,
        b"T0": _cmd_t0, b"Z0": _cmd_z0,
    }

    # =========================================================================================
    # controller (J1772EvseController.cpp)
    # =========================================================================================
    def _svc_level(self):
        return 2 if self._flags & ECF_L2 else 1

    def _hw_max(self):
        return MAX_HW_AMPS_L2 if self._ee_hw_max is None else self._ee_hw_max

    def _save_flags(self):
        self._ee_flags = self._flags

    def _max_current_capacity(self):
        lvl = self._svc_level()
        a = self._ee_amps[lvl]
        if a is None or a in (0, 0xFF):
            a = DEFAULT_AMPS_L1 if lvl == 1 else DEFAULT_AMPS_L2
        if a < MIN_AMPS:
            a = MIN_AMPS
        elif lvl == 1:
            a = min(a, MAX_AMPS_L1)
        else:
            a = min(a, self._hw_max())
        return a

    def _set_current_capacity(self, amps, t, nosave=False):
        lvl = self._svc_level()
        maxcap = MAX_AMPS_L1 if lvl == 1 else self._hw_max()
        if nosave:
            maxcap = self._max_current_capacity()
        if MIN_AMPS <= amps <= maxcap:
            self._capacity = amps
            rc = 0
        elif amps < MIN_AMPS:
            self._capacity = MIN_AMPS
            rc = 1
        else:
            self._capacity = maxcap
            rc = 2
        if not nosave:
            self._ee_amps[lvl] = self._capacity
        if self._pilot_mode == PWM:
            self._sync_ev(t)
        return rc

    def _set_max_hw(self, amps, t):
        if MIN_AMPS <= amps <= MAX_HW_AMPS_L2 and self._ee_hw_max is None:
            self._ee_hw_max = amps
            if self._capacity > amps:
                self._set_current_capacity(amps, t, nosave=True)
            return 0
        return 1

    def _set_svc_level(self, lvl, t):
        if lvl == 2:
            self._flags |= ECF_L2
            self._voltage = self._mv_l2
        else:
            self._flags &= ~ECF_L2
            self._voltage = MV_FOR_L1
        self._save_flags()
        self._set_current_capacity(self._max_current_capacity(), t, nosave=True)

    def _limits_allowed(self):
        return self._state in (ST_B, ST_C)

    def _clr_time_limit(self):
        self._time_limit15 = 0
        self._time_limit_end_s = 0
        self._vflags &= ~ECVF_TIME_LIMIT

    def _clr_charge_limit(self):
        self._charge_limit_kwh = 0
        self._charge_limit_ws = 0
        self._vflags &= ~ECVF_CHARGE_LIMIT

    def _elapsed_total(self, t):
        if self._state == ST_C and self._relay:
            return self._accum_s + (t - self._charge_on_ms) // 1000
        return self._accum_s + self._elapsed_s

    # -- pilot and relay ----------------------------------------------------------------------
    def _set_pilot(self, mode, t):
        self._pilot_mode = mode
        self._sync_ev(t)

    def _sync_ev(self, t):
        if self.ev is None:
            return
        offer = self._capacity if (self._pilot_mode == PWM and self._phase == PH_RUN) else 0
        self.ev.set_pilot(t, offer)
        self.ev.set_relay(t, self._relay)

    def _attach(self, ev, t):
        if self.ev is not None and self.ev is not ev:
            self.ev.set_relay(t, False)
        self.ev = ev
        ev.connect(t)
        self._sync_ev(t)

    def _charging_on(self, t):
        self._relay = True
        self._vflags |= ECVF_CHARGING_ON
        if self._vflags & ECVF_SESSION_ENDED:
            self._accum_s = 0
            self._vflags &= ~ECVF_SESSION_ENDED
        else:
            self._accum_s += self._elapsed_s
        self._elapsed_s = 0
        self._charge_on_ms = t
        self._in_session = True
        self._sync_ev(t)
        self._debug("\nrelayCloseMs: %d\r\nrelayHoldPwm: %d\r\n"
                    % (self._relay_close_ms, self._relay_hold_pwm))
        if "gfci" in self._faults:
            self._gfi_trip(t)                       # the leak trips the GFI as soon as it flows

    def _charging_off(self, t):
        if self._relay:
            self._relay = False
            if self.ev is not None:
                self.ev.set_relay(t, False)
        self._vflags &= ~ECVF_CHARGING_ON
        self._charge_off_ms = t
        if self._fake_ma is not None:
            self._fake_ma = 0

    def _gfi_trip(self, t):
        self._vflags |= ECVF_GFI_TRIPPED
        self._charging_off(t)
        self._set_pilot(P12, t)
        self._gfi_latched = True

    def _read_pilot(self, t):
        """ReadPilot(): updates EV_CONNECTED (and _PREV, SESSION_ENDED) unless the pilot is -12 V."""
        if self.ev is None:
            level = ST_A
        else:
            level = ST_C if self.ev.s2_closed(t) else ST_B
        self._level = level
        if self._pilot_mode != N12:
            if self._vflags & ECVF_EV_CONNECTED:
                self._vflags |= ECVF_EV_CONNECTED_PREV
            else:
                self._vflags &= ~ECVF_EV_CONNECTED_PREV
            if level == ST_A:
                self._vflags &= ~ECVF_EV_CONNECTED
                self._vflags |= ECVF_SESSION_ENDED
            else:
                self._vflags |= ECVF_EV_CONNECTED
        return level

    def _connected_transition(self):
        v = self._vflags & (ECVF_EV_CONNECTED | ECVF_EV_CONNECTED_PREV)
        return v not in (0, ECVF_EV_CONNECTED | ECVF_EV_CONNECTED_PREV)

    # -- commands on the controller -----------------------------------------------------------
    def _enable(self, t):
        if self._state in (ST_DISABLED, ST_SLEEPING):
            self._vflags &= ~ECVF_LIMIT_SLEEP
            self._state = ST_UNKNOWN
            self._set_pilot(P12, t)
            # deviation: always restart the debounce (see module docstring)
            self._tmp_evse = 0x100
            self._tmp_pilot = 0x100

    def _disable(self, t):
        if self._state != ST_DISABLED:
            self._set_pilot(N12, t)
            self._state = ST_DISABLED
            self._charging_off(t)
            self._send_state()

    def _sleep(self, t):
        if self._state != ST_SLEEPING:
            self._set_pilot(P12, t)
            self._state = ST_SLEEPING
            self._charge_off_ms = t
            self._send_state()

    def _short_press(self, t):
        if FAULT_BEGIN <= self._state <= FAULT_END:
            return
        if self._state in (ST_SLEEPING, ST_DISABLED):
            self._enable(t)
        else:
            self._sleep(t)

    def _hs_restore(self, t):
        if self._hs_trigger:
            if "over_temp" in self._faults:
                return 1
            return self._set_current_capacity(self._max_current_capacity(), t, nosave=True)
        return 0

    # -- Update() -----------------------------------------------------------------------------
    def _snapshot(self):
        return (self._state, self._pilot_state, self._pilot_mode, self._capacity, self._relay,
                self._vflags, self._level, self._tmp_evse, self._tmp_pilot)

    def _update_stable(self, t):
        for _ in range(6):
            before = self._snapshot()
            self._update(t)
            if (self._phase != PH_RUN or self._busy_until is not None
                    or self._snapshot() == before):
                break

    def _update(self, t):
        if self._state == ST_DISABLED:
            return
        if self._state == ST_C and self._relay:
            self._elapsed_s = (t - self._charge_on_ms) // 1000
        self._read_pilot(t)
        connected = bool(self._vflags & ECVF_EV_CONNECTED)
        transition = self._connected_transition()
        if transition and connected:
            self._accum_s = 0
            self._elapsed_s = 0
            self._energy_nws = 0                    # session energy restarts at plug-in
        if not connected and self._in_session:
            self._in_session = False                # session ends at unplug: lifetime total
            self.total_wh = (self.total_wh + self.session_ws // 3600) & 0xFFFFFFFF

        if self._state == ST_SLEEPING:
            cancel = True
            if self._relay:
                if (self._level != ST_C or self._ammeter_ma(t) <= self.SLEEP_RELAY_MA
                        or t - self._charge_off_ms >= self.SLEEP_RELAY_TIMEOUT_MS):
                    self._charging_off(t)
            else:
                if self._vflags & ECVF_LIMIT_SLEEP and not connected:
                    cancel = False
                    self._vflags &= ~ECVF_LIMIT_SLEEP
                    self._state = ST_UNKNOWN
                if transition:
                    self._send_state()
            if cancel:
                return

        prev = self._state
        tmp = ST_UNKNOWN
        nofault = True

        if "no_ground" in self._faults and not self._flags & ECF_GND_CHK_DISABLED:
            tmp = self._state = ST_NO_GROUND
            self._charging_off(t)
            if prev != ST_NO_GROUND:
                self._nognd_cnt = min(0xFF, self._nognd_cnt + 1)
                self._vflags |= ECVF_NOGND_TRIPPED
            nofault = False
        elif "stuck_relay" in self._faults and not self._flags & ECF_STUCK_RELAY_CHK_DISABLED:
            tmp = self._state = ST_STUCK_RELAY
            if prev != ST_STUCK_RELAY:
                self._stuck_cnt = min(0xFF, self._stuck_cnt + 1)
            nofault = False

        if self._gfi_latched:
            tmp = self._state = ST_GFCI
            if prev != ST_GFCI:
                self._gfi_cnt = min(0xFF, self._gfi_cnt + 1)
                self._gfi_start = t
            else:
                if not connected:
                    # EV disconnected: cancel the fault
                    self._state = ST_UNKNOWN
                    self._gfi_latched = False
                    self._gfi_retry = 0
                    self._vflags &= ~ECVF_HARD_FAULT
                    self._send_state()
                    return
                if (not self._vflags & ECVF_HARD_FAULT
                        and t - self._gfi_start >= self.GFI_TIMEOUT_MS):
                    self._gfi_retry += 1
                    if self._gfi_retry > self.GFI_RETRY_COUNT:
                        self._vflags |= ECVF_HARD_FAULT    # until the car is unplugged
                    else:
                        self._gfi_latched = False
            nofault = False

        if "over_temp" in self._faults and not self._flags & ECF_TEMP_CHK_DISABLED:
            tmp = self._state = ST_OVER_TEMP
            nofault = False

        prevpilot = self._pilot_state
        tmppilot = ST_UNKNOWN

        if nofault:
            if FAULT_BEGIN <= prev <= FAULT_END:
                # just got out of a fault: pilot back on
                self._set_pilot(P12, t)
                prev = ST_UNKNOWN
                self._state = ST_UNKNOWN
                self._vflags &= ~ECVF_HARD_FAULT
            level = self._level
            if level == ST_A:
                tmp = tmppilot = ST_A
            elif level == ST_B:
                tmp = tmppilot = ST_B
            elif level == ST_C:
                tmppilot = ST_C
                tmp = ST_C if self._pilot_mode == PWM else ST_B
            if tmp != prev:
                if tmp != self._tmp_evse:
                    self._tmp_evse_start = t
                elif t - self._tmp_evse_start >= (self.DEBOUNCE_A_MS if tmp == ST_A
                                                  else self.DEBOUNCE_MS):
                    self._state = tmp

        if tmppilot != prevpilot:
            if tmppilot != self._tmp_pilot:
                self._tmp_pilot_start = t
            elif t - self._tmp_pilot_start >= self.DEBOUNCE_MS:
                self._pilot_state = tmppilot
        self._tmp_pilot = tmppilot
        self._tmp_evse = tmp

        st = self._state
        if st != prev and ST_A <= st <= ST_C:
            self._pilot_state = tmppilot

        stall_ab = (self.stalls and ((prev == ST_A and st in (ST_B, ST_C))
                                     or (prev in (ST_B, ST_C) and st == ST_A)))
        if st != prev:
            if st == ST_A:
                self._charging_off(t)
                self._set_pilot(P12, t)
                self._clr_charge_limit()
                self._clr_time_limit()
            elif st == ST_B:
                self._charging_off(t)
                self._set_pilot(PWM, t)
            elif st == ST_C:
                self._set_pilot(PWM, t)
                if self.stalls:
                    # GFI self-test before the relay closes: the MCU is busy ~1.2 s, no RAPI;
                    # the relay, its debug lines and the `$AT` come at the end.
                    self._stall(t, self.STALL_BC_MS, "B->C", self._close_relay)
                    return
                self._close_relay(t)
            elif st == ST_OVER_TEMP:
                self._set_pilot(P12, t)
                self._vflags |= ECVF_HARD_FAULT
                self._ot_relay_off_at = t + self.OVER_TEMP_RELAY_MS
                if not self._relay:
                    self._ot_relay_off_at = None
            elif st == ST_STUCK_RELAY:
                self._charging_off(t)
            else:                                   # GFCI, no ground, unknown, ...
                self._charging_off(t)
                self._set_pilot(P12, t)

        if self._ot_relay_off_at is not None and t >= self._ot_relay_off_at:
            self._ot_relay_off_at = None
            self._charging_off(t)

        # heartbeat supervision
        if (self._hs_interval and t - self._hs_last > self._hs_interval * 1000
                and not self._vflags & ECVF_HARD_FAULT):
            if self._hs_fallback < self._capacity:
                self._set_current_capacity(self._hs_fallback, t, nosave=True)
            self._hs_trigger = HS_MISSEDPULSE_NOACK
            self._hs_last = t

        if self._state == ST_C and self._relay:
            self._elapsed_s = (t - self._charge_on_ms) // 1000
            if self._charge_limit_ws and self.session_ws >= self._charge_limit_ws:
                self._clr_charge_limit()
                self._clr_time_limit()
                self._vflags |= ECVF_LIMIT_SLEEP
                self._sleep(t)
            elif (self._time_limit_end_s
                  and self._accum_s + self._elapsed_s >= self._time_limit_end_s):
                self._clr_time_limit()
                self._clr_charge_limit()
                self._vflags |= ECVF_LIMIT_SLEEP
                self._sleep(t)

        self._send_state()
        if stall_ab:
            # the EV (dis)connected: the LCD redraw keeps the loop away from RAPI ~0.3 s
            self._stall(t, self.STALL_AB_MS, "A<->B")

    def _close_relay(self, t):
        self._charging_on(t)
        # EV plugged in at POST (auto service level): L1 until the first charge shows both lines
        # live; the 8.2.3 measured reports L2 in the `$AT` of that relay close (`03 03 24 0540`)
        if self._vflags & ECVF_AUTOSVCLVL_SKIPPED and self._state == ST_C:
            self._set_svc_level(2, t)
            self._vflags &= ~ECVF_AUTOSVCLVL_SKIPPED

    # -- $AT ------------------------------------------------------------------------------------
    def _send_state(self, force=False):
        if self._in_cmd:
            return
        if self.dialect.send_state is not None:
            self.dialect.send_state(self, force)
            return
        st = self._state
        ps = self._pilot_state
        cap = self._capacity
        vf = self._vflags
        m = vf & ECVF_CHANGED_TEST
        if force or (st != ST_UNKNOWN
                     and not (st == ST_A and m & ECVF_EV_CONNECTED)
                     and not (st in (ST_B, ST_C) and not m & ECVF_EV_CONNECTED)
                     and (st, ps, cap, m) != self._sent):
            self._emit(b"AT %02x %02x %d %04x" % (st, ps, cap, vf))
            self._sent = (st, ps, cap, m)
