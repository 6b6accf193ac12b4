"""SIGINT / SIGTERM for the rig's command-line tools: ask the loop to stop instead of killing
the process mid-write, and put the old handlers back afterwards."""
import signal


def catch_stop(on_stop=None):
    """Returns (stop, restore). `stop` is a list that becomes non-empty when a signal arrives
    (`on_stop()` is called too, if given); `restore()` reinstates the previous handlers. Outside
    the main thread (where signals cannot be set) nothing is installed."""
    stop = []
    old = {}

    def _stop(signum, frame):
        stop.append(signum)
        if on_stop is not None:
            on_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, _stop)
        except (ValueError, OSError):  # not the main thread
            pass

    def restore():
        for sig, handler in old.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

    return stop, restore
