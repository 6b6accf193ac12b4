"""Board profiles on CPython: fake `board` / `microcontroller.pin` modules shaped like the real
boards' (CircuitPython ports/espressif/boards/<board_id>/pins.c), so a profile that names a pin a
board lacks, or a Feather without IO names, fails here rather than on a bench."""
import sys
import types

import pytest

from dinamics import board_profiles as bp


class Pin:
    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return "board.GPIO%d" % self.n


PIN = types.ModuleType("microcontroller.pin")
for _n in range(49):
    setattr(PIN, "GPIO%d" % _n, Pin(_n))

# name -> GPIO of the board module, from the real pins.c (a subset: what the profiles use)
BOARDS = {
    "espressif_esp32s3_devkitc_1_n8r8": dict(
        [("IO%d" % n, n) for n in list(range(0, 22)) + list(range(35, 49))] + [("TX", 43), ("RX", 44)]),
    "adafruit_feather_esp32s3_4mbflash_2mbpsram": {
        "BUTTON": 0, "SDA": 3, "SCL": 4, "D5": 5, "D6": 6, "I2C_POWER": 7, "A5": 8, "D9": 9,
        "D10": 10, "D11": 11, "D12": 12, "LED": 13, "A4": 14, "A3": 15, "A2": 16, "A1": 17,
        "A0": 18, "MOSI": 35, "SCK": 36, "MISO": 37, "RX": 38, "TX": 39},
    "adafruit_qtpy_esp32s3_nopsram": {
        "BUTTON": 0, "A0": 18, "A1": 17, "A2": 9, "A3": 8, "SDA": 7, "SCL": 6, "TX": 5, "RX": 16,
        "MOSI": 35, "SCK": 36, "MISO": 37, "SCL1": 40, "SDA1": 41},
    "lolin_s3_mini": dict(
        [("IO%d" % n, n) for n in list(range(0, 19)) + [21, 33, 34, 35, 36, 37, 38, 47, 43, 44]]
        + [("SDA", 35), ("SCL", 36), ("SCK", 12), ("MOSI", 11), ("MISO", 13)]),
}


def fake_board(board_id):
    mod = types.ModuleType("board")
    mod.board_id = board_id
    for name, n in BOARDS.get(board_id, {}).items():
        setattr(mod, name, getattr(PIN, "GPIO%d" % n))
    return mod


def env(**kw):
    return dict(("DINAMICS_" + k, v) for k, v in kw.items()).get


def resolve(board_id, **kw):
    return bp.resolve(env(**kw), board_id, fake_board(board_id), PIN)


@pytest.mark.parametrize("board_id,name", [
    ("espressif_esp32s3_devkitc_1_n8r8", "devkitc"), ("espressif_esp32s3_devkitc_1_n8", "devkitc"),
    ("adafruit_feather_esp32s3_4mbflash_2mbpsram", "feather_s3"),
    ("adafruit_feather_esp32s3_nopsram", "feather_s3"), ("adafruit_qtpy_esp32s3_nopsram", "qtpy_s3"),
    ("adafruit_qtpy_esp32s3_4mbflash_2mbpsram", "qtpy_s3"), ("lolin_s3_mini", "lolin_s3_mini")])
def test_detected_from_board_id(board_id, name):
    assert resolve(board_id)[0] == name


@pytest.mark.parametrize("board_id", sorted(BOARDS))
def test_every_profile_pin_is_a_pin_the_board_exposes(board_id):
    """Each GPIO a profile uses is broken out on that board (it has a name in pins.c)."""
    name, pins = resolve(board_id)
    exposed = set(BOARDS[board_id].values())
    for i, n in enumerate(pins):
        if n != bp.NONE:
            assert n in exposed, "%s %s GPIO%d" % (name, bp.ROLES[i], n)
            assert bp.pin(n, PIN) is getattr(PIN, "GPIO%d" % n)
    assert all(1 <= pins[i] <= 10 for i in (bp.CT1, bp.CT2, bp.CT3))
    assert pins[bp.MAINT_PIN] not in (0, 3, 45, 46)


def test_feather_uses_its_tx_rx_and_analog_pins():
    name, pins = resolve("adafruit_feather_esp32s3_4mbflash_2mbpsram")
    b = BOARDS["adafruit_feather_esp32s3_4mbflash_2mbpsram"]
    assert (pins[bp.EVSE_TX], pins[bp.EVSE_RX]) == (b["TX"], b["RX"])
    assert [pins[i] for i in (bp.CT1, bp.CT2, bp.CT3)] == [b["A5"], b["D9"], b["D10"]]
    assert "EVSE_TX=39" in bp.describe(name, pins)


def test_devkitc_keeps_the_seed_wiring():
    pins = resolve("espressif_esp32s3_devkitc_1_n8r8")[1]
    assert (pins[bp.EVSE_TX], pins[bp.EVSE_RX], pins[bp.CT1], pins[bp.CT2], pins[bp.CT3]) == (16, 17, 1, 2, 3)


