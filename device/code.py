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
