"""Shared parts of the web UI tests: a World stepped in REAL time by a background thread (so a
browser or a raw socket client can talk to the unit's web server meanwhile), and Chromium."""
import os
import queue
import socket
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(ROOT, "artifacts", "screenshots")  # git-ignored (docs/web.md)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Running:
    """world.step(step_ms) in a thread until close(); `call(fn)` runs fn(world) between two steps
    (the world is touched by that thread only) and returns its result."""

    def __init__(self, world, step_ms=5):
        self.world = world
        self.step_ms = step_ms
        self.q = queue.Queue()
        self.stop = threading.Event()
        self.error = None
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        try:
            while not self.stop.is_set():
                self.world.step(self.step_ms)
                while not self.q.empty():
                    fn, box, done = self.q.get_nowait()
                    try:
                        box.append(fn(self.world))
                    except Exception as e:  # noqa: BLE001 - handed back to the caller
                        box.append(e)
                    done.set()
        except Exception as e:  # noqa: BLE001
            self.error = e

    def call(self, fn, timeout=10):
        box, done = [], threading.Event()
        self.q.put((fn, box, done))
        assert done.wait(timeout), "world thread did not run the call"
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def close(self):
        self.stop.set()
        self.t.join(10)
        assert self.error is None, self.error


def http(port, raw, timeout=5.0):
    """Send raw bytes, read until the server closes; returns the bytes (b"" if it just closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def wait_for(pred, timeout=5.0, every=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return pred()