def test_dinamics_board_wins_over_detection_and_overrides_win_over_the_profile():
    name, pins = resolve("espressif_esp32s3_devkitc_1_n8r8", BOARD="lolin_s3_mini", EVSE_TX=4,
                         EVSE_RX="GPIO5", CT_PINS="IO6, 7,8", LCD_SDA=-1, LORA_CS="none")
    assert name == "lolin_s3_mini"
    assert (pins[bp.EVSE_TX], pins[bp.EVSE_RX]) == (4, 5)
    assert [pins[i] for i in (bp.CT1, bp.CT2, bp.CT3)] == [6, 7, 8]
    assert pins[bp.ROLES.index("LCD_SDA")] == bp.NONE and pins[bp.ROLES.index("LORA_CS")] == bp.NONE


def test_board_pin_names_work_in_overrides():
    pins = resolve("adafruit_qtpy_esp32s3_nopsram", CT_PINS="A2,A3,SCL", LORA_RST="SDA")[1]
    assert [pins[i] for i in (bp.CT1, bp.CT2, bp.CT3)] == [9, 8, 6]


def _error(board_id, **kw):
    with pytest.raises(bp.BoardError) as e:
        resolve(board_id, **kw)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_unknown_board_is_one_clear_line():
    text = _error("adafruit_feather_esp32s3_tft")
    assert "'adafruit_feather_esp32s3_tft' has no pin profile" in text and "DINAMICS_BOARD" in text
    assert "DINAMICS_BOARD = 'nosuch' is not a known board" in _error("lolin_s3_mini", BOARD="nosuch")


def test_custom_board_needs_the_required_pins():
    assert "DINAMICS_EVSE_TX is needed" in _error("whatever", BOARD="custom")
    pins = resolve("whatever", BOARD="custom", EVSE_TX=16, EVSE_RX=17, CT_PINS="1,2,3")[1]
    assert pins[bp.MAINT_PIN] == bp.NONE


@pytest.mark.parametrize("ct", ["11,2,3", "1,2,18", "0,1,2", "1,2,A0"])
def test_a_ct_pin_outside_adc1_is_refused(ct):
    text = _error("adafruit_feather_esp32s3_4mbflash_2mbpsram", CT_PINS=ct)
    assert "not an ADC1 pin (GPIO1-10 only" in text


def test_bad_pin_values():
    assert "no such pin on this board" in _error("adafruit_qtpy_esp32s3_nopsram", EVSE_TX="IO16x")
    assert "GPIO0-48" in _error("lolin_s3_mini", EVSE_TX=60)
    assert "give three pins" in _error("lolin_s3_mini", CT_PINS="1,2")
    assert "USB port" in _error("lolin_s3_mini", EVSE_RX=19)
    assert "flash chip" in _error("lolin_s3_mini", LORA_IRQ=30)


def test_maintenance_pin_on_a_strapping_pin_is_refused():
    text = _error("espressif_esp32s3_devkitc_1_n8r8", MAINT_PIN=0)
    assert "strapping pin" in text and "ROM bootloader" in text


def test_one_gpio_for_two_roles_is_refused():
    text = _error("adafruit_feather_esp32s3_4mbflash_2mbpsram", CT_PINS="3,9,10")
    assert "GPIO3 is both CT1 and LCD_SDA" in text and "DINAMICS_LCD_SDA" in text
    resolve("adafruit_feather_esp32s3_4mbflash_2mbpsram", CT_PINS="3,9,10", LCD_SDA=-1)


