"""Dinamics bridge entry (settings.toml DINAMICS_ROLE = "bridge"; code.py hands over to it):
the board at the charger that carries RAPI between the radio and the controller's UART.
settings.toml seeds its settings (DINAMICS_LORA_KEY, DINAMICS_LORA_BAND, _SF, _BW)."""
import gc
import sys

from dinamics import board_profiles as bp
from dinamics.board_port import BoardPort

try:
    port = BoardPort()
except bp.BoardError as e:
    print("dinamics bridge: " + str(e))
    raise SystemExit(1)
import dinamics  # noqa: E402
from dinamics import first_boot  # noqa: E402

first_boot.seed(bp.getenv, port.fs, port.console)
del first_boot, bp
for _name in ("first_boot", "board_profiles"):
    sys.modules.pop("dinamics." + _name, None)
    if hasattr(dinamics, _name):
        delattr(dinamics, _name)
gc.collect()
from dinamics.bridge_app import BridgeApp  # noqa: E402

app = BridgeApp(port)
port.start_watchdog(app.sched)
gc.collect()
app.run_forever()
