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
