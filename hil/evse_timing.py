"""Timing of a real OpenEVSE 8.2.3 controller, as measured (rapi.md §8), for hil/evse_emulator.py.

Every figure below comes from §8 ("Measured on a real 8.2.3 controller", 2026-12). Fixed defaults
sit inside the measured ranges; the per-command loop delay and the stall lengths are drawn from a
seeded `random.Random`, so the same seed and the same input (bytes at the same virtual times) give
the same output at the same virtual times.

| what (§8)                                  | measured            | emulator default                      |
|--------------------------------------------|---------------------|---------------------------------------|
| reset -> first byte (bootloader, RX lost)  | 400 ms of the 2.2 s | `BOOTLOADER_MS` 400 (bytes lost)      |
| reset -> `$AT 00 00 0 0200`                | ~2.2 s              | `BOOT_SILENCE_MS` 2200 (fixed)        |
|   ... with a blank EEPROM                  | 2.9-3.4 s           | `BLANK_EEPROM_SILENCE_MS` 3150 (fixed)|
| `$AT 00 ...` -> `$AB 00 8.2.3`             | 1.2-2.1 s           | `POST_MS` 1650 (fixed)                |
| commands sent while booting                | answered after $AB  | held in the 64-byte RX buffer         |
| RAPI stall at B->C (GFI self-test 1 s)     | 1.13-1.31 s         | uniform draw in [1130, 1310] ms       |
| RAPI stall at A->B and B->A                | 0.27-0.32 s         | uniform draw in [270, 320] ms         |
| reply round trip outside stalls            | median 23-30 ms, p95 36-104 ms, max 315 ms | `loop_delay_ms()` |
"""
import random

DEFAULT_SEED = 823          # any fixed value: the bench relies on the same seed every run

BOOTLOADER_MS = 400
BOOT_SILENCE_MS = 2200
BLANK_EEPROM_SILENCE_MS = 3150
POST_MS = 1650
STALL_BC_MS = (1130, 1310)
STALL_AB_MS = (270, 320)

# The AVR main loop serves RAPI once per iteration: a line waits for the rest of the iteration in
# progress. Most iterations are short (pilot read, ammeter, LCD text); some redraw the LCD or read
# the temperature sensors over I2C; a few are long. Mixture (probability, low ms, high ms), uniform
# inside each part: median ~26 ms, p95 ~85 ms, max < 315 ms.
LOOP_MIX = ((0.88, 14, 36), (0.09, 36, 100), (0.03, 100, 315))


class LoopTimer:
    """Seeded draws for the loop delay and the stalls (two independent streams, so switching the
    latency off does not change the stall lengths, and vice versa)."""

    def __init__(self, seed=DEFAULT_SEED):
        self.seed = seed
        self._loop = random.Random("loop-%s" % (seed,))
        self._stall = random.Random("stall-%s" % (seed,))

    def loop_delay_ms(self):
        r = self._loop.random()
        u = self._loop.random()
        acc = 0.0
        for p, lo, hi in LOOP_MIX:
            acc += p
            if r < acc:
                return int(lo + u * (hi - lo))
        lo, hi = LOOP_MIX[-1][1:]
        return int(lo + u * (hi - lo))

    def stall_ms(self, span):
        lo, hi = span
        return int(round(lo + self._stall.random() * (hi - lo)))
