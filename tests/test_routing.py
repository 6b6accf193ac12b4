"""The signal table's routing (device/dinamics/messages.py: senders and receivers per kind) is
what the firmware does: every device actor subscribes to exactly the kinds that list it, every
kind is posted (or, for replies and timers, sent) by exactly its declared senders, found by
reading the source (AST) of device/. Host-side rig actors (hil/) are not part of the table."""
import ast
import importlib
import inspect
import pathlib

from dinamics import messages as m
from dinamics.mailbox import Actor

DEVICE = pathlib.Path(__file__).resolve().parents[1] / "device"
SCHEDULER = "scheduler"
# Modules that post on behalf of an actor without being its class file (mixins, helpers).
ON_BEHALF = {
    "actors/rapi_evse.py": "rapi_link",  # the link's mixin: what replies mean
    "actors/balancer_regulation.py": "balancer",  # the balancer's regulation half
    "actors/balancer_output.py": "balancer",  # the balancer's housekeeping and output
    "dinamics/mqtt_session.py": "mqtt_bridge",  # the bridge's broker session (owner.post)
    "dinamics/mailbox.py": SCHEDULER,  # log lines, actor.stopped
    "dinamics/timers.py": SCHEDULER,  # timers (a mixin of the scheduler)
    "dinamics/web_routes.py": "web",  # the web actor's HTTP routes
}
SENT_TO_ONE = (m.REQUESTER, m.OWNER)


def _actor_modules():
    """device/actors/*, and the device/dinamics modules that define an actor (the watchdog)."""
    for path in sorted((DEVICE / "actors").glob("*.py")):
        yield "actors." + path.stem
    for path in sorted((DEVICE / "dinamics").glob("*.py")):
        src = path.read_text()
        if path.stem != "mailbox" and ("(Actor)" in src or ", Actor)" in src):
            yield "dinamics." + path.stem


def device_actors():
    """{name: class} of the device's actor classes (not the mixins)."""
    out = {}
    for modname in _actor_modules():
        mod = importlib.import_module(modname)
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and issubclass(cls, Actor) and "name" in cls.__dict__:
                assert cls.name not in out, cls.name
                out[cls.name] = cls
    return out


def _kind(node):
    """The kind a `m.X` expression names, or None."""
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "m"
            and node.attr.isupper() and isinstance(getattr(m, node.attr, None), int)
            and node.attr not in ("LATEST", "COMMAND", "DROP_NEW", "COUNT")):
        return getattr(m, node.attr)
    return None


def emitted(actors):
    """[(kind, sender, how, where)] for every post / send of a kind in device/ (how: "post" for
    post() and the helpers named _post*, "send" for send())."""
    module_actor = dict(ON_BEHALF)
    for name, cls in actors.items():
        for c in cls.__mro__:  # the actor's class and its mixins in device/ (rapi_evse, web_auth ...)
            if c is not Actor and issubclass(c, Actor) and inspect.getfile(c).startswith(str(DEVICE)):
                module_actor.setdefault(pathlib.Path(inspect.getfile(c)).relative_to(DEVICE).as_posix(), name)
        module_actor[pathlib.Path(inspect.getfile(cls)).relative_to(DEVICE).as_posix()] = name
    out = []
    for path in sorted(DEVICE.rglob("*.py")):
        rel = path.relative_to(DEVICE).as_posix()
        tree = ast.parse(path.read_text(), rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            fn = node.func.attr
            if fn == "post" or fn.startswith("_post"):
                how = "post"
            elif fn == "send":
                how = "send"
            else:
                continue
            for arg in node.args:
                k = _kind(arg)
                if k is not None:
                    where = "%s:%d" % (rel, node.lineno)
                    assert rel in module_actor, "%s posts %s but is no actor's module" % (where, m.NAMES[k])
                    out.append((k, module_actor[rel], how, where))
    return out


def test_every_row_names_known_actors():
    actors = device_actors()
    assert set(actors) >= {"rapi_link", "uart_link", "balancer", "mqtt_bridge", "settings",
                           "ct_meter", "net_console"}
    for k in range(m.COUNT):
        senders, receivers = m.SENDERS[k], m.RECEIVERS[k]
        assert senders and set(senders) <= set(actors) | {SCHEDULER}, m.NAMES[k]
        if receivers not in SENT_TO_ONE:
            assert receivers and set(receivers) <= set(actors), m.NAMES[k]


def test_subscriptions_match_the_table():
    for name, cls in device_actors().items():
        for k in cls.subscribes:
            assert m.RECEIVERS[k] not in SENT_TO_ONE, "%s subscribes to %s, which is sent" % (name, m.NAMES[k])
            assert name in m.RECEIVERS[k], "%s subscribes to %s but the table does not list it" % (
                name, m.NAMES[k])
    actors = device_actors()
    for k in range(m.COUNT):
        if m.RECEIVERS[k] in SENT_TO_ONE:
            continue
        for name in m.RECEIVERS[k]:
            assert k in actors[name].subscribes, "the table lists %s for %s; it does not subscribe" % (
                name, m.NAMES[k])


def test_every_kind_is_emitted_by_its_declared_senders_only():
    found = emitted(device_actors())
    for k, sender, how, where in found:
        assert sender in m.SENDERS[k], "%s: %s emits %s; the table says %s" % (
            where, sender, m.NAMES[k], m.SENDERS[k])
        if m.RECEIVERS[k] in SENT_TO_ONE:
            assert how == "send", "%s: %s is a reply/timer: send() it to one actor" % (where, m.NAMES[k])
        else:
            assert how == "post", "%s: %s has receivers: post() it" % (where, m.NAMES[k])
    actors = device_actors()
    for k in range(m.COUNT):
        for sender in m.SENDERS[k]:
            assert any(f[0] == k and f[1] == sender for f in found), "%s never emits %s" % (
                sender, m.NAMES[k])


def test_requests_name_their_requester_and_replies_go_back_to_it():
    """rapi.request carries (requester, tag, cmd, args); rapi.reply is sent to the requester."""
    from actors.rapi_link import RapiLink
    from dinamics.mailbox import Scheduler
    from dinamics.settings import Settings
    from hil.clock import VirtualClock
    from hil.recorder import Recorder

    s = Scheduler(VirtualClock())
    link = s.add(RapiLink(Settings()))
    asker = s.add(Recorder("asker", ()))
    bystander = s.add(Recorder("bystander", tuple(range(m.COUNT))))  # hears every broadcast
    s.post(m.RAPI_REQUEST, (asker, "mine", "GV", None))
    s.post(m.RAPI_REQUEST, (None, "nobody", "GV", None))  # fire and forget: no reply
    for _ in range(3):
        s.run_once()
    assert not link.up
    assert asker.of(m.RAPI_REPLY) == [("mine", None, (), "link down")]
    assert not bystander.of(m.RAPI_REPLY)


def test_the_routing_table_in_architecture_md_is_current():
    import os
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    tool = root / "tools" / "gen_routing.py"
    out = subprocess.run([sys.executable, str(tool)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1")).stdout
    doc = (root / "docs" / "architecture.md").read_text()
    assert "\n" + out in doc, "run: .venv/bin/python tools/gen_routing.py --write"
