"""Board profiles: which GPIO does which job on each supported ESP32-S3 board.

The board is `DINAMICS_BOARD` in /settings.toml, else detected from `board.board_id`. Each role
can be overridden with its own key, `DINAMICS_<ROLE>` (e.g. `DINAMICS_EVSE_TX = 5`); the CTs
with `DINAMICS_CT_PINS = "1,2,3"`. A value is a GPIO number (5, "GPIO5", "IO5") or a name of the
board module ("A0", "TX", "D9"); -1, "" or "none" leaves an optional role unused. Pins are
resolved as `microcontroller.pin.GPIO<n>`, which exists on every ESP32-S3 board (`board.IO<n>`
does not: Feather and QT Py have no IO names). Tables are in docs/board.md.

`getenv(key)` reads settings.toml the same way on every CircuitPython (see there).
No board module is imported here: `resolve` gets `board` and `microcontroller.pin` (or fakes).
Heap: the module is boot-time only: boot.py and code.py import it, resolve the pins, and code.py
drops it (about 7 KB while loaded, about 1 KB of interned names left after). PROFILES is one
tuple per board (the pins one 14-byte bytes object); `resolve` returns a 14-byte bytearray
(255 = role unused), which the board port keeps.
"""

import os

ROLES = ("EVSE_TX", "EVSE_RX", "CT1", "CT2", "CT3", "LCD_SDA", "LCD_SCL", "LORA_SCK",
         "LORA_MOSI", "LORA_MISO", "LORA_CS", "LORA_RST", "LORA_IRQ", "MAINT_PIN")
EVSE_TX, EVSE_RX, CT1, CT2, CT3 = 0, 1, 2, 3, 4
MAINT_PIN = 13
NONE = 255
_REQUIRED = (EVSE_TX, EVSE_RX, CT1, CT2, CT3)

# name, board_id prefix, board_id endings (space separated), GPIO per role in ROLES order (255 = not
# on this board). Checked against CircuitPython's ports/espressif/boards/<board_id>/pins.c (and the
# circuitpython-stubs board definitions). See docs/board.md for the wiring behind each choice.
PROFILES = (
    ("devkitc", "espressif_esp32s3_devkitc_1_", "n8 n8r2 n8r8 n16 n32r8 n32r16 n8r2_ros",
     b"\x10\x11\x01\x02\x03\x08\x09\x0c\x0b\x0d\x0a\x0e\x12\x0f"),
    # TX/RX pins, A5/D9/D10, STEMMA QT, SCK/MOSI/MISO, D5/D6/D12, A4
    ("feather_s3", "adafruit_feather_esp32s3_", "4mbflash_2mbpsram nopsram",
     b"\x27\x26\x08\x09\x0a\x03\x04\x24\x23\x25\x05\x06\x0c\x0e"),
    # TX/RX pins, A2/A3/SDA pad, STEMMA QT (SDA1/SCL1), SCK/MOSI/MISO, A1/SCL pad, no IRQ, A0
    ("qtpy_s3", "adafruit_qtpy_esp32s3_", "nopsram 4mbflash_2mbpsram",
     b"\x05\x10\x09\x08\x07\x29\x28\x24\x23\x25\x11\x06\xff\x12"),
    ("lolin_s3_mini", "lolin_s3_mini", "",
     b"\x10\x11\x01\x02\x03\x23\x24\x0c\x0b\x0d\x0a\x0e\x15\x0f"),
    # Any other ESP32-S3 board: every required pin comes from settings.toml.
    ("custom", None, "", b"\xff" * 14),
)
NAMES = tuple(p[0] for p in PROFILES)


def getenv(key):
    """A settings.toml value as str or int (true/false -> 1/0), None when absent or unreadable.
    CircuitPython 10.3's os.getenv returns only quoted strings (a bare 1 raises ValueError) and
    supervisor.get_setting parses the value; earlier versions and CPython have only os.getenv."""
    try:
        from supervisor import get_setting
    except ImportError:
        get_setting = None
    try:
        v = get_setting(key) if get_setting is not None else os.getenv(key)
    except ValueError as e:
        print("settings.toml %s: unreadable value (%s); ignored" % (key, e))
        return None
    if v is True or v is False:
        return int(v)
    return v


class BoardError(ValueError):
    """A board or pin setting the firmware cannot use; str(e) is one console line."""


def profile(getenv, board_id):
    """-> the PROFILES row chosen by DINAMICS_BOARD, else by board_id. Raises BoardError."""
    name = getenv("DINAMICS_BOARD")
    if name is not None:
        for p in PROFILES:
            if p[0] == str(name).strip():
                return p
        raise BoardError("DINAMICS_BOARD = %r is not a known board (%s)" % (name, ", ".join(NAMES)))
    for p in PROFILES:
        pre = p[1]
        if pre is not None and board_id and board_id.startswith(pre) and (
                board_id == pre or board_id[len(pre):] in p[2].split(" ")):
            return p
    raise BoardError("board %r has no pin profile: set DINAMICS_BOARD in settings.toml (%s; "
                     "custom = give DINAMICS_EVSE_TX, DINAMICS_EVSE_RX and DINAMICS_CT_PINS)"
                     % (board_id, ", ".join(NAMES)))


