"""VM shim: a watchdog that counts feeds (the VM checks it is fed; it never bites); reset() ends
the VM with status 3, as a board would restart."""


class _WatchDog:
    timeout = 0
    mode = None
    feeds = 0

    def feed(self):
        self.feeds += 1


watchdog = _WatchDog()


class _Pins:
    """microcontroller.pin: GPIO0..GPIO48 (plain strings stand for the pin objects)."""


pin = _Pins()
for _i in range(49):
    setattr(pin, "GPIO%d" % _i, "GPIO%d" % _i)
del _i


def reset():
    print("microcontroller.reset()")
    raise SystemExit(3)


class _Pins:
    """microcontroller.pin: GPIO0..GPIO48 as plain strings (what busio/analogbufio shims take)."""


pin = _Pins()
for _i in range(49):
    setattr(pin, "GPIO%d" % _i, "GPIO%d" % _i)
del _i
