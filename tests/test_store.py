"""Power-safe two-slot settings store: torn writes at every byte, flipped bytes, wrap, FlashFs."""

import os

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from dinamics import store as store_mod  # noqa: E402
from dinamics.store import HDR_SIZE, MAGIC, FlashFs, SlotStore, StoreError, seq_newer  # noqa: E402
from hil.host_fs import CuttingFs, DirFs, PowerCut  # noqa: E402

A, B = "settings.a", "settings.b"

DICTS = [
    {"mode": "solar", "max_a": 32},
    {"mode": "eco", "max_a": 16, "wifi": {"ssid": "home", "psk": "secret-passphrase"}, "ct": [1, 2, 3]},
    {},
    {"x": 1},
    {"name": "d\u00e9j\u00e0 vu \u2603", "f": 1.5, "neg": -7, "none": None, "ok": True, "l": [[], {}]},
    {"mode": "fast", "max_a": 6, "pad": "z" * 300},
]


def _reboot_load(fs):
    """A fresh store (as after a reboot) on fs; returns its load()."""
    return SlotStore(fs).load()


def _record_len(fs, d):
    scratch = fs.copy()
    SlotStore(scratch).save(d)
    return len(scratch.files[scratch.writes[-1]])


# --- basics ------------------------------------------------------------------------------------
def test_empty_store_loads_none():
    s = SlotStore(CuttingFs())
    assert s.load() is None
    assert s.slot is None and s.seq == 0
    assert s.stats == {"loads": 1, "saves": 0, "corrupt_slots_seen": 0}


def test_sequence_increments_and_slots_alternate():
    fs = CuttingFs()
    s = SlotStore(fs)
    seqs = [s.save(d) for d in DICTS]
    assert seqs == list(range(1, len(DICTS) + 1))
    assert fs.writes == [A, B] * (len(DICTS) // 2)
    assert _reboot_load(fs) == DICTS[-1]
    # both slots valid, the older one still holds the previous dict
    assert SlotStore(fs)._parse(fs.files[A])[1] == DICTS[-2]
    assert s.stats["saves"] == len(DICTS)
    # a store that loaded first continues the sequence in the other slot
    s2 = SlotStore(fs)
    s2.load()
    assert (s2.seq, s2.slot) == (len(DICTS), 1)
    assert s2.save({"k": 1}) == len(DICTS) + 1
    assert fs.writes[-1] == A


def test_record_layout():
    fs = CuttingFs()
    SlotStore(fs).save({"a": 1})
    rec = fs.files[A]
    assert rec[:4] == MAGIC
    import binascii
    import struct

    magic, seq, n, crc = struct.unpack(">4sIHI", rec[:HDR_SIZE])
    assert (seq, n) == (1, len(rec) - HDR_SIZE)
    assert crc == binascii.crc32(rec[HDR_SIZE:], binascii.crc32(rec[:10]))
    assert rec[HDR_SIZE:] == b'{"a":1}'


def test_erase_gives_empty_dict_and_keeps_sequence():
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"a": 1})
    s.save({"a": 2})
    assert s.erase() == 3
    assert _reboot_load(fs) == {}
    assert fs.writes == [A, B, A]
    assert s.save({"b": 1}) == 4
    assert _reboot_load(fs) == {"b": 1}


def test_erase_on_empty_store():
    fs = CuttingFs()
    assert SlotStore(fs).erase() == 1
    assert _reboot_load(fs) == {}


def test_both_slots_corrupt_gives_none():
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"a": 1})
    s.save({"a": 2})
    fs.flip(A, 20)
    fs.flip(B, 3)
    s2 = SlotStore(fs)
    assert s2.load() is None
    assert s2.stats["corrupt_slots_seen"] == 2
    # and it recovers with the next save
    s2.save({"a": 3})
    assert _reboot_load(fs) == {"a": 3}


def test_garbage_and_empty_slot_files_are_ignored():
    for junk in (b"", b"\x00" * 64, b"\xff" * 5000, b"DNS1", MAGIC + b"\x00" * 10, b"hello"):
        fs = CuttingFs({A: junk})
        s = SlotStore(fs)
        assert s.load() is None
        assert s.stats["corrupt_slots_seen"] == 1
        s.save({"ok": 1})
        assert fs.writes == [A]  # no valid record anywhere: slot A is simply reused
        assert _reboot_load(fs) == {"ok": 1}


