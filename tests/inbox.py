"""Host-side view of an actor's inbox for tests (the device keeps no such helper: heap)."""


def queued(actor):
    """Kinds waiting in the actor's inbox ring (dinamics.mailbox.Actor._ring), oldest first."""
    size = len(actor._kinds)
    return [actor._kinds[(actor._head + i) % size] for i in range(actor._count)]
