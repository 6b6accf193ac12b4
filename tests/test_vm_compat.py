"""Fixes for what the firmware meets on MicroPython / CircuitPython VMs (issue 10), each checked
on CPython standing in for the VM (the VM gate, tests/test_vm_gate.py, runs the real thing)."""
import sys
import types

from dinamics import mailbox
from dinamics.mailbox import Actor, Scheduler
from hil.clock import VirtualClock


class _Boom(Actor):
    name = "boom"
    subscribes = ()

    def __init__(self, exc):
        super().__init__()
        self.exc = exc
        self.starts = 0

    def start(self):
        self.starts += 1

    def poll(self, budget_ms):
        raise self.exc

    polls = True


def test_circuitpython_10_traceback_printer(monkeypatch):
    """CircuitPython 10 has no sys.print_exception; traceback.print_exception prints the trace."""
    fake = types.ModuleType("traceback")
    fake.print_exception = lambda exc: None
    monkeypatch.setitem(sys.modules, "traceback", fake)
    monkeypatch.setattr(sys, "implementation", types.SimpleNamespace(name="circuitpython"))
    monkeypatch.delattr(sys, "print_exception", raising=False)
    assert mailbox._exception_printer() is fake.print_exception
    # MicroPython keeps sys.print_exception, and it wins
    own = lambda exc: None  # noqa: E731
    monkeypatch.setattr(sys, "print_exception", own, raising=False)
    assert mailbox._exception_printer() is own


def test_crash_trace_goes_to_the_console(monkeypatch):
    printed = []
    monkeypatch.setattr(mailbox, "_print_exception", printed.append)
    lines = []
    s = Scheduler(VirtualClock(), console=lambda lvl, t: lines.append(t))
    a = s.add(_Boom(KeyError(3)))
    s.run_once()
    assert a.crashes == 1 and len(printed) == 1 and isinstance(printed[0], KeyError)
    assert any("boom crashed: KeyError" in x for x in lines)


class _NoStr(Exception):
    def __str__(self):
        raise MemoryError("no heap for the message")


def test_crash_report_out_of_memory_does_not_escape_the_loop():
    """A MemoryError while building the crash text (str(exc)) escaped run_forever on a board."""
    lines = []
    s = Scheduler(VirtualClock(), console=lambda lvl, t: lines.append(t))
    a = s.add(_Boom(_NoStr()))
    s.run_once()  # raised MemoryError before the fix
    s.run_once()
    assert a.crashes == 2 and a.starts == 3  # counted and restarted each time
    assert lines.count("crashed (no details: out of memory?)") == 2


def test_error_json_key_order_does_not_depend_on_dict_order(monkeypatch):
    # On MicroPython/CircuitPython dicts keep no insertion order: the seed's key order (topic,
    # value, error) must come from the construction, not from a dict. Stand-in: a json.dumps
    # that writes dict keys in reverse.
    import json as _json

    from dinamics import mqtt_topics as mt

    real = _json.dumps

    def reversing(obj, *a, **k):
        if isinstance(obj, dict):
            obj = dict(reversed(list(obj.items())))
        return real(obj, *a, **k)

    monkeypatch.setattr(mt.json, "dumps", reversing)
    out = mt.error_json("set_c_limit", b"\xff10", "expected a whole number")
    assert out.index('"topic"') < out.index('"value"') < out.index('"error"')
    assert _json.loads(out) == {"topic": "set_c_limit", "value": "\ufffd10",
                                "error": "expected a whole number"}


def test_rapi_text_never_needs_decode_errors():
    from dinamics import rapi

    assert rapi.text(b"$AT 03 03 16 0540\xff") == "$AT 03 03 16 0540?"
    assert rapi.text(b"$OK") == "$OK"


def _f32(x):
    """A CircuitPython float: single precision with the two lowest mantissa bits dropped (30-bit
    object representation): "%.2f" % 12.345 is 12.34 and "%.1f" % 0.05 is 0.0 there."""
    import struct

    i = struct.unpack("<I", struct.pack("<f", x))[0] & ~3
    return struct.unpack("<f", struct.pack("<I", i))[0]


def test_published_currents_are_the_same_text_with_single_precision_floats():
    # A board's floats are single precision: "%.2f" % 12.345 is 12.34 there and 12.35 here.
    # Currents are published from whole milliamps, so both print the same.
    from dinamics.mqtt_topics import amps_text

    assert "%.2f" % _f32(12.345) == "12.34" and "%.1f" % _f32(0.05) == "0.0"  # as on a board
    for ma in list(range(-2000, 2000)) + list(range(0, 100000, 7)):
        a = ma / 1000
        assert amps_text(_f32(a)) == amps_text(a), a
    assert amps_text(12.345) == "12.35" and amps_text(13.99922) == "14.00"
    assert amps_text(5.998792) == "6.00" and amps_text(-0.004) == "0.00" and amps_text(-1.5) == "-1.50"


def test_headroom_decisions_do_not_flip_on_a_boards_float_rounding():
    # A board computes the RMS of a 14 / 9 / 6 A wave as 13.99922 / 8.99902 / 5.998792 A; the
    # pilot it allows must be the one a PC computes from the exact values.
    from dinamics import headroom as hr

    for breaker in (16, 20, 25, 32):
        for house_ma in range(0, 26000, 250):
            exact = breaker - house_ma / 1000
            for err in (-0.0015, -0.0008, 0.0, 0.0008, 0.0015):
                assert hr.allowed(exact + err, 32) == hr.allowed(exact, 32), (breaker, house_ma, err)
                assert hr.resume_ok(exact + err, 6, 1) == hr.resume_ok(exact, 6, 1)
