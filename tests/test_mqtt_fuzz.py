"""Hypothesis fuzz of the bridge's message entry point (the code path the MiniMQTT callback calls):
>= 10 000 random or malformed payloads on every topic, retained or not. Nothing crashes, no setting
changes except by a valid value, every invalid input gets exactly one error reply naming its topic.
A smaller fuzz through a real broker is in test_mqtt_broker.py."""
from hypothesis import HealthCheck, given, settings as hsettings, strategies as hs

from dinamics import mqtt_topics as mt
from dinamics import settings as st
from mqtt_fixtures import BridgeRig, NoNetwork, apply_expectation, expect

SETTING_TOPICS = [r[st.TOPIC] for r in st.TABLE if r[st.TOPIC]]
COMMAND_TOPICS = [c[1] for c in mt.COMMANDS]
TOPICS = SETTING_TOPICS + COMMAND_TOPICS + ["set_nothing", "Set_breaker", "get_status/x"]


def _boundaries():
    out = ["", " ", "0", "1", "-0", "+1", "00016", " 16\n", "1e3", "0x10", "16.0", "nan", "∞", "١٦",
           "²", "0" * 40, "1" * 40, "01" * 20, "0" * 39, "2" * 40, "GV", "SL 2", "SC 32", "FR", "x"]
    for r in tuple(st.TABLE) + mt.COMMANDS:
        if r[st.TYPE] in (st.INT, st.BOOL):
            for v in (r[st.LO] - 1, r[st.LO], r[st.HI], r[st.HI] + 1):
                out.append(str(v))
        elif r[st.TYPE] == st.CHOICE:
            out.extend(str(v) for v in r[st.LO])
            out.append(str(max(r[st.LO]) + 1))
        elif r[st.TYPE] == st.STR:
            out.extend(("a" * r[st.HI], "a" * (r[st.HI] + 1), "a\x01b"))
    return sorted(set(out))


_text = hs.one_of(
    hs.integers(-10 ** 6, 10 ** 7).map(str),
    hs.sampled_from(_boundaries()),
    hs.text(max_size=80),
    hs.text(alphabet="012", min_size=38, max_size=42),
    hs.builds(lambda a, b, rest: a + b + rest, hs.sampled_from("FGSTZgx$ "),
              hs.sampled_from("0123ACDEFGHLPRSTUVYZ"), hs.text(alphabet=" 0123456789ABx:^$*", max_size=30)),
)
PAYLOADS = hs.one_of(_text.map(lambda t: t.encode("utf-8")), hs.binary(max_size=80))
_RAPI = ["GV", "GS", "GG", "GC", "GU", "G0", "GE", "GF", "GP", "GT", "GY", "SL 1", "SL 2", "SA 220 0",
         "S2 0", "T0 5", "FP 0 0 hi", "FB 2", "ST 0 0 0 0", "SV 230000"]


def _valid(row):
    """Payloads the contract accepts for a row (so valid changes get exercised too)."""
    t = row[st.TYPE]
    if row[1] == "rapi_request":
        return hs.sampled_from(_RAPI)
    if t in (st.INT, st.BOOL):
        return hs.integers(row[st.LO], row[st.HI]).map(str)
    if t == st.CHOICE:
        return hs.sampled_from(row[st.LO]).map(str)
    if t == st.BITS:
        return hs.text(alphabet="01", min_size=row[st.HI], max_size=row[st.HI])
    return hs.text(alphabet=hs.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=row[st.HI])


_VALID = hs.one_of([hs.tuples(hs.just(r[1]), _valid(r).map(lambda t: t.encode("utf-8")), hs.booleans())
                    for r in tuple(st.TABLE) + mt.COMMANDS if r[1]])
_RANDOM = hs.tuples(hs.sampled_from(TOPICS), PAYLOADS, hs.booleans())
MESSAGES = hs.integers(0, 2).flatmap(lambda i: _VALID if i == 0 else _RANDOM)  # 1/3 valid-shaped


class Fuzz:
    rig = None
    count = 0


def _rig():
    if Fuzz.rig is None:
        Fuzz.rig = BridgeRig(pool=NoNetwork, serial="FUZZ")
        Fuzz.rig.connect()
    return Fuzz.rig


@hsettings(max_examples=10000, deadline=None, database=None,
           suppress_health_check=list(HealthCheck))
@given(MESSAGES)
def test_fuzz_every_topic_10000_payloads(msg):
    sub, payload, retained = msg
    r = _rig()
    if not r.bridge.connected:  # a valid broker setting made it leave: back on the (fake) broker
        r.connect()
    before = dict(r.settings.values)
    exp = expect(before, sub, payload, retained, r.bridge.plug)
    out = r.send(sub, payload, retained)
    Fuzz.count += 1
    errors = r.errors(out)
    after = r.settings.values
    if exp[0] == "error":
        assert len(errors) == 1 and errors[0]["topic"] == sub, (msg, out)
        assert after == before, msg
    else:
        assert not errors, (msg, errors)
        want = dict(before)
        apply_expectation(want, exp)
        assert after == want, msg
    assert r.bridge.stats["handler_errors"] == 0
    assert sum(a.crashes for a in r.sched.actors) == 0
    assert all(len(p) < 200 for t, p, ret in out if t.endswith("/debug_log"))


def test_fuzz_ran_at_least_10000_payloads_and_nothing_crashed():
    # Runs after the fuzz above (file order): the shared rig saw every example.
    assert Fuzz.count >= 10000
    r = Fuzz.rig
    assert r.bridge.stats["handler_errors"] == 0
    assert sum(a.crashes for a in r.sched.actors) == 0 and sum(a.lost for a in r.sched.actors) == 0
