"""settings.toml seeding (dinamics.first_boot) and the console's network line (actors.net_console),
on the host: a dict stands in for os.getenv, the real settings actor does the "MQTT" changes and
the real two-slot store keeps everything across "reboots"."""
import pathlib

import pytest

from dinamics import messages as m
from dinamics import first_boot as fb
from dinamics.mailbox import Actor, Scheduler
from dinamics.settings import Settings
from dinamics.store import SlotStore
from actors.net_console import NO_BROKER_EVERY, TICK_MS, NetConsole
from actors.settings_actor import SettingsActor
from hil.clock import VirtualClock
from hil.host_fs import CuttingFs, DirFs


class Unit:
    """One boot of a unit: seed from the file, then the settings as App builds them."""

    def __init__(self, fs, toml):
        self.lines = []
        self.changed = fb.seed(dict(toml).get, fs, lambda lvl, t: self.lines.append((lvl, t)))
        self.clock = VirtualClock()
        self.sched = Scheduler(self.clock, console=lambda lvl, t: None)
        self.store = SlotStore(fs)
        self.settings = Settings(self.store.load())
        self.actor = self.sched.add(SettingsActor(self.settings, self.store))

    def mqtt_set(self, name, raw):
        """What mqtt_bridge does with set_<name>: a setting.set, then the store write (≥ 1 s)."""
        assert self.actor.set(name, raw, "mqtt") is not None
        for _ in range(70):
            self.clock.advance(100)
            self.sched.run_once()
        assert self.actor.writes >= 1

    def get(self, name):
        return self.settings.get(name)

    def text(self):
        return "\n".join(t for _, t in self.lines)


BROKER = {"DINAMICS_MQTT_HOST": "broker.lan", "DINAMICS_MQTT_PORT": 8883, "DINAMICS_MQTT_TLS": 1,
          "DINAMICS_MQTT_USER": "unit", "DINAMICS_MQTT_PASS": "s3cret", "DINAMICS_SERIAL": "GARAGE-1"}


def test_first_boot_seeds_every_key_and_the_app_uses_them(tmp_path):
    fs = DirFs(str(tmp_path))
    u = Unit(fs, BROKER)
    assert u.changed
    assert (u.get("mqtt_host"), u.get("mqtt_port"), u.get("mqtt_tls"), u.get("mqtt_user"),
            u.get("mqtt_pass"), u.get("serial")) == ("broker.lan", 8883, 1, "unit", "s3cret", "GARAGE-1")
    assert "settings.toml DINAMICS_MQTT_HOST='broker.lan' stored" in u.text()
    assert "s3cret" not in u.text()  # a secret is never printed
    # the next boot with the same file: nothing to do, nothing said, no flash write
    u2 = Unit(fs, BROKER)
    assert not u2.changed and u2.lines == [] and u2.get("mqtt_host") == "broker.lan"


def test_no_file_keys_means_no_store_access():
    fs = CuttingFs()
    lines = []
    assert fb.seed({}.get, fs, lambda lvl, t: lines.append(t)) is False
    assert fs.writes == [] and lines == []


def test_a_value_set_over_mqtt_wins_over_the_file_and_the_difference_is_reported(tmp_path):
    fs = DirFs(str(tmp_path))
    Unit(fs, BROKER).mqtt_set("mqtt_host", "cloud.example")
    u = Unit(fs, BROKER)
    assert u.get("mqtt_host") == "cloud.example" and not u.changed
    warn = [t for lvl, t in u.lines if lvl == m.WARNING]
    assert warn == ["settings.toml DINAMICS_MQTT_HOST='broker.lan' ignored: the stored value "
                    "'cloud.example' (set over MQTT) wins; give DINAMICS_RESEED a new value to use the file"]
    # an edit of the file does not beat the MQTT value either
    u = Unit(fs, dict(BROKER, DINAMICS_MQTT_HOST="other.lan"))
    assert u.get("mqtt_host") == "cloud.example" and "'other.lan' ignored" in u.text()


def test_a_value_set_over_mqtt_to_the_default_is_not_reseeded(tmp_path):
    """The settings store keeps only non-default values: the seed record is what tells "never set"
    from "set to the default over MQTT" (here: the broker switched off)."""
    fs = DirFs(str(tmp_path))
    Unit(fs, BROKER).mqtt_set("mqtt_host", "")
    u = Unit(fs, BROKER)
    assert u.get("mqtt_host") == "" and "'broker.lan' ignored: the stored value ''" in u.text()