def test_valid_crc_but_not_a_dict_is_ignored():
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"a": 1})
    # forge a CRC-valid record whose body is a JSON list / invalid JSON
    import binascii
    import struct

    for body in (b"[1,2]", b"{bad", b"\xff\xfe"):
        pre = struct.pack(">4sIH", MAGIC, 2, len(body))
        fs.files[B] = pre + struct.pack(">I", binascii.crc32(body, binascii.crc32(pre))) + body
        assert _reboot_load(fs) == {"a": 1}


def test_body_size_limit_and_bad_values():
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"a": 1})
    with pytest.raises(StoreError):
        s.save({"big": "x" * 5000})
    with pytest.raises(StoreError):
        s.save([1, 2])
    with pytest.raises(StoreError):
        s.save({"obj": object()})
    assert fs.writes == [A]  # nothing was written
    small = SlotStore(CuttingFs(), max_body=16)
    with pytest.raises(StoreError):
        small.save({"k": "0123456789abcdef"})
    # exactly at the limit is fine
    s.save({"big": "x" * (4096 - len('{"big":""}'))})
    assert _reboot_load(fs)["big"] == "x" * (4096 - 10)


def test_stats_counters():
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"a": 1})
    s.save({"a": 2})
    fs.flip(B, 0)
    assert s.load() == {"a": 1}
    assert s.load() == {"a": 1}
    assert s.stats == {"loads": 2, "saves": 2, "corrupt_slots_seen": 2}


# --- torn writes at every byte ------------------------------------------------------------------
@pytest.mark.parametrize("keep_old", [True, False], ids=["old-tail-kept", "truncated"])
def test_torn_write_at_every_byte(keep_old):
    fs = CuttingFs()
    prev = None
    cases = 0
    for i, d in enumerate(DICTS):
        n = _record_len(fs, d)
        for cut in range(n + 1):
            t = fs.copy()
            t.cut_next(cut, keep_old=keep_old)
            with pytest.raises(PowerCut):
                SlotStore(t).save(d)  # save without load first (scan inside save)
            got = _reboot_load(t)
            if prev is None:
                assert got is None or got == d, (i, cut)
            else:
                assert got is not None, (i, cut)
                assert got == prev or got == d, (i, cut, got)
            if cut == n:
                assert got == d, (i, cut)
            # the device keeps working after the reboot: next save lands and is newest
            s2 = SlotStore(t)
            s2.load()
            s2.save({"after": i, "cut": cut})
            assert _reboot_load(t) == {"after": i, "cut": cut}
            cases += 1
        s = SlotStore(fs)
        s.load()
        s.save(d)
        assert _reboot_load(fs) == d
        prev = d
    assert cases > 500


@pytest.mark.parametrize("keep_old", [True, False])
def test_torn_write_after_loaded_store(keep_old):
    """Same with a long-lived store object: cut, then the same object saves again (no reboot)."""
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"v": 0})
    s.save({"v": 1})
    n = _record_len(fs, {"v": 2})
    for cut in range(n + 1):
        t = fs.copy()
        st_ = SlotStore(t)
        assert st_.load() == {"v": 1}
        t.cut_next(cut, keep_old=keep_old)
        with pytest.raises(PowerCut):
            st_.save({"v": 2})
        assert _reboot_load(t) in ({"v": 1}, {"v": 2})
        st_.save({"v": 3})
        assert _reboot_load(t) == {"v": 3}


def test_repeated_torn_writes_never_lose_last_good():
    """Many consecutive cuts to the same pending save: the last good record survives them all."""
    fs = CuttingFs()
    SlotStore(fs).save({"good": 1})
    SlotStore(fs).save({"good": 2})
    for cut in range(0, 40, 3):
        fs.cut_next(cut, keep_old=cut % 2 == 0)
        with pytest.raises(PowerCut):
            SlotStore(fs).save({"pending": cut, "pad": "p" * 30})
        assert _reboot_load(fs) == {"good": 2}


# --- flipped bytes --------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF, 0x5A])
def test_flip_every_byte_of_each_slot(mask):
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save(DICTS[1])  # slot A, seq 1
    s.save(DICTS[4])  # slot B, seq 2 (newest)
    for name, other in ((B, DICTS[1]), (A, DICTS[4])):
        for i in range(len(fs.files[name])):
            t = fs.copy()
            t.flip(name, i, mask)
            s2 = SlotStore(t)
            assert s2.load() == other, (name, i)
            assert s2.stats["corrupt_slots_seen"] == 1
            # the next save must not touch the surviving good slot
            s2.save({"next": i})
            assert t.writes[-1] == name
            assert _reboot_load(t) == {"next": i}


