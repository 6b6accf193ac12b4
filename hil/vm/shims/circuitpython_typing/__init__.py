"""VM shim: see typing.py."""


def __getattr__(name):
    return None