def test_board_port_builds_on_a_feather_without_io_names(monkeypatch, capsys):
    """The old board_port looked pins up as board.IO<n>: a Feather has none and crashed at start."""
    made = {}

    class UART:
        def __init__(self, tx, rx, **kw):
            made["uart"] = (tx, rx)

    busio = types.ModuleType("busio")
    busio.UART = UART
    mc = types.ModuleType("microcontroller")
    mc.pin = PIN
    board = fake_board("adafruit_feather_esp32s3_4mbflash_2mbpsram")
    assert not hasattr(board, "IO39")
    for name, mod in (("board", board), ("busio", busio), ("microcontroller", mc)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("os.getenv", env())
    monkeypatch.delitem(sys.modules, "dinamics.board_port", raising=False)
    import dinamics.board_port as board_port

    monkeypatch.delitem(sys.modules, "dinamics.board_port")
    port = board_port.BoardPort()
    assert made["uart"] == (PIN.GPIO39, PIN.GPIO38)
    assert port.ct_adc.pins == [PIN.GPIO8, PIN.GPIO9, PIN.GPIO10]
    assert port.pin("LCD_SDA") is PIN.GPIO3 and port.pin("LORA_IRQ") is PIN.GPIO12
    assert "board feather_s3: EVSE_TX=39 EVSE_RX=38 CT1=8" in capsys.readouterr().out


def test_profiles_stay_compact():
    """No large literal tables on the board: one 14-byte pin string per profile."""
    assert all(len(p[3]) == len(bp.ROLES) for p in bp.PROFILES)
    assert len(bp.NAMES) == len(set(bp.NAMES))


def test_getenv_reads_bare_integers_and_booleans_on_circuitpython_10_3(monkeypatch, capsys):
    """10.3: os.getenv gives only quoted strings (a bare 1 raises ValueError) and
    supervisor.get_setting parses; without supervisor (older CircuitPython, CPython) os.getenv."""
    values = {"DINAMICS_HIL": 1, "DINAMICS_MQTT_TLS": True, "DINAMICS_MQTT_HOST": "h"}

    def get_setting(key, default=None):
        if key == "BAD":
            raise ValueError("Invalid byte 'x'")
        return values.get(key, default)

    sup = types.ModuleType("supervisor")
    sup.get_setting = get_setting
    monkeypatch.setitem(sys.modules, "supervisor", sup)
    monkeypatch.setattr("os.getenv", lambda key: (_ for _ in ()).throw(ValueError("Expected quoted string")))
    assert bp.getenv("DINAMICS_HIL") == 1 and bp.getenv("DINAMICS_MQTT_TLS") == 1
    assert bp.getenv("DINAMICS_MQTT_HOST") == "h" and bp.getenv("NOPE") is None
    assert bp.getenv("BAD") is None
    assert "settings.toml BAD: unreadable value (Invalid byte 'x'); ignored" in capsys.readouterr().out
    monkeypatch.delitem(sys.modules, "supervisor")
    monkeypatch.setattr("os.getenv", {"DINAMICS_HIL": 1}.get)
    assert bp.getenv("DINAMICS_HIL") == 1


def _run_boot_py(monkeypatch, board_id, held, settings):
    """device/boot.py against fake board modules; returns (remounts, pins read, printed)."""
    import runpy
    import pathlib

    calls = {"remount": [], "read": [], "cdc": []}

    class DigitalInOut:
        def __init__(self, pin):
            calls["read"].append(pin)
            self.value = pin not in held

        def switch_to_input(self, pull=None):
            assert pull == "UP"

        def deinit(self):
            pass

    digitalio = types.ModuleType("digitalio")
    digitalio.DigitalInOut = DigitalInOut
    digitalio.Pull = types.SimpleNamespace(UP="UP")
    storage = types.ModuleType("storage")
    storage.remount = lambda path, readonly: calls["remount"].append((path, readonly))
    storage.disable_usb_drive = lambda: calls["remount"].append("no drive")
    usb_cdc = types.ModuleType("usb_cdc")
    usb_cdc.enable = lambda **kw: calls["cdc"].append(kw)
    usb_hid = types.ModuleType("usb_hid")
    usb_hid.disable = lambda: None
    mc = types.ModuleType("microcontroller")
    mc.pin = PIN
    for name, mod in (("board", fake_board(board_id)), ("digitalio", digitalio),
                      ("storage", storage), ("usb_cdc", usb_cdc), ("usb_hid", usb_hid),
                      ("microcontroller", mc)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("os.getenv", settings.get)
    runpy.run_path(str(pathlib.Path(__file__).resolve().parents[1] / "device" / "boot.py"))
    return calls


def test_boot_py_maintenance_pin_keeps_the_drive_for_the_pc(monkeypatch, capsys):
    feather = "adafruit_feather_esp32s3_nopsram"
    calls = _run_boot_py(monkeypatch, feather, held=(), settings={})
    assert calls["read"] == [PIN.GPIO14] and calls["remount"] == [("/", False)]
    calls = _run_boot_py(monkeypatch, feather, held=(PIN.GPIO14,), settings={})
    assert calls["remount"] == []
    assert "maintenance pin held" in capsys.readouterr().out
    # never GPIO0 (BOOT): a DevKitC reads GPIO15
    calls = _run_boot_py(monkeypatch, "espressif_esp32s3_devkitc_1_n8r8", held=(PIN.GPIO0,), settings={})
    assert calls["read"] == [PIN.GPIO15] and calls["remount"] == [("/", False)]


def test_boot_py_bad_pin_settings_still_give_the_firmware_its_filesystem(monkeypatch, capsys):
    calls = _run_boot_py(monkeypatch, "lolin_s3_mini", held=(PIN.GPIO0,),
                         settings={"DINAMICS_MAINT_PIN": 0})
    assert calls["read"] == [] and calls["remount"] == [("/", False)]
    assert "strapping pin" in capsys.readouterr().out
    calls = _run_boot_py(monkeypatch, "unknown_board", held=(), settings={"DINAMICS_HIL": 1})
    assert calls["remount"] == ["no drive", ("/", False)]
    assert calls["cdc"] == [{"console": True, "data": True}]
