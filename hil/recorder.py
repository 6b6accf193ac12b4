"""A recording actor for tests and rig tools: keeps every (kind, payload) it subscribed to."""
from dinamics.mailbox import Actor


class Recorder(Actor):
    def __init__(self, name="recorder", subscribes=(), inbox_size=256):
        super().__init__()
        self.name = name
        self.subscribes = tuple(subscribes)
        self.inbox_size = inbox_size
        self.got = []

    def handle(self, kind, payload):
        self.got.append((kind, payload))

    def of(self, kind):
        """Payloads of one kind, oldest first."""
        return [p for k, p in self.got if k == kind]
