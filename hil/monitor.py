"""A host-only observer actor: turns firmware messages into readable log lines (demo, tests).
rapi.reply is sent to its requester only, so the monitor does not see replies."""
from dinamics import messages as m
from dinamics import rapi
from dinamics import rapi_more
from dinamics.mailbox import Actor


class Monitor(Actor):
    name = "monitor"
    subscribes = (m.LINK_STATUS, m.EVSE_STATE, m.EVSE_CURRENT, m.EVSE_ENERGY, m.EVSE_BOOT,
                  m.BALANCER_TARGET, m.BALANCER_FAULT, m.SETTING_REJECTED, m.EVSE_PLUG)
    inbox_size = 64

    def __init__(self):
        super().__init__()
        self.events = []
        self.last = {}

    def say(self, text):
        self.events.append((self.sched.clock.now(), text))
        if len(self.events) > 2000:
            del self.events[:1000]
        self.sched.log(m.INFO, text)

    def handle(self, kind, payload):
        if self.last.get(kind) == payload:
            return
        self.last[kind] = payload
        if kind == m.LINK_STATUS:
            self.say("link up: OK" if payload[0] else "link DOWN: CON_ERROR_FAILED_COM :" + payload[1])
        elif kind == m.EVSE_STATE:
            st, pilot, amps, vflags = payload
            extra = "" if amps is None else ", pilot %d A" % amps
            self.say("EVSE state %s%s" % (rapi_more.state_name(st), extra))
        elif kind == m.EVSE_CURRENT:
            self.say("charging current %.2f A at %.1f V" % (payload[0] / 1000, payload[1] / 1000))
        elif kind == m.EVSE_ENERGY:
            self.say("energy: session %.1f Wh, lifetime %d Wh" % (payload[0] / 3600, payload[1]))
        elif kind == m.EVSE_BOOT and payload[1]:  # (0, "") = the boot has only started
            self.say("controller booted (post %s, fw %s)" % payload)
        elif kind == m.BALANCER_TARGET:
            self.say("balancer target %s A (%s)" % payload)
        elif kind == m.BALANCER_FAULT:
            self.say("balancer fault %s (%r): %s" % payload)
        elif kind == m.SETTING_REJECTED:
            self.say("setting %s (%r) rejected: %s" % payload)
        elif kind == m.EVSE_PLUG:
            self.say("vehicle %s" % ("connected" if payload == 1 else "not connected" if payload == 0 else "unknown"))