def test_an_edited_file_is_followed_while_mqtt_did_not_touch_the_value(tmp_path):
    fs = DirFs(str(tmp_path))
    Unit(fs, BROKER)
    u = Unit(fs, dict(BROKER, DINAMICS_MQTT_HOST="fixed.lan", DINAMICS_MQTT_PORT=1883))
    assert u.changed and (u.get("mqtt_host"), u.get("mqtt_port")) == ("fixed.lan", 1883)
    assert "DINAMICS_MQTT_PORT=1883 stored" in u.text()


def test_a_key_added_to_the_file_later_seeds_a_setting_never_stored(tmp_path):
    fs = DirFs(str(tmp_path))
    u = Unit(fs, {})
    u.mqtt_set("breaker", "25")  # unrelated settings are stored: the unit is not "new" any more
    u = Unit(fs, {"DINAMICS_MQTT_HOST": "broker.lan"})
    assert u.get("mqtt_host") == "broker.lan" and u.get("breaker") == 25


def test_mqtt_and_file_agreeing_is_adopted_so_later_file_edits_count(tmp_path):
    fs = DirFs(str(tmp_path))
    Unit(fs, BROKER).mqtt_set("mqtt_host", "new.lan")
    u = Unit(fs, dict(BROKER, DINAMICS_MQTT_HOST="new.lan"))  # the installer caught up
    assert u.lines == []
    u = Unit(fs, dict(BROKER, DINAMICS_MQTT_HOST="newer.lan"))
    assert u.get("mqtt_host") == "newer.lan"


def test_reseed_token_makes_the_file_win_once(tmp_path):
    fs = DirFs(str(tmp_path))
    Unit(fs, BROKER).mqtt_set("mqtt_host", "cloud.example")
    u = Unit(fs, dict(BROKER, DINAMICS_RESEED=1))
    assert u.get("mqtt_host") == "broker.lan" and "DINAMICS_RESEED=1" in u.text()
    u.mqtt_set("mqtt_host", "cloud2.example")
    u = Unit(fs, dict(BROKER, DINAMICS_RESEED=1))  # same token: once only
    assert u.get("mqtt_host") == "cloud2.example" and "ignored" in u.text()
    u = Unit(fs, dict(BROKER, DINAMICS_RESEED="2"))
    assert u.get("mqtt_host") == "broker.lan"


def test_bad_file_values_are_one_line_each_and_not_used(tmp_path):
    fs = DirFs(str(tmp_path))
    u = Unit(fs, {"DINAMICS_MQTT_PORT": 70000, "DINAMICS_MQTT_TLS": "yes", "DINAMICS_SERIAL": "a/b#",
                  "DINAMICS_MQTT_PASS": "x" * 65, "DINAMICS_MQTT_HOST": "ok.lan",
                  "DINAMICS_WEB_PASSWORD": "short"})
    warn = [t for lvl, t in u.lines if lvl == m.WARNING]
    assert warn == [
        "settings.toml DINAMICS_SERIAL='a/b#' refused: letters, digits, - and _ only; not used",
        "settings.toml DINAMICS_MQTT_PORT=70000 refused: out of range 1-65535; not used",
        "settings.toml DINAMICS_MQTT_PASS=*** refused: longer than 64 characters; not used",
        "settings.toml DINAMICS_MQTT_TLS='yes' refused: expected a whole number; not used",
        "settings.toml DINAMICS_WEB_PASSWORD refused: 8-63 characters; not used"]
    assert (u.get("mqtt_port"), u.get("mqtt_tls"), u.get("serial"), u.get("mqtt_pass"),
            u.get("mqtt_host")) == (1883, 0, "", "", "ok.lan")


def test_power_cut_between_the_two_records_never_turns_a_file_value_into_an_mqtt_one():
    fs = CuttingFs()
    fs_writes = []
    lines = []
    toml = {"DINAMICS_MQTT_HOST": "broker.lan"}.get
    fs.cut_next(10**6)  # the settings record lands, then the power goes
    assert fb.seed(toml, fs, lambda lvl, t: lines.append(t)) is False  # reported, not raised
    assert "not stored" in lines[-1]
    fs_writes.extend(fs.writes)
    # the seed record was never written; at the next boot the stored value equals the file's
    u = Unit(fs, {"DINAMICS_MQTT_HOST": "broker.lan"})
    assert u.get("mqtt_host") == "broker.lan" and not any("ignored" in t for _, t in u.lines)
    assert fs_writes == ["settings.a"]
    u = Unit(fs, {"DINAMICS_MQTT_HOST": "edited.lan"})  # adopted as the file's: edits count
    assert u.get("mqtt_host") == "edited.lan"


