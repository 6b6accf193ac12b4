"""The MQTT bridge's inbound half: what arrives under Dinamics/<SN>/ becomes firmware messages.

actors.mqtt_bridge.MqttBridge derives from MqttCommands (a mixin: same state, same messages). A
received message is translated by the pure dinamics.mqtt_inbound.translate (imported at the first
message, dropped by the telemetry timer once a whole period passed without one) into
setting.set for the settings actor, charge.command for the balancer, rapi.request (rapi_request,
set_current, set_lcd / erase_lcd, also lcd.text for the unit's own LCD) or a report; anything
refused, or a message an inbox cannot take, gets a JSON reply on Dinamics/<SN>/error and changes
nothing. The rapi.reply of a request is published on its response topic (mqtt_topics.Replies).

State kept by the bridge's reset(): _inb, _inb_used, _replies, plug.
"""

from dinamics import messages as m
from dinamics import mqtt_topics as mt
from dinamics.mailbox import Actor
from dinamics.mqtt_session import forget


class MqttCommands(Actor):
    def on_mqtt(self, topic, payload, retained=False):
        """Entry point for every received message (the session's client callback calls this)."""
        self.stats["received"] += 1
        try:
            pre = self.prefix
            if topic.startswith(pre):
                sub = topic[len(pre):]
                if mt.published(sub):
                    return  # our own telemetry, heard back through the wildcard
                inb = self._inbound()
                self._do(inb, inb.translate(sub, payload, retained), retained)
        except Exception as e:  # noqa: BLE001 - a bad message must not cost the connection
            self.stats["handler_errors"] += 1
            self.log(m.ERROR_LEVEL, "handling %s failed: %s %s" % (topic, type(e).__name__, e))

    def _inbound(self):
        """dinamics.mqtt_inbound, imported at the first message and dropped by the telemetry
        timer once a whole period passed without one (heap: it is not resident while idle)."""
        self._inb_used = True
        if self._inb is None:
            from dinamics import mqtt_inbound

            self._inb = mqtt_inbound
        return self._inb

    def _drop_inbound(self):
        if self._inb is not None and not self._inb_used:
            self._inb = None
            forget("mqtt_inbound")
            forget("rapi_more")  # what mqtt_inbound loads for rapi_request / set_lcd
        self._inb_used = False

    def _do(self, inb, a, retained):
        if a is None:
            return  # an empty message clears a retained one: nothing to do
        act, sub, text, arg = a
        if isinstance(text, str) and mt.debug_on(self.settings, mt.DBG_ECHO):
            self.log(m.INFO, "in %s%s = %s" % (sub, " (retained)" if retained else "", text[:60]))
        if act == inb.ERROR:
            self._reject(sub, text, arg)
        elif act == inb.SETTING:
            self._post_or_reject(sub, text, m.SETTING_SET, (arg, text, "mqtt"), "busy: not applied, send it again")
        elif act == inb.REPORT:
            if arg == "status":
                self._status(True)
            else:
                self._report(arg)
        elif act == inb.CHARGE:
            self._post_or_reject(sub, text, m.CHARGE_COMMAND, arg)
        elif act == inb.RAPI:
            self._post_or_reject(sub, text, m.RAPI_REQUEST, (self,) + arg)
        elif act == inb.LIMIT:
            if self.plug != 1:
                why = "link to the EVSE is down" if self.plug == 2 or self.plug is None else "no vehicle connected"
                self._reject(sub, text, "only with a vehicle connected: " + why)
            elif self._post_or_reject(sub, text, m.RAPI_REQUEST, (self,) + arg):
                self._replies.sent(arg[0], text)
        elif act == inb.LCD:
            self._lcd_write(sub, text, arg[0], arg[1])
        elif act == inb.RESET:
            # The reply (the report) follows the settings actor's settings.reset.
            self._post_or_reject(sub, text, m.SETTING_SET, (arg, text, "mqtt"))

    def _post_or_reject(self, sub, text, kind, payload, busy="busy: not executed, send it again"):
        if not self.post(kind, payload):
            self._reject(sub, text, busy)
            return False
        return True

    def _lcd_write(self, sub, text, tag, cmds):
        for cmd, args in cmds:
            if not self.post(m.RAPI_REQUEST, (self, tag, cmd, args)):
                self._reject(sub, text, "busy: LCD text incomplete, send it again")
                return
            self._replies.sent(tag)
        # The unit's own LCD shows it too (for lcd_text_s); erase_lcd returns it to its pages.
        self.post(m.LCD_TEXT, text if tag == mt.TAG_LCD else None)

    def _rapi_reply(self, payload):
        r = self._replies.reply(payload[0], payload[1], payload[2], payload[3])
        if r is not None:
            self._pub(r[0], r[1], True)
            if r[2] is not None:
                self._reject(r[2][0], r[2][1], r[2][2])