def test_flipped_byte_during_write_keeps_previous():
    fs = CuttingFs()
    SlotStore(fs).save({"v": 1})
    n = _record_len(fs, {"v": 2})
    for i in range(n):
        t = fs.copy()
        t.flip_next(i, 0x10)
        SlotStore(t).save({"v": 2})
        assert _reboot_load(t) == {"v": 1}


def test_newest_slot_going_bad_after_load_is_not_trusted_by_save():
    """save() re-reads the slots: if the newest went bad since load(), it overwrites *that* one."""
    fs = CuttingFs()
    s = SlotStore(fs)
    s.save({"v": 1})  # A
    s.save({"v": 2})  # B
    assert s.load() == {"v": 2}
    fs.flip(B, 16)  # bit rot in the newest slot after load()
    fs.cut_next(5, keep_old=False)
    with pytest.raises(PowerCut):
        s.save({"v": 3})
    assert fs.writes[-1] == B  # the only good record (A) was left alone
    assert _reboot_load(fs) == {"v": 1}


# --- sequence wrap ---------------------------------------------------------------------------------
def test_seq_newer():
    assert seq_newer(2, 1) and not seq_newer(1, 2)
    assert seq_newer(0, 0xFFFFFFFF) and not seq_newer(0xFFFFFFFF, 0)
    assert seq_newer(3, 0xFFFFFFFE)
    assert not seq_newer(5, 5)


def test_sequence_wraps_from_ffffffff_to_0():
    fs = CuttingFs()
    s = SlotStore(fs)
    s.seq = 0xFFFFFFFD  # nothing on flash: continues from the known seq
    assert s.save({"v": "fe"}) == 0xFFFFFFFE
    assert s.save({"v": "ff"}) == 0xFFFFFFFF
    assert _reboot_load(fs) == {"v": "ff"}
    assert SlotStore(fs).save({"v": 0}) == 0
    s3 = SlotStore(fs)
    assert s3.load() == {"v": 0}
    assert (s3.seq, s3.slot) == (0, 0)
    # torn write across the wrap still falls back to seq 0
    for cut in range(_record_len(fs, {"v": 1})):
        t = fs.copy()
        t.cut_next(cut, keep_old=True)
        with pytest.raises(PowerCut):
            SlotStore(t).save({"v": 1})
        assert _reboot_load(t) in ({"v": 0}, {"v": 1})
    assert SlotStore(fs).save({"v": 1}) == 1
    assert _reboot_load(fs) == {"v": 1}


# --- hypothesis --------------------------------------------------------------------------------------
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**31), max_value=2**31 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_dicts = st.dictionaries(st.text(max_size=10), _json, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(_dicts, min_size=0, max_size=4),
    new=_dicts,
    cut_frac=st.floats(min_value=0, max_value=1.2),
    keep_old=st.booleans(),
    flip_after=st.none() | st.tuples(st.booleans(), st.integers(min_value=0, max_value=10**6)),
)
def test_random_dicts_random_cuts(history, new, cut_frac, keep_old, flip_after):
    fs = CuttingFs()
    for d in history:
        SlotStore(fs).save(d)
    prev = history[-1] if history else None
    n = _record_len(fs, new)
    cut = int(n * cut_frac)
    fs.cut_next(cut, keep_old=keep_old)
    with pytest.raises(PowerCut):
        SlotStore(fs).save(new)
    got = _reboot_load(fs)
    if prev is None:
        assert got in (None, new)
    else:
        assert got == prev or got == new
    if cut >= n:
        assert got == new
    # additionally rot one byte of the slot that was just written: still prev or new
    if flip_after is not None and fs.files.get(fs.writes[-1]):
        name = fs.writes[-1]
        fs.flip(name, flip_after[1] % len(fs.files[name]), 0x01 if flip_after[0] else 0xFF)
        got = _reboot_load(fs)
        assert got in ((None, new) if prev is None else (prev, new))
    # and the store keeps working
    SlotStore(fs).save({"z": 1})
    assert _reboot_load(fs) == {"z": 1}


