"""The bridge's controller side (docs/lora.md "Safety"), loaded only in the bridge role: the
controller's UART lines into frames (read_uart) and the frames' lines onto it (write_uart), and the
failsafe. lora_link keeps the state (asm, heard_at, tripped, own_at, unit_hb, unit_hb_amps,
last_at, sc_amps) and calls these.

When no authenticated frame has come from the unit for lora_failsafe_s (never less than the
unit's own heartbeat interval, read from its `$SY <interval> <amps>`: it pulses every half of it,
so a unit that is only quiet never trips), the radio is taken for dead: one volatile
`$SC <amps> V` goes to the controller over the bridge's UART and is logged. amps = the unit's
heartbeat current (its `$SY`, else the bridge's hb_amps) through the pilot gate; nothing when the
unit's last `$SC` is at or below it already (the failsafe never raises a pilot). No airtime."""
from adafruit_ticks import ticks_diff

from dinamics import messages as m

OWN_REPLY_MS = 1000  # the controller answers the failsafe's `$SC` within this


def init(link):
    from dinamics.rapi import LineAssembler

    link.asm = LineAssembler()  # the controller's lines, read from the UART
    link._mv = memoryview(bytearray(128))
    link.heard_at = 0  # when the last fresh authenticated frame came (lora_link.start(): boot)
    link.tripped = False  # the cut went for this silence; a frame from the unit re-arms
    link.own_at = None  # when the cut was written: the next reply without an id is ours
    link.unit_hb = 0  # the unit's `$SY <interval s> <amps>`, as it configured the
    link.unit_hb_amps = -1  # controller's heartbeat (-1: not seen, use hb_amps)
    link.last_at = None  # the controller's newest `$AT` while tripped: again on re-arm


def read_uart(link):
    """What the controller sent: each whole line queued for a frame to the unit (but the answer
    to the failsafe's own `$SC`)."""
    asm = link.asm
    if not asm.read_from(link.uart, link._mv):
        return
    line = asm.pop()
    while line is not None:
        b = bytes(line) + b"\r"
        if (link.own_at is None and not link.tripped) or controller_line(link, b):
            link.stats["lines_in"] += 1
            link._queue(b, link._safety(b))
        line = asm.pop()


def write_uart(link, body):
    """The lines of an accepted frame from the unit, to the controller as they came."""
    try:
        link.uart.write(body)
        link.stats["lines_out"] += body.count(b"\r")
    except OSError:
        link.stats["dropped"] += 1


def controller_line(link, b):
    """A line from the controller while the failsafe is pending or tripped. False: it is the
    answer to our own `$SC` (written after the unit's last line was answered long ago; the
    unit's replies carry its ids when the controller echoes them): kept here, logged."""
    if link.own_at is not None and b[:3] in (b"$OK", b"$NK") and b" :" not in b:
        link.own_at = None
        from dinamics.rapi import text

        link.log(m.INFO, "controller answered the failsafe: " + text(b[:-1]))
        return False
    if link.tripped and b[:3] == b"$AT":
        link.last_at = b
    return True


def rearm(link):
    """The first fresh frame from the unit after a trip. The bridge sends nothing to the
    controller: the unit sees the lowered pilot and its balancer sends its own again. The report
    of the lowered pilot may have died on the radio: the unit gets the controller's newest `$AT`
    again (a true line; repeating it is harmless)."""
    link.log(m.INFO, "frames from the unit again after %d s (the unit restores the pilot)"
             % (ticks_diff(link.now(), link.heard_at) // 1000))
    link.tripped = False
    if link.last_at is not None:
        link._queue(link.last_at, False)
        link.last_at = None


def check(link):
    now = link.now()
    if link.own_at is not None and ticks_diff(now, link.own_at) > OWN_REPLY_MS:
        link.own_at = None  # no answer: whatever comes later is the unit's
    if link.tripped:
        return
    s = link.settings
    bound = s.get("lora_failsafe_s")
    if not bound:
        return
    if link.unit_hb > bound:
        bound = link.unit_hb
    if ticks_diff(now, link.heard_at) < bound * 1000:
        return
    link.tripped = True
    from dinamics import rapi
    from dinamics.pilot_gate import gate_sc

    amps = gate_sc(link.unit_hb_amps if link.unit_hb_amps >= 0 else s.get("hb_amps"), s)
    silent = ticks_diff(now, link.heard_at) // 1000
    if link.sc_amps <= amps:
        link.log(m.WARNING, "no frame from the unit for %d s: the pilot (%d A) is at or below"
                 " the safe %d A already" % (silent, link.sc_amps, amps))
        return
    link.stats["failsafe"] += 1
    link.sc_amps = amps  # the unit's next `$SC` above it is a raise, not a cut
    try:
        link.uart.write(rapi.build("SC", (amps, "V")))
        link.own_at = now
    except OSError:
        link.stats["dropped"] += 1
    link.log(m.WARNING, "no frame from the unit for %d s: $SC %d V to the controller"
             " (failsafe)" % (silent, amps))


def unit_sy(link, line):
    """The unit's `$SY <interval> <amps> [:id]^XX`: its heartbeat, which the failsafe follows."""
    t = line.split(b"^")[0].split(b"*")[0].split(b" ")
    if len(t) >= 3 and t[2][:1] != b":":
        try:
            link.unit_hb = int(t[1])
            link.unit_hb_amps = int(t[2])
        except ValueError:
            pass
