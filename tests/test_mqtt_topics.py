"""The MQTT contract tables: the committed topic reference is what the generator makes of them,
and they cover the seed README's Requests, Settings and MessagesAndResponses tables."""
import os
import subprocess
import sys

from dinamics import mqtt_topics as mt
from dinamics import settings as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_docs_mqtt_topics_md_is_generated_from_the_tables():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_topics.py")],
                         capture_output=True, text=True, check=True).stdout
    with open(os.path.join(ROOT, "docs", "mqtt-topics.md")) as f:
        committed = f.read()
    assert committed == out, "run: .venv/bin/python tools/gen_topics.py --write"


# The first columns of the seed README's Requests, Settings and MessagesAndResponses tables
# (shared/seed/dinamics-readme.md), copied here so the check runs anywhere.
SEED = {
    "Requests": "get_status get_settings get_wifi get_debug rapi_request get_timers".split(),
    "Settings": ("set_enable set_breaker set_update set_update_spiffs set_t_limit set_e_limit "
                 "set_c_limit set_c_min_limit set_calibration set_timer "
                 + " ".join("set_timer%d" % i for i in range(1, 15))
                 + " set_plugandcharge set_nwpc set_neg_amp set_debug set_adjust set_autoupdate "
                 "set_TFO delete_settings delete_wifi set_lcd erase_lcd set_cte set_dinamics "
                 "set_lora").split(),
    "MessagesAndResponses": (
        "breaker fwversion current1 current2 current3 max_charging_current charging_current "
        "active_phases no_of_phases power energy enable timeout state connection debug_log synctime "
        "state_change settings timers wifi debug plugandcharge ip freeRAM responseEraseLCD "
        "responseGC responseG0 responseGG responseGS responseGU responseFD responseFE responseFS "
        "responseSC responseST responseSH rapi_response").split(),
}


# Seed-only topics this firmware does not publish, with the reason (docs/mqtt.md "Differences").
NOT_PUBLISHED = {
    "responseGC": "polls feed state/current/energy; use rapi_request GC",
    "responseG0": "as responseGC", "responseGG": "as responseGC", "responseGS": "as responseGC",
    "responseGU": "as responseGC",
    "responseFD": "set_enable goes through the balancer; the effect is on enable",
    "responseFE": "as responseFD", "responseFS": "as responseFD",
    "responseSC": "the balancer owns SC; the effect is on max_charging_current",
}


def test_the_tables_cover_the_seed_readme():
    ours_in = {r[st.TOPIC] for r in st.TABLE if r[st.TOPIC]} | {c[1] for c in mt.COMMANDS}
    assert set(SEED["Requests"]) <= ours_in
    assert set(SEED["Settings"]) <= ours_in
    published = {r[0] for r in mt.RESPONSES}
    missing = set(SEED["MessagesAndResponses"]) - published - set(NOT_PUBLISHED)
    assert not missing, missing
    assert not set(NOT_PUBLISHED) & published


def test_seed_glossary_keys_are_the_settings_json_keys():
    keys = [r[st.KEY] for r in st.TABLE if r[st.KEY] and mt._group(r) == "settings"]
    assert keys == ["B", "MAXC", "MINC", "C", "P&C", "NWPC", "NA", "A", "AU", "LCD", "TFO", "CTE",
                    "DA", "L"]


def test_retained_topics_are_the_ones_a_late_subscriber_needs():
    assert set(mt.RETAINED) == {"availability", "fwversion", "breaker", "plugandcharge", "enable",
                                "state", "connection", "settings"}


def test_rapi_allow_list():
    for ok in ("GV", "GS", "G0", "SL", "SA", "S2", "T0", "FP"):
        assert mt.rapi_allowed(ok)
    for bad in ("SC", "FE", "FD", "FS", "FR", "FF", "SY", "Z0", "SK", "S4", "S5", "F0", "F1"):
        assert not mt.rapi_allowed(bad)


def test_every_table_topic_has_its_host_side_text_and_no_stale_one():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import topics_help as th

    assert set(th.COMMAND_DOC) == {c[1] for c in mt.COMMANDS}
    assert set(th.RESPONSE_DOC) == {r[0] for r in mt.RESPONSES}
    assert all(len(c) == st.KEY for c in mt.COMMANDS)  # no text on the board
    assert all(len(r) == 2 for r in mt.RESPONSES)
