"""Dinamics board entry: settings.toml seeds the stored settings (first boot), build the board
port, wire the actors, run the scheduler forever."""
import gc
import sys

import storage

from dinamics import board_profiles as bp
from dinamics.board_port import BoardPort

gc.collect()
if bp.getenv("DINAMICS_ROLE") == "bridge":  # the board at the charger: radio <-> controller
    import bridge  # noqa: F401  (runs for ever)

    raise SystemExit(0)
# The whole firmware needs ~250 KB of heap built (docs/heap.md) plus what compiling its .py
# files takes at import; a board without PSRAM has ~150 KB and would die at a MemoryError
# somewhere during the imports. Say so at once instead (docs/board.md "Which board variant").
NEED_HEAP_KB = 320  # the LoRa bridge role above runs in far less
_mem_free = getattr(gc, "mem_free", None)  # CircuitPython / MicroPython (not CPython)
if _mem_free is not None and bp.getenv("DINAMICS_HEAP_CHECK") != 0:
    _heap_kb = (_mem_free() + gc.mem_alloc()) // 1024  # pyright: ignore[reportAttributeAccessIssue]
    if _heap_kb < NEED_HEAP_KB:
        print("dinamics: this board has %d KB of heap, the firmware needs %d KB: use the board's "
              "PSRAM variant (docs/board.md, Which board variant); stopped" % (_heap_kb, NEED_HEAP_KB))
        raise SystemExit(1)
try:
    port = BoardPort()
except bp.BoardError as e:  # unknown board or a bad pin: one line, then stop (fix settings.toml)
    print("dinamics: " + str(e))
    raise SystemExit(1)
if storage.getmount("/").readonly:
    print("dinamics: maintenance mode: the drive is writable from USB, settings are not stored")
import dinamics  # noqa: E402
from dinamics import first_boot  # noqa: E402 - boot-time only, like board_profiles

first_boot.seed(bp.getenv, port.fs, port.console)
del first_boot, bp
for _name in ("first_boot", "board_profiles"):  # drop them: ~9 KB of heap back
    sys.modules.pop("dinamics." + _name, None)
    if hasattr(dinamics, _name):
        delattr(dinamics, _name)
gc.collect()
from actors.net_console import NetConsole  # noqa: E402
from dinamics.app import App  # noqa: E402

app = App(port)
app.sched.add(NetConsole(app.settings, port))
port.start_watchdog(app.sched)
gc.collect()
app.run_forever()
