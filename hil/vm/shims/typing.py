"""VM shim: the adafruit libraries import typing names when sys.implementation.name is not
"circuitpython" (the unix VM says "micropython"); any name is None here."""


def __getattr__(name):
    return None
