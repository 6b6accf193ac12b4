"""Dinamics board entry: build the board port, wire the actors, run the scheduler forever."""
import gc

from dinamics.board_port import BoardPort
from dinamics.app import App

gc.collect()
port = BoardPort()
app = App(port)
port.start_watchdog(app.sched)
gc.collect()
app.run_forever()