# --- real files ----------------------------------------------------------------------------------------
def test_flashfs_round_trip(tmp_path):
    fs = FlashFs(str(tmp_path))
    assert fs.read("missing") is None
    s = SlotStore(fs)
    assert s.load() is None
    for d in DICTS:
        s.save(d)
    assert SlotStore(FlashFs(str(tmp_path) + "/")).load() == DICTS[-1]
    assert sorted(os.listdir(tmp_path)) == [A, B]
    # tear the newest file on disk: the older one comes back
    newest = tmp_path / B
    newest.write_bytes(newest.read_bytes()[:7])
    s2 = SlotStore(FlashFs(str(tmp_path)))
    assert s2.load() == DICTS[-2]
    assert s2.stats["corrupt_slots_seen"] == 1
    s2.save({"again": True})
    assert SlotStore(FlashFs(str(tmp_path))).load() == {"again": True}


def test_flashfs_custom_base(tmp_path):
    s = SlotStore(FlashFs(str(tmp_path)), base="wifi")
    s.save({"ssid": "x"})
    assert os.listdir(tmp_path) == ["wifi.a"]
    assert SlotStore(FlashFs(str(tmp_path)), base="wifi").load() == {"ssid": "x"}


def test_flashfs_read_only_raises_store_error(tmp_path, monkeypatch):
    fs = FlashFs(str(tmp_path))
    s = SlotStore(fs)
    s.save({"a": 1})

    def ro_open(path, mode="r", *a, **k):
        if "w" in mode:
            raise OSError(30, "Read-only filesystem")
        return open(path, mode, *a, **k)

    monkeypatch.setattr(store_mod, "open", ro_open, raising=False)
    with pytest.raises(StoreError, match="read-only"):
        s.save({"a": 2})
    monkeypatch.undo()
    assert SlotStore(FlashFs(str(tmp_path))).load() == {"a": 1}


def test_flashfs_missing_dir_raises_store_error(tmp_path):
    fs = FlashFs(str(tmp_path / "nope"))
    assert fs.read("settings.a") is None
    with pytest.raises(StoreError):
        SlotStore(fs).save({"a": 1})


def test_dirfs_round_trip_and_torn_file(tmp_path):
    d = tmp_path / "state"
    fs = DirFs(d)  # creates the directory
    assert fs.read(A) is None
    s = SlotStore(fs)
    s.save({"v": 1})
    s.save({"v": 2})
    assert SlotStore(DirFs(d)).load() == {"v": 2}
    # torn in place (partly new, old tail kept) on the newest slot
    raw = (d / B).read_bytes()
    (d / B).write_bytes(b"\x00" * 9 + raw[9:])
    assert SlotStore(DirFs(d)).load() == {"v": 1}
    SlotStore(DirFs(d)).save({"v": 3})
    assert SlotStore(DirFs(d)).load() == {"v": 3}
    assert (d / B).read_bytes()[:4] == MAGIC


def test_dirfs_write_error_is_store_error(tmp_path):
    f = tmp_path / "file"
    f.write_bytes(b"x")
    fs = DirFs(tmp_path)
    os.mkdir(tmp_path / A)  # a directory where the slot file should be
    with pytest.raises(StoreError):
        fs.write(A, b"data")
    assert fs.read(A) is None


def test_a_corrupt_slot_is_reported_once_on_the_console_and_the_error_topic(tmp_path):
    # Defect: a corrupt or hand-edited settings file was silently replaced by the other slot.
    from dinamics import messages as m
    from dinamics.store import SlotStore as Store
    from hil.host_fs import DirFs
    from hil.recorder import Recorder
    from hil.world import World

    fs = DirFs(str(tmp_path))
    st_ = Store(fs)
    st_.save({"breaker": 20})
    st_.save({"breaker": 25})  # newest in .b
    with open(str(tmp_path / "settings.b"), "r+b") as f:
        f.seek(20)
        f.write(b"\xff\xff")  # a flipped byte: .b is no longer valid
    w = World(state_dir=str(tmp_path), latency=False, stalls=False)
    try:
        rec = w.sched.add(Recorder("errs", (m.SETTING_REJECTED,)))
        w.run_for(100)
        assert w.app.settings.get("breaker") == 20  # the older, valid record
        lines = [x for x in w.console.lines if "settings.b corrupt" in x]
        assert len(lines) == 1 and "loaded settings.a (seq 1)" in lines[0]
        errs = [p for p in rec.of(m.SETTING_REJECTED) if p[0] == "settings"]
        assert errs == [("settings", "settings.b", "corrupt slot ignored; loaded settings.a (seq 1)")]
        w.run_for(10000)
        assert len([p for p in rec.of(m.SETTING_REJECTED) if p[0] == "settings"]) == 1  # once
    finally:
        w.close()
