"""VM shim: CircuitPython's watchdog module (the mode enum only)."""


class WatchDogMode:
    RAISE = 1
    RESET = 2
