"""python -m hil bundle: the CIRCUITPY folder is reproducible, complete and checked."""
import hashlib
import pathlib
import shutil
import subprocess

import pytest

from hil import bundle
from hil.__main__ import main

MICROPYTHON = shutil.which("micropython", path=str(pathlib.Path(bundle.sys.executable).parent))


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _manifest(root):
    entries = {}
    for line in (root / bundle.MANIFEST).read_text().splitlines():
        if line and not line.startswith("#"):
            digest, rel = line.split("  ", 1)
            entries[rel] = digest
    return entries


def test_two_runs_give_byte_identical_bundles(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "deeper" / "b"
    assert main(["bundle", str(a), "--board", "qtpy_s3"]) == 0
    assert main(["bundle", str(b), "--board", "qtpy_s3"]) == 0
    assert (a / bundle.MANIFEST).read_bytes() == (b / bundle.MANIFEST).read_bytes()
    assert _tree(a) == _tree(b)
    for rel in _tree(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    out = capsys.readouterr().out
    assert "files," in out and "bytes" in out
    # building again over an earlier bundle gives the same bytes too
    assert main(["bundle", str(a), "--board", "qtpy_s3"]) == 0
    assert (a / bundle.MANIFEST).read_bytes() == (b / bundle.MANIFEST).read_bytes()


def test_the_manifest_lists_every_file_with_its_sha256(tmp_path):
    out = tmp_path / "out"
    bundle.build(out, board="lolin_s3_mini")
    entries = _manifest(out)
    assert sorted(entries) == [f for f in _tree(out) if f != bundle.MANIFEST]
    for rel, digest in entries.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    text = (out / bundle.MANIFEST).read_text()
    assert "# lib adafruit-circuitpython-ticks==" in text
    assert "minimqtt" not in text  # our own MQTT client (docs/mqtt.md)
    names = set(entries)
    assert {"code.py", "boot.py", "settings.toml", "dinamics/board_profiles.py",
            "dinamics/first_boot.py", "actors/net_console.py", "lib/adafruit_ticks.py"} <= names
    device = sorted(p.relative_to(bundle.DEVICE).as_posix() for p in bundle.DEVICE.rglob("*.py"))
    assert set(device) <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_settings_toml_carries_the_chosen_board_and_its_pins(tmp_path):
    bundle.build(tmp_path / "f", board="feather_s3")
    text = (tmp_path / "f" / "settings.toml").read_text()
    assert 'DINAMICS_BOARD = "feather_s3"' in text and "# DINAMICS_EVSE_TX = 39 " in text
    assert '# DINAMICS_CT_PINS = "8,9,10"' in text and "# DINAMICS_LORA_IRQ = 12" in text
    bundle.build(tmp_path / "q", board="qtpy_s3")
    assert "# DINAMICS_LORA_IRQ = -1" in (tmp_path / "q" / "settings.toml").read_text()
    bundle.build(tmp_path / "d")  # no --board: detected from board.board_id
    text = (tmp_path / "d" / "settings.toml").read_text()
    assert '\n# DINAMICS_BOARD = "devkitc"' in text and '\nDINAMICS_BOARD' not in text


def test_lib_files_are_the_pinned_wheels_files(tmp_path):
    files = bundle.lib_files()
    from importlib import metadata

    for rel, data in files.items():
        mod = rel.split("/")[1].split(".")[0]
        dist = metadata.distribution(metadata.packages_distributions()[mod][0])
        assert dist.version == bundle.pins()[bundle._norm(dist.metadata["Name"])]


@pytest.mark.parametrize("argv,text", [
    (["bundle", "OUT", "--board", "nope"], "bundle: unknown board 'nope' (devkitc, feather_s3"),
    (["bundle"], "bundle: the following arguments are required: OUT"),
    (["bundle", "OUT", "--frob"], "bundle: unrecognized arguments: --frob"),
    (["bundle", "FILE"], "exists and is not a folder"),
    (["bundle", "FULL"], "is not empty and not a bundle (no MANIFEST.sha256): refusing to overwrite"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, argv, text):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "FULL").mkdir()
    (tmp_path / "FULL" / "mine.txt").write_text("keep me")
    argv = [str(tmp_path / a) if a in ("OUT", "FILE", "FULL") else a for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err, err
    assert (tmp_path / "FULL" / "mine.txt").read_text() == "keep me"
    assert not (tmp_path / "OUT").exists()


def test_mpy_bundle_is_reproducible_and_loads_on_micropython(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    bundle.build(a, mpy=True)
    bundle.build(b, mpy=True)
    assert (a / bundle.MANIFEST).read_bytes() == (b / bundle.MANIFEST).read_bytes()
    names = _manifest(a)
    assert "code.py" in names and "boot.py" in names  # entry files stay .py
    assert "dinamics/app.mpy" in names and "lib/adafruit_ticks.mpy" in names
    assert not [n for n in names if n.endswith(".py") and n not in bundle.ENTRY]
    assert "mpy (MicroPython/VM only)" in (a / bundle.MANIFEST).read_text()
    if MICROPYTHON is None:
        pytest.skip("no micropython binary in the venv")
    script = tmp_path / "t.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\nsys.path.insert(0, %r)\n"
        "import adafruit_ticks\nfrom dinamics import board_profiles, first_boot\n"
        "from dinamics.app import App\nprint(first_boot.__file__, adafruit_ticks.ticks_add(1, 2))\n"
        % (str(a), str(a / "lib")))
    r = subprocess.run([MICROPYTHON, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(a / "dinamics" / "first_boot.mpy"), "3"]
