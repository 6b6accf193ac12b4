"""dinamics.settings keeps the settings table packed (docs/heap.md); read through it, the table is
exactly the declaration in dinamics.settings_table, row by row and topic by topic."""
import importlib
import os
import subprocess
import sys

from dinamics import settings as st

DEVICE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device")


def _declared():
    try:
        return importlib.import_module("dinamics.settings_table").TABLE
    finally:
        sys.modules.pop("dinamics.settings_table", None)


def test_the_declaration_is_dropped_once_read():
    code = ("import sys, dinamics, dinamics.settings as st; assert len(st.TABLE) > 70; "
            "assert 'dinamics.settings_table' not in sys.modules; "
            "assert not hasattr(dinamics, 'settings_table')")
    subprocess.run([sys.executable, "-c", code], cwd=DEVICE, check=True)


def test_rows_read_back_as_declared():
    decl = _declared()
    assert len(st.TABLE) == len(decl)
    assert tuple(st.TABLE) == decl
    assert st.NAMES == tuple(r[0] for r in decl)
    for i, r in enumerate(decl):
        assert st.TABLE[i] == r and st.row(r[st.NAME]) == r
        assert type(st.TABLE[i][st.TYPE]) is int and type(st.TABLE[i][st.FLAGS]) is int


def test_every_topic_finds_its_row_and_nothing_else_does():
    decl = _declared()
    for r in decl:
        if r[st.TOPIC]:
            assert st.by_topic(r[st.TOPIC]) == r
    # not "set_" + name: lcd is set_lcd_enabled; serial and web_pass are not settable over MQTT
    assert {r[st.NAME] for r in decl if r[st.TOPIC] != "set_" + r[st.NAME]} == {
        "lcd", "serial", "web_pass"}
    for topic in ("set_lcd", "set_serial", "set_web_pass", "", "set_", "set_foo", "SET_C_LIMIT",
                  "set_c_limit/extra", "c_limit", "lcd_enabled", b"set_c_limit"):
        assert st.by_topic(topic) is None, topic


def test_defaults_and_persisted_follow_the_declaration():
    decl = _declared()
    assert st.defaults() == {r[0]: r[5] for r in decl}
    s = st.Settings()
    assert s.persisted() == {}
    s.apply("c_limit", 20)
    s.apply("mqtt_host", "h")
    assert s.persisted() == {"c_limit": 20, "mqtt_host": "h"}
