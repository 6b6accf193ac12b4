"""VM shim: CircuitPython's ssl.create_default_context() (the unix port has only SSLContext)."""
from _builtin import builtin

_ssl = builtin("ssl")
SSLContext = _ssl.SSLContext


def create_default_context():
    return _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
