"""Cross-field settings rules: checked on every `setting.set` AND when stored settings are loaded
(a hand-made or old settings file), so no combination of settings can stop the unit."""
from hypothesis import given, settings as hsettings, strategies as hst

from dinamics import messages as m
from dinamics import settings as st
from dinamics.mailbox import Actor, Scheduler
from dinamics.settings import MAX_POLL_MS, POLL_TIMERS, Settings
from dinamics.store import SlotStore
from actors.settings_actor import SettingsActor
from hil.clock import VirtualClock
from hil.host_fs import DirFs


class Sink(Actor):
    name = "sink"
    subscribes = (m.SETTING_REJECTED, m.SETTING_CHANGED)
    inbox_size = 256

    def __init__(self):
        super().__init__()
        self.errors = []
        self.changed = []

    def handle(self, kind, payload):
        (self.errors if kind == m.SETTING_REJECTED else self.changed).append(payload)


class Rig:
    def __init__(self, fs, settings=None):
        self.clock = VirtualClock()
        self.logs = []
        self.sched = Scheduler(self.clock, console=lambda lvl, t: self.logs.append((lvl, t)))
        self.store = SlotStore(fs)
        self.settings = settings if settings is not None else Settings(self.store.load())
        self.sink = self.sched.add(Sink())
        self.actor = self.sched.add(SettingsActor(self.settings, self.store))

    def set(self, name, raw):
        before = len(self.sink.errors)
        self.actor.set(name, raw)
        self.sched.run_once()
        return self.sink.errors[before:]

    def run(self, ms):
        for _ in range(ms // 100):
            self.clock.advance(100)
            self.sched.run_once()


def rules_hold(v):
    assert v["c_min_limit"] <= v["c_limit"]
    for t in POLL_TIMERS:
        assert v[t] * v["TFO"] <= MAX_POLL_MS, t
    assert v["link_silence_ms"] >= 2 * v["timer13"]


def test_the_defaults_obey_every_rule():
    rules_hold(st.defaults())
    assert Settings().fixes == []


def test_new_setting_link_silence_ms():
    r = st.row("link_silence_ms")
    assert r[st.TOPIC] == "set_link_silence_ms" and r[st.TYPE] == st.INT
    assert (r[st.LO], r[st.HI], r[st.DEFAULT], r[st.UNIT]) == (1000, 60000, 3000, "ms")
    assert r[st.FLAGS] & st.PERSIST
    assert st.by_topic("set_link_silence_ms") == r


def test_timer_times_tfo_above_the_limit_is_refused_with_the_product_in_the_text(tmp_path):
    rig = Rig(DirFs(tmp_path))
    assert rig.set("timer5", "500000") == []  # x TFO 30 = 15 000 000 ms: fine
    errs = rig.set("TFO", "1000")  # the testers' case: 500 000 000 ms would overflow ticks_add
    assert len(errs) == 1
    name, value, text = errs[0]
    assert name == "TFO" and value == "1000"  # the bridge reports it under set_TFO
    assert "timer5 x TFO" in text and "500000000" in text and "86400000" in text
    assert rig.settings.get("TFO") == 30
    # and from the other side: TFO first, then the timer
    assert rig.set("timer5", "200000") == []
    assert rig.set("TFO", "400") == []
    errs = rig.set("timer8", "300000")
    assert errs and "timer8 x TFO" in errs[0][2] and "86400000" in errs[0][2]
    assert rig.settings.get("timer8") == 200000
    assert rig.set("timer8", "216000") == []  # exactly 24 h is allowed


def test_link_silence_against_timer13_both_directions(tmp_path):
    rig = Rig(DirFs(tmp_path))
    errs = rig.set("link_silence_ms", "999")
    assert errs and "out of range" in errs[0][2]
    assert rig.set("timer13", "1500") == []  # 3000 >= 2 x 1500
    errs = rig.set("link_silence_ms", "2999")
    assert errs and "2 x timer13" in errs[0][2] and "3000" in errs[0][2]
    assert rig.settings.get("link_silence_ms") == 3000
    errs = rig.set("timer13", "1501")
    assert errs and "link_silence_ms" in errs[0][2]
    assert rig.settings.get("timer13") == 1500
    assert rig.set("link_silence_ms", "20000") == []
    assert rig.set("timer13", "10000") == []


_NAMES = ("c_limit", "c_min_limit", "TFO", "timer13", "link_silence_ms") + POLL_TIMERS


@hsettings(max_examples=150, deadline=None)
@given(hst.lists(hst.tuples(hst.sampled_from(_NAMES), hst.integers(0, 600000)), max_size=25))
def test_no_sequence_of_accepted_sets_breaks_a_rule(ops):
    clock = VirtualClock()
    sched = Scheduler(clock)

    class NullStore:
        def save(self, d):
            pass

    s = Settings()
    actor = sched.add(SettingsActor(s, NullStore()))
    for name, v in ops:
        r = st.row(name)
        raw = str(min(max(v, r[st.LO]), r[st.HI]) if v % 3 else v)  # mostly in range
        actor.set(name, raw)
        rules_hold(s.values)


def test_load_repairs_min_above_max_and_reports_it():
    s = Settings({"c_min_limit": 20, "c_limit": 10})
    assert s.get("c_min_limit") == 10 and s.get("c_limit") == 10
    assert s.fixes == [("c_min_limit", 20, 10)]


def test_load_repairs_a_timer_product_over_the_limit():
    # timer5's default x 400 is still below 24 h: only the timer goes back to its default
    s = Settings({"timer5": 500000, "timer7": 300000, "TFO": 400})
    assert (s.get("timer5"), s.get("timer7"), s.get("TFO")) == (200000, 30000, 400)
    assert s.fixes == [("timer5", 500000, 200000), ("timer7", 300000, 30000)]
    # the testers' file: even timer5's default x 1000 is too long, so TFO goes back instead
    s = Settings({"timer5": 500000, "TFO": 1000})
    assert (s.get("timer5"), s.get("TFO")) == (500000, 30)
    assert s.fixes == [("TFO", 1000, 30)]
    rules_hold(s.values)


def test_load_repairs_timer13_against_link_silence_and_out_of_range_values():
    s = Settings({"timer13": 5000, "link_silence_ms": 4000, "breaker": 500, "cte": "x"})
    assert s.get("timer13") == 500 and s.get("link_silence_ms") == 4000
    assert s.get("breaker") == 16 and s.get("cte") == 0
    assert ("timer13", 5000, 500) in s.fixes
    assert ("breaker", 500, 16) in s.fixes and ("cte", "x", 0) in s.fixes
    rules_hold(s.values)


@hsettings(max_examples=200, deadline=None)
@given(hst.dictionaries(hst.sampled_from(_NAMES + ("breaker",)),
                        hst.one_of(hst.integers(-10, 10**7), hst.text(max_size=3)), max_size=10))
def test_any_stored_file_loads_into_settings_that_obey_every_rule(stored):
    s = Settings(stored)
    rules_hold(s.values)
    for name, used in ((n, u) for n, _stored, u in s.fixes):
        assert s.get(name) == used or name in ("TFO",) + POLL_TIMERS  # a timer may be fixed twice
    for name, v in stored.items():
        if all(f[0] != name for f in s.fixes):
            assert s.get(name) == v  # what was not reported was used as stored


def test_settings_actor_logs_the_repairs_at_start_and_stores_what_it_uses(tmp_path):
    fs = DirFs(tmp_path)
    SlotStore(fs).save({"c_min_limit": 20, "c_limit": 10, "timer5": 500000, "TFO": 1000})
    rig = Rig(fs)
    text = "\n".join(t for _lvl, t in rig.logs)
    assert "c_min_limit=20" in text and "using 10" in text
    assert "TFO=1000" in text and "using 30" in text
    assert all(lvl == m.WARNING for lvl, t in rig.logs if "refused" in t)
    rig.run(2000)  # the coalescing delay
    stored = SlotStore(fs).load()
    assert stored["c_min_limit"] == 10 and "TFO" not in stored and stored["timer5"] == 500000
    # the next start finds nothing to repair and says nothing
    rig2 = Rig(fs)
    assert rig2.settings.fixes == [] and not any("refused" in t for _l, t in rig2.logs)


def test_a_burst_of_changes_and_delete_settings_lose_no_message():
    # Defect: every demo start printed "inbox full: ct_meter lost setting.changed", and
    # delete_settings with many non-default values made rapi_link and balancer lose 10-12 each.
    from dinamics import messages as m
    from dinamics import settings as st
    from hil.world import World

    w = World(ct=True, latency=False, stalls=False)
    try:
        w.run_until(lambda: w.app.rapi.up, 10000)
        burst = [("breaker", "25"), ("cte", "123"), ("c_limit", "32"), ("dinamics", "1"),
                 ("timer7", "2000"), ("timer9", "3000"), ("TFO", "10"), ("timer5", "5000"),
                 ("timer6", "6000"), ("timer8", "8000"), ("hb_interval", "6"), ("hb_amps", "7"),
                 ("calibration", "544"), ("ct_cycles", "4"), ("stale_ms", "2000"), ("timer1", "2000"),
                 ("timer2", "2000"), ("timer3", "2000"), ("timer4", "2000"), ("min_off_ms", "1000"),
                 ("solar_start", "8"), ("resume_margin", "2"), ("nwpc", "1"), ("neg_amp", "1")]
        for name, raw in burst:  # as the MQTT bridge would post them, all in one pass
            w.sched.post(m.SETTING_SET, (name, raw, "mqtt"))
        w.run_for(2000)
        assert [w.app.settings.get(n) for n, _ in burst] == [st.parse(st.row(n), v) for n, v in burst]
        w.sched.post(m.SETTING_SET, (st.RESET_SETTINGS, "1", "mqtt"))
        w.run_for(7000)
        assert w.app.settings.get("TFO") == 30 and w.app.rapi.poll_interval("GG") == 30000 * 30
        assert w.sched.stats()["lost"] == 0
        assert not [x for x in w.console.lines if "inbox full" in x]
    finally:
        w.close()


def test_load_code_is_not_resident_after_the_load():
    """The stored-value checks and repairs (dinamics.settings_load) run once at boot and are
    dropped after (heap, docs/heap.md); a second load imports them again."""
    import sys

    s = Settings({"c_min_limit": 20, "c_limit": 10})
    assert s.fixes == [("c_min_limit", 20, 10)]
    assert "dinamics.settings_load" not in sys.modules
    assert s.load({"breaker": 500}) == [("breaker", 500, 16)]
    assert "dinamics.settings_load" not in sys.modules
