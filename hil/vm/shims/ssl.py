"""VM shim: CircuitPython's ssl.create_default_context() (the unix port has only SSLContext)."""
from _builtin import builtin

_ssl = builtin("ssl")
SSLContext = _ssl.SSLContext


def create_default_context():
    return _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)


# adafruit_httpserver imports these "for CPython" and tests isinstance(error, SSLError) on every
# implementation but CircuitPython: the unix port's ssl has none (the web UI on the VM gate).
class SSLError(OSError):
    pass


CERT_NONE = getattr(_ssl, "CERT_NONE", 0)


class Purpose:
    CLIENT_AUTH = None
