"""python -m hil heap: the probe on the unix VM (and on wasm32 when Node and the npm package are
installed), and the bisection it uses."""
import os
import shutil
import tempfile

import pytest

from hil import heap_bench, vm

PIECES = ["board_port (BoardPort, clock, console, fs, uart)", "core (messages, mailbox, settings, store)",
          "ct_meter", "uart_link", "rapi_link", "balancer", "settings", "mqtt_bridge", "web",
          "adafruit_httpserver (imported on net.up, trimmed)", "web server (Server, guard, routes)",
          "lcd", "wifi", "sntp (NTP client, from the first sync)", "net_console", "watchdog"]
# built only when `lora` is on: measured after "built" (the extra of a LoRa-linked unit)
LORA_PIECES = ["lora_link (actor, frames, HMAC, ledger)", "lora_radio (adafruit_rfm9x + bus_device + glue)",
               "lora_failsafe (bridge role only)"]


def test_bisect_finds_the_smallest_passing_size():
    calls = []

    def ok(n):
        calls.append(n)
        return n >= 300_000

    assert heap_bench.bisect(ok, 16 * 1024, 2 * 1024 * 1024, 1024) - 300_000 in range(0, 1024)
    assert len(calls) <= 12


@pytest.fixture(scope="module")
def drive_mpy():
    d = tempfile.mkdtemp(prefix="dinamics-heap-test-")
    vm.build_drive(d, mpy=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _check(f, bits):
    assert f["maxsize_bits"] == bits
    assert [c[0] for c in f["costs"]] == PIECES + LORA_PIECES
    assert all(c[1] > 0 for c in f["costs"]), f["costs"]
    assert f["built"] > sum(c[1] for c in f["costs"][:len(PIECES)])
    assert f["shims"] > 0 and f["start"] > f["shims"]  # host shims: in the baseline, not a piece
    # The baseline is taken like the pieces' figures: firmware (built - start) is their sum. (It
    # was taken in the probe's first wasm call, with ~12 KB of garbage that call kept: the firmware
    # figure came out ~12 KB below the sum of its pieces.)
    # (The LoRa pieces are built after "built": the extra of a LoRa-linked unit.)
    assert f["built"] - f["start"] == sum(c[1] for c in f["costs"][:len(PIECES)])
    assert f["idle_passes"] == 1000 and f["idle_delivered"] == 0
    parts = dict(f["idle_parts_per_pass"])
    # An idle pass allocates nothing (the scheduler times passes in ms ticks, not monotonic_ns).
    assert parts["deliver"] == 0 and parts["fire_timers"] == 0
    assert all(v == 0 for k, v in parts.items() if k.startswith("poll ")), parts
    assert f["idle_alloc_bytes"] == 0


@pytest.mark.skipif(vm.interpreter() is None, reason="no micropython interpreter (scripts/setup)")
def test_unix_probe(drive_mpy):
    f = heap_bench.probe(drive_mpy)
    _check(f, 64)
    boot = heap_bench.probe(drive_mpy, "2M", 0)  # what the bisect runs: no idle passes
    assert "idle_passes" not in boot and boot["built"] > 0
    assert heap_bench.probe(drive_mpy, "64K", 0) is None  # too small to boot: the bisect's "no"


@pytest.mark.skipif(not heap_bench.wasm_available(), reason="no node or hil/vm/node_modules "
                                                            "(scripts/setup installs it)")
def test_wasm32_probe(drive_mpy):
    f = heap_bench.probe_wasm(drive_mpy)
    _check(f, 32)
    assert f["heap_total"] >= f["used"] > 0
    unix = heap_bench.probe(drive_mpy)
    assert f["built"] < unix["built"]  # 32-bit objects are smaller


@pytest.mark.skipif(not heap_bench.wasm_available(), reason="no node or hil/vm/node_modules "
                                                            "(scripts/setup installs it)")
def test_wasm32_adc_figure_is_the_board_without_the_hil_feed(drive_mpy):
    """python -m hil heap also prints the production figure: the CTs on the ADCs (DINAMICS_HIL=0),
    where ct_feed is never loaded; the environment is left as it was."""
    before = os.environ.get("DINAMICS_HIL")
    adc = heap_bench.measure_wasm_adc()
    assert os.environ.get("DINAMICS_HIL") == before
    hil = dict((n.split(" (")[0], c) for n, c in heap_bench.probe_wasm(drive_mpy)["costs"])
    assert set(adc["costs"]) | set(adc["lora"]) == set(hil) and adc["lora"]
    assert 0 < adc["costs"]["ct_meter"] < hil["ct_meter"] - 2048  # no ct_feed (~3 KB)
    assert adc["firmware"] == sum(adc["costs"].values())


def test_verdict_judges_the_board_issue_actors_and_the_whole_firmware_against_the_budgets():
    """The budget lines: the board issue's actors (their pieces summed, every one of them in the
    probe's list) against 128 KB, the whole firmware against a board without and with PSRAM."""
    assert set(heap_bench.BOARD_ISSUE_PIECES) <= set(p.split(" (")[0] for p in PIECES)
    costs = [[p, 10_000] for p in PIECES]
    w = {"modes": {"mpy": {"costs": costs, "firmware": 10_000 * len(PIECES)}}}
    lines = heap_bench.verdict(w)
    assert lines == [
        "target_board_issue_actors_le_128KB: yes (board issue's actors 100000 B = 100.0 KB, budget 128 KB)",
        "target_whole_firmware_fits_no_psram_150KB: NO (whole firmware 160000 B = 160.0 KB, budget 150 KB)",
        "target_whole_firmware_fits_psram_2MB: yes (whole firmware 160000 B = 160.0 KB, budget 2000 KB)"]
    costs[0][1] = 40_000  # board_port grows: the board issue's actors are over
    w["modes"]["mpy"]["firmware"] += 30_000
    assert heap_bench.verdict(w)[0].startswith("target_board_issue_actors_le_128KB: NO (board issue's "
                                               "actors 130000 B")