def gpio_of(key, value, board_mod, pin_mod):
    """A settings.toml pin value -> GPIO number, or None for "unused". Raises BoardError."""
    if isinstance(value, int):
        n = value
    else:
        s = str(value).strip()
        up = s.upper()
        if up in ("", "NONE", "-1"):
            return None
        for pre in ("GPIO", "IO"):
            if up.startswith(pre) and _digits(up[len(pre):]):
                up = up[len(pre):]
                break
        if _digits(up):
            n = int(up)
        else:
            obj = getattr(board_mod, s, None) if board_mod is not None else None
            n = _number(obj, pin_mod)
            if n is None:
                raise BoardError("%s = %r: no such pin on this board" % (key, value))
    if n < 0:
        return None
    if n > 48:
        raise BoardError("%s = %r: the ESP32-S3 has GPIO0-48" % (key, value))
    return n


def _digits(s):
    if not s or len(s) > 3:
        return False
    for ch in s:
        if not "0" <= ch <= "9":
            return False
    return True


def _number(obj, pin_mod):
    if obj is None or pin_mod is None:
        return None
    for n in range(49):
        if getattr(pin_mod, "GPIO%d" % n, None) is obj:
            return n
    return None


def resolve(getenv, board_id, board_mod=None, pin_mod=None):
    """-> (profile name, bytearray of GPIO numbers in ROLES order, 255 = unused).
    Profile first, then DINAMICS_<ROLE> / DINAMICS_CT_PINS overrides, then the checks.
    Raises BoardError with a one-line text."""
    p = profile(getenv, board_id)
    pins = bytearray(p[3])
    for i in range(len(ROLES)):
        if CT1 <= i <= CT3:
            continue
        key = "DINAMICS_" + ROLES[i]
        v = getenv(key)
        if v is not None:
            n = gpio_of(key, v, board_mod, pin_mod)
            pins[i] = NONE if n is None else n
    v = getenv("DINAMICS_CT_PINS")
    if v is not None:
        parts = str(v).split(",")
        if len(parts) != 3:
            raise BoardError("DINAMICS_CT_PINS = %r: give three pins, e.g. \"1,2,3\"" % (v,))
        for i in range(3):
            n = gpio_of("DINAMICS_CT_PINS", parts[i], board_mod, pin_mod)
            pins[CT1 + i] = NONE if n is None else n
    check(pins)
    return p[0], pins


def check(pins):
    """The rules every profile and override must pass (BoardError names the key to change)."""
    for i in _REQUIRED:
        if pins[i] == NONE:
            key = "DINAMICS_CT_PINS" if CT1 <= i <= CT3 else "DINAMICS_" + ROLES[i]
            raise BoardError("%s is needed (no pin for %s on this board)" % (key, ROLES[i]))
    for i in range(len(ROLES)):
        n = pins[i]
        if n == NONE:
            continue
        if CT1 <= i <= CT3 and not 1 <= n <= 10:
            raise BoardError("DINAMICS_CT_PINS: %s on GPIO%d is not an ADC1 pin (GPIO1-10 only; "
                             "ADC2 does not work while WiFi is on)" % (ROLES[i], n))
        if n in (19, 20) or 26 <= n <= 32:
            raise BoardError("DINAMICS_%s: GPIO%d belongs to the %s" % (
                _key(i), n, "USB port" if n < 26 else "flash chip"))
        if i == MAINT_PIN and n in (0, 3, 45, 46):
            raise BoardError("DINAMICS_MAINT_PIN: GPIO%d is a strapping pin (GPIO0 held low at "
                             "reset starts the ROM bootloader and boot.py never runs)" % n)
        for j in range(i):
            if pins[j] == n:
                raise BoardError("GPIO%d is both %s and %s: set DINAMICS_%s (-1 = unused)" % (
                    n, ROLES[j], ROLES[i], _key(i)))


def _key(i):
    return "CT_PINS" if CT1 <= i <= CT3 else ROLES[i]


def pin(n, pin_mod):
    """GPIO number -> microcontroller.pin.GPIO<n> (None for 255)."""
    if n == NONE or n is None:
        return None
    return getattr(pin_mod, "GPIO%d" % n)


def describe(name, pins):
    """One console line: the board profile and the pins in use."""
    out = []
    for i in range(len(ROLES)):
        if pins[i] != NONE:
            out.append("%s=%d" % (ROLES[i], pins[i]))
    return "board %s: %s" % (name, " ".join(out))