def test_a_read_only_drive_is_one_line_and_the_stored_settings_stay():
    class ReadOnly(CuttingFs):
        def write(self, name, data):
            from dinamics.store import StoreError
            raise StoreError("read-only filesystem writing /%s" % name)

    lines = []
    assert fb.seed({"DINAMICS_MQTT_HOST": "h"}.get, ReadOnly(), lambda lvl, t: lines.append(t)) is False
    assert lines[-1].startswith("settings.toml values not stored (read-only filesystem")


# --- the console's network line ---------------------------------------------------------------


class Port:
    def __init__(self):
        self.mac = b"\x24\x6f\x28\xaa\xbb\xcc"
        self.socket_pool = object()
        self.addr = ""

    def ip(self):
        return self.addr


class Poster(Actor):
    name = "poster"


def console_rig(**values):
    clock = VirtualClock()
    logs = []
    sched = Scheduler(clock, console=lambda lvl, t: logs.append(t))
    settings = Settings(values)
    port = Port()
    poster = sched.add(Poster())
    sched.add(NetConsole(settings, port))

    def run(ms):
        for _ in range(ms // 100):
            clock.advance(100)
            sched.run_once()

    return settings, port, poster, logs, run


def test_console_says_identity_and_no_broker_once_a_minute():
    settings, port, poster, logs, run = console_rig()
    assert logs == ["net_console: SN CCBBAA286F24 topics Dinamics/CCBBAA286F24/ ip none broker none "
                    "configured: set DINAMICS_MQTT_HOST in settings.toml"]
    run(TICK_MS * NO_BROKER_EVERY - 100)
    assert len(logs) == 1
    run(200)
    assert len(logs) == 2 and logs[1] == logs[0]
    run(TICK_MS * NO_BROKER_EVERY * 3)
    assert len(logs) == 5


def test_console_line_follows_ip_broker_state_and_identity_changes():
    settings, port, poster, logs, run = console_rig(mqtt_host="broker.lan", serial="GARAGE-1")
    assert logs[-1].endswith("SN GARAGE-1 topics Dinamics/GARAGE-1/ ip none broker mqtt://broker.lan:1883 connecting")
    port.addr = "192.168.1.20"
    run(TICK_MS + 100)
    assert logs[-1].endswith("ip 192.168.1.20 broker mqtt://broker.lan:1883 connecting")
    poster.post(m.NET_STATUS, True)
    run(100)
    assert logs[-1].endswith("connected")
    n = len(logs)
    run(TICK_MS * 20)
    assert len(logs) == n  # nothing changed: nothing said (a broker is configured)
    poster.post(m.NET_STATUS, False)
    run(100)
    assert logs[-1].endswith("lost, reconnecting")
    poster.post(m.NET_STATUS, True)
    run(100)
    settings.apply("serial", "SHED-2")  # what the settings actor does on set_* (shared Settings)
    settings.apply("mqtt_tls", 1)
    run(TICK_MS)  # seen at the next look (≤ 10 s), the state starts over
    assert "SN SHED-2 topics Dinamics/SHED-2/" in logs[-1] and "mqtts://broker.lan:1883 connecting" in logs[-1]
    n = len(logs)
    settings.apply("breaker", 25)
    run(TICK_MS * 2)
    assert len(logs) == n
    poster.post(m.NET_STATUS, True)
    run(100)
    assert logs[-1].endswith("mqtts://broker.lan:1883 connected")


# --- code.py end to end (fake board modules) --------------------------------------------------


def test_code_py_on_a_feather_seeds_prints_and_drops_the_boot_modules(monkeypatch, tmp_path, capsys):
    """code.py as the board runs it, on CPython with a fake Feather ESP32-S3 (no board.IO names),
    settings.toml through os.getenv: the board line, the seeding, the net line, and the boot-time
    modules dropped from the heap before the app is built."""
    import runpy
    import sys
    import types

    import dinamics
    from dinamics import board_profiles
    from hil.host_fs import DirFs
    from test_board_profiles import PIN, fake_board

    uart = {}
    busio = types.ModuleType("busio")
    busio.UART = lambda tx, rx, **kw: uart.setdefault("pins", (tx, rx))
    mc = types.ModuleType("microcontroller")
    mc.pin, mc.watchdog, mc.reset = PIN, None, lambda: None
    storage = types.ModuleType("storage")
    storage.getmount = lambda path: types.SimpleNamespace(readonly=False)
    for name, mod in (("board", fake_board("adafruit_feather_esp32s3_nopsram")), ("busio", busio),
                      ("microcontroller", mc), ("storage", storage)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("os.getenv", {"DINAMICS_MQTT_HOST": "broker.lan", "DINAMICS_SERIAL": "GARAGE-1"}.get)
    # what code.py drops comes back after the test
    monkeypatch.setitem(sys.modules, "dinamics.board_profiles", board_profiles)
    monkeypatch.setattr(dinamics, "board_profiles", board_profiles, raising=False)
    monkeypatch.setitem(sys.modules, "dinamics.first_boot", fb)
    monkeypatch.setattr(dinamics, "first_boot", fb, raising=False)
    monkeypatch.delitem(sys.modules, "dinamics.board_port", raising=False)
    import dinamics.board_port as board_port
    from dinamics.app import App

    monkeypatch.delitem(sys.modules, "dinamics.board_port")
    monkeypatch.setitem(sys.modules, "dinamics.board_port", board_port)
    monkeypatch.setattr("dinamics.store.FlashFs", lambda root: DirFs(str(tmp_path)))  # board_init's
    ran = []
    monkeypatch.setattr(App, "run_forever", lambda self: ran.append(self))
    runpy.run_path(str(pathlib.Path(__file__).resolve().parents[1] / "device" / "code.py"),
                   run_name="__main__")
    out = capsys.readouterr().out
    assert uart["pins"] == (PIN.GPIO39, PIN.GPIO38)
    assert "board feather_s3: EVSE_TX=39 EVSE_RX=38 CT1=8 CT2=9 CT3=10" in out
    assert "settings.toml DINAMICS_MQTT_HOST='broker.lan' stored" in out
    assert ("net_console: SN GARAGE-1 topics Dinamics/GARAGE-1/ ip none broker none (no network "
            "on this unit)") in out
    app = ran[0]
    assert app.settings.get("mqtt_host") == "broker.lan"
    assert "dinamics.first_boot" not in sys.modules and "dinamics.board_profiles" not in sys.modules
    assert app.port.pin("LORA_CS") is PIN.GPIO5


def test_code_py_stops_with_one_line_on_an_unknown_board(monkeypatch, capsys):
    import runpy
    import sys
    import types

    from test_board_profiles import PIN, fake_board

    mc = types.ModuleType("microcontroller")
    mc.pin = PIN
    for name, mod in (("board", fake_board("adafruit_feather_esp32s3_tft")),
                      ("busio", types.ModuleType("busio")), ("microcontroller", mc),
                      ("storage", types.ModuleType("storage"))):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("os.getenv", {}.get)
    monkeypatch.delitem(sys.modules, "dinamics.board_port", raising=False)
    with pytest.raises(SystemExit):
        runpy.run_path(str(pathlib.Path(__file__).resolve().parents[1] / "device" / "code.py"))
    monkeypatch.delitem(sys.modules, "dinamics.board_port", raising=False)
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["dinamics: board 'adafruit_feather_esp32s3_tft' has no pin profile: set "
                   "DINAMICS_BOARD in settings.toml (devkitc, feather_s3, qtpy_s3, lolin_s3_mini, "
                   "custom; custom = give DINAMICS_EVSE_TX, DINAMICS_EVSE_RX and DINAMICS_CT_PINS)"]


def test_console_line_with_the_real_mqtt_bridge():
    """The bridge's own net.status drives the line: connect, then a new port over MQTT."""
    from mqtt_fixtures import BridgeRig, free_port

    r = BridgeRig(serial="RC", mqtt_host="127.0.0.1", mqtt_port=free_port())
    r.sched.add(NetConsole(r.settings, r.port))
    lines = lambda: [t for _, t in r.logs if t.startswith("net_console: ")]  # noqa: E731
    assert lines()[-1].endswith("ip %s broker mqtt://127.0.0.1:%d connecting" % (
        r.port.ip() or "none", r.settings.get("mqtt_port")))
    r.connect()
    assert lines()[-1].endswith("connected") and "SN RC topics Dinamics/RC/" in lines()[-1]
    new = free_port()
    r.send("set_mqtt_port", str(new))
    r.run(TICK_MS)
    assert ("broker mqtt://127.0.0.1:%d " % new) in lines()[-1]
    assert not lines()[-1].endswith(" connected")


def test_deleting_the_settings_files_makes_it_a_first_boot_again(tmp_path):
    fs = DirFs(str(tmp_path))
    Unit(fs, BROKER).mqtt_set("mqtt_host", "cloud.example")
    for name in ("settings.a", "settings.b"):
        if (tmp_path / name).exists():
            (tmp_path / name).unlink()
    u = Unit(fs, BROKER)  # the seed record still remembers broker.lan; nothing is stored
    assert u.get("mqtt_host") == "broker.lan" and "ignored" not in u.text()
