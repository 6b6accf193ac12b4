"""The link's request queue: one record per command, safety first, bounded.

Priority commands (SC, FS, FD, SY) go ahead of reads, in arrival order among themselves; a newer
command of the same kind and arguments replaces a queued one (for SC whatever the amps: the
newest pilot wins) and the older requester is told "superseded"; but a request nobody waits for
(a heartbeat pulse) never supersedes one somebody does (a link.hold's pulse): it is dropped, the
queued one does the same. When full, a priority command
evicts the newest read; a read is refused. Every refusal is returned to the caller to answer:
nothing is dropped silently. No clock, no I/O.
"""

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_QUEUE_MAX = const(16)
PRIORITY = ("SC", "FS", "FD", "SY")


class Req:
    """One request: `requester` is the actor its reply is sent to (None: nobody is told, the
    link's own polls and probes, or a fire-and-forget request), `tag` names it for the requester."""

    __slots__ = ("requester", "tag", "cmd", "args", "attempts", "prio", "sent_at")

    def __init__(self, requester, tag, cmd, args):
        self.requester = requester
        self.tag = tag
        self.cmd = cmd
        self.args = args
        self.attempts = 0  # sends so far
        self.prio = cmd in PRIORITY
        self.sent_at = 0


class RequestQueue:
    def __init__(self):
        self.items = []

    def __len__(self):
        return len(self.items)

    def clear(self):
        items = self.items
        self.items = []
        return items

    def has(self, cmd):
        for r in self.items:
            if r.cmd == cmd:
                return True
        return False

    def has_poll(self, tag, cmd):
        for r in self.items:
            if r.tag == tag and r.cmd == cmd:
                return True
        return False

    def add(self, r, head=False):
        """Queue r. Returns the requests pushed out (superseded / evicted / r itself when
        refused), each with the reason, for the caller to answer."""
        q = self.items
        out = []
        if r.prio:
            for x in q:
                if x.cmd == r.cmd and (r.cmd == "SC" or x.args == r.args):
                    if r.cmd != "SC" and r.requester is None and x.requester is not None:
                        return out  # the queued one does the same and someone waits for it
                    q.remove(x)
                    out.append((x, "superseded"))
                    break
            i = 0
            if not head:
                while i < len(q) and q[i].prio:
                    i += 1
            if len(q) >= _QUEUE_MAX:
                out.append((q.pop(), "queue full"))
            q.insert(i, r)
        elif len(q) >= _QUEUE_MAX:
            out.append((r, "queue full"))
        else:
            q.append(r)
        return out

    def again(self, r):
        """A request to send once more: at the very front."""
        self.items.insert(0, r)

    def peek(self, cmds=None):
        """The next request to send; with `cmds`, the first one whose command is in it."""
        for r in self.items:
            if cmds is None or r.cmd in cmds:
                return r
        return None

    def take(self, r):
        self.items.remove(r)
