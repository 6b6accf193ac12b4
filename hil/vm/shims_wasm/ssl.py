"""wasm stand-in: no TLS on the wasm port."""


def create_default_context():
    return None
