"""VM shim: boot.py reads the BOOT button; here it is never pressed."""


class Pull:
    UP = 1
    DOWN = 2


class Direction:  # the character LCD libraries set their pins' direction
    INPUT = 0
    OUTPUT = 1


class DriveMode:
    PUSH_PULL = 0
    OPEN_DRAIN = 1


class DigitalInOut:
    def __init__(self, pin):
        self.value = True

    def switch_to_input(self, pull=None):
        pass

    def deinit(self):
        pass
