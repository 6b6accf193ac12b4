"""dinamics.mqtt_inbound.translate fuzzed directly (no scheduler, no broker): for every topic and
payload, retained or not, it never raises, is deterministic, and asks for exactly what the README
contract (the oracle in mqtt_fixtures.expect) says. Replies: the response bookkeeping."""
from hypothesis import HealthCheck, given, settings as hsettings

from dinamics import mqtt_inbound as inb
from dinamics import rapi
from dinamics import settings as st
from mqtt_fixtures import expect
from test_mqtt_fuzz import MESSAGES

_DEFAULTS = {r[st.NAME]: r[st.DEFAULT] for r in st.TABLE}
_ACTION_OF = {"set_enable": inb.CHARGE, "rapi_request": inb.RAPI, "set_t_limit": inb.LIMIT,
              "set_e_limit": inb.LIMIT, "set_lcd": inb.LCD, "erase_lcd": inb.LCD,
              "delete_settings": inb.RESET, "delete_wifi": inb.RESET}


@hsettings(max_examples=10000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(MESSAGES)
def test_translate_matches_the_contract(msg):
    sub, payload, retained = msg
    a = inb.translate(sub, payload, retained)
    assert a == inb.translate(sub, bytes(payload), retained)  # pure: same input, same answer
    exp = expect(_DEFAULTS, sub, payload, retained, plug=1)
    if exp[0] == "ignore":
        assert a is None
        return
    assert isinstance(a, tuple) and len(a) == 4 and a[1] == sub, (msg, a)
    act, _, text, arg = a
    row = st.by_topic(sub)
    try:
        utf8 = bytes(payload).decode("utf-8")
    except UnicodeError:
        utf8 = None
    if row is not None and utf8:
        # set_* values are validated by the settings actor, not here: every UTF-8 text is passed on
        assert a == (inb.SETTING, sub, utf8, row[st.NAME]), (msg, a)
        return
    if exp[0] == "error":
        assert act == inb.ERROR and isinstance(arg, str) and arg, (msg, a)
        return
    assert act != inb.ERROR, (msg, a)
    if sub.startswith("get_"):
        assert act == inb.REPORT and arg == sub[4:]
    elif exp[0] == "reset":
        assert act == inb.RESET
        assert arg == (st.RESET_SETTINGS if sub == "delete_settings" else st.RESET_WIFI)
    else:
        assert act == _ACTION_OF[sub], (msg, a)
        if act == inb.CHARGE:
            assert arg == exp[2] and arg in (1, 2, 3)
        elif act == inb.RAPI:
            toks = text.split()
            assert arg == ("mqtt:rapi", toks[0], tuple(toks[1:]) or None)
        elif act == inb.LIMIT:
            assert arg == (("mqtt:S3", "S3") if sub == "set_t_limit" else ("mqtt:SH", "SH")) + ((exp[2],),)
        elif act == inb.LCD:
            tag, cmds = arg
            assert tag == ("mqtt:lcd" if sub == "set_lcd" else "mqtt:erase") and cmds
            for cmd, args in cmds:
                assert cmd == "FP" and len(rapi.build(cmd, args, 0xFF)) <= rapi.MAX_LINE + 1


def test_translate_examples():
    assert inb.translate("set_breaker", b"") is None
    assert inb.translate("set_breaker", b"\xff") == (inb.ERROR, "set_breaker", b"\xff", "not UTF-8 text")
    assert inb.translate("set_breaker", b"272") == (inb.SETTING, "set_breaker", "272", "breaker")
    assert inb.translate("set_breaker", "25", True)[0] == inb.SETTING  # a retained value applies
    assert inb.translate("nope", b"1")[3] == "unknown topic"
    assert "retained" in inb.translate("set_enable", b"2", True)[3]
    assert inb.translate("set_enable", b"2") == (inb.CHARGE, "set_enable", "2", 2)
    assert inb.translate("get_status", b"1") == (inb.REPORT, "get_status", "1", "status")
    assert inb.translate("rapi_request", b"SL 2") == (inb.RAPI, "rapi_request", "SL 2", ("mqtt:rapi", "SL", ("2",)))
    assert inb.translate("rapi_request", b"SC 32")[0] == inb.ERROR
    assert inb.translate("set_update", b"1")[0] == inb.ERROR


def test_replies_one_per_request_one_per_lcd_text_and_refused_limits():
    r = inb.Replies()
    assert r.reply("balancer", True, [], "$OK") is None  # not an MQTT request
    assert r.reply("mqtt:rapi", True, ["1", "2"], "") == ("rapi_response", "$OK 1 2", None)
    assert r.reply("mqtt:rapi", None, (), "link down") == ("rapi_response", "No response from EVSE (link down)", None)
    for _ in range(3):
        r.sent("mqtt:lcd")
    assert r.reply("mqtt:lcd", True, [], "") is None
    assert r.reply("mqtt:lcd", False, [], "") is None
    assert r.reply("mqtt:lcd", True, [], "") == ("responseLCD", "$NK", None)  # the first failure
    r.sent("mqtt:S3", "4")
    r.sent("mqtt:SH", "10")
    assert r.reply("mqtt:S3", True, [], "") == ("responseST", "$OK", None)
    assert r.reply("mqtt:SH", False, [], "") == ("responseSH", "$NK", ("set_e_limit", "10", "EVSE refused: $NK"))
