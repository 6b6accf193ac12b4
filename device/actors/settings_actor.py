"""settings: the only writer of the live settings. Validates every `setting.set` against the one
table, stores accepted values (coalesced and rate-limited to spare the flash), then announces
`setting.changed`. Bad input is answered with `setting.rejected` (name, value, why) and changes
nothing; the MQTT bridge reports it on the error topic under the setting's topic."""

from adafruit_ticks import ticks_diff

from dinamics import messages as m
from dinamics import settings as st
from dinamics.mailbox import Actor

try:
    from micropython import const
except ImportError:  # CPython without Blinka's micropython shim
    def const(expr):
        return expr

_COALESCE_MS = const(1000)  # gather a burst of changes into one write
_MIN_WRITE_GAP_MS = const(5000)  # at most one flash write per 5 s
_T_FLUSH = "flush"  # timer tags: store the dirty settings;
_T_REPORT = "report"
_T_ANNOUNCE = "announce"  # setting.changed for everything applied in this pass  # report what the store refused at start (once the bridge is there)


class SettingsActor(Actor):
    name = "settings"
    subscribes = (m.SETTING_SET,)
    inbox_size = 24

    def __init__(self, settings, store):
        super().__init__()
        self.settings = settings
        self.store = store
        self.writes = 0
        self.write_errors = 0
        self._dirty = False
        self._timer = None
        self._last_write = None
        self._changed = []  # applied this pass, announced as one setting.changed
        self._announce_timer = None
        self._unstored = []  # applied, waiting for the write that makes them durable
        self._stored_now = []  # accepted without a write (same value): confirmed at once
        self._fixes_reported = False

    def reset(self):
        self._timer = None
        self._announce_timer = None  # the scheduler dropped our timers: announce at the next set
        if self._changed:
            self._announce_timer = None

    def start(self):
        """Log (once) every stored value that Settings.load could not use as it was (out of the
        table's range, or breaking a cross-field rule: see settings_load.repair), and store the values
        really in use so the flash agrees with them. After a crash: re-arm a pending write."""
        if not self._fixes_reported:
            self._fixes_reported = True
            for name, stored, used in self.settings.fixes:
                self.log(m.WARNING, "stored %s=%r refused: using %r" % (name, stored, used))
                self._dirty = True
            for slot in self.store.corrupt:
                self.log(m.WARNING, "%s corrupt, ignored: %s" % (slot, self._loaded()))
            if self.settings.fixes or self.store.corrupt:
                # on the error topic too, once the bridge is there (it is registered after us)
                self.after(1, _T_REPORT)
        if self._dirty:
            self._timer = None
            self._mark_dirty()

    def handle(self, kind, payload):
        if kind == m.SETTING_SET:
            name, raw, source = payload
            self.set(name, raw, source)
        elif kind == m.TIMER and payload == _T_FLUSH:
            self._timer = None
            self.flush()
        elif kind == m.TIMER and payload == _T_ANNOUNCE:
            self._announce_timer = None
            names, self._changed = tuple(self._changed), []
            self.post(m.SETTING_CHANGED, names)
            if self._stored_now:
                names, self._stored_now = tuple(self._stored_now), []
                self.post(m.SETTINGS_STORED, names)
        elif kind == m.TIMER and payload == _T_REPORT:
            for slot in self.store.corrupt:
                self.post(m.SETTING_REJECTED, ("settings", slot, "corrupt slot ignored; " + self._loaded()))
            for name, stored, used in self.settings.fixes:
                self.post(m.SETTING_REJECTED, (name, str(stored),
                                               "stored value refused at start: using %r" % (used,)))

    def _loaded(self):
        s = self.store
        if s.slot is None:
            return "no valid record: defaults loaded"
        return "loaded %s (seq %d)" % (s.names[s.slot], s.seq)

    def set(self, name, raw, source="mqtt"):
        """Validate and apply. Returns the new value, or None after refusing it. The refusal is
        posted as setting.rejected (the bridge reports it on `error`), or, when the source is an
        actor (the web UI), sent to it as setting.reply (name, raw, why); an accepted value is
        answered (name, raw, None) too. The reserved names st.RESET_SETTINGS / st.RESET_WIFI
        restore defaults (delete_settings / delete_wifi): applied at once and stored, no reboot
        (the seed rebooted, and a retained delete message then looped)."""
        if name == st.RESET_SETTINGS or name == st.RESET_WIFI:
            self.restore_defaults(None if name == st.RESET_SETTINGS else st.WIFI_NAMES)
            self.post(m.SETTINGS_RESET, name)
            self._answer(source, name, raw, None)
            return True
        if name not in st.NAMES:
            return self._refuse(source, name, raw, "unknown setting")
        r = st.row(name)
        try:
            value = st.parse(r, raw)
        except ValueError as e:
            return self._refuse(source, name, _text(raw), str(e))
        problem = st.check_together(self.settings.values, name, value)
        if problem:
            return self._refuse(source, name, _text(raw), problem)
        old = self.settings.get(name)
        self.settings.apply(name, value)
        if r[st.FLAGS] & st.PERSIST and value != old:
            self._unstored_add(name)
            self._mark_dirty()
        else:
            self._stored_now.append(name)  # nothing to write: confirmed with this pass
        self._announce(name)
        self._answer(source, name, raw, None)
        return value

    def _refuse(self, source, name, raw, why):
        if isinstance(source, str):
            self.post(m.SETTING_REJECTED, (name, raw, why))
        else:
            self._answer(source, name, raw, why)
        return None

    def _answer(self, source, name, raw, why):
        if source is not None and not isinstance(source, str):
            self.sched.send(source, m.SETTING_REPLY, (name, _text(raw), why))

    def _announce(self, name):
        if name not in self._changed:
            self._changed.append(name)
        if self._announce_timer is None:
            self._announce_timer = self.after(0, _T_ANNOUNCE)

    def _unstored_add(self, name):
        if name not in self._unstored:
            self._unstored.append(name)

    def restore_defaults(self, names=None):
        """delete_settings / delete_wifi: defaults come back at once, stored, no reboot."""
        for r in st.TABLE:
            name = r[st.NAME]
            if names is not None and name not in names:
                continue
            if names is None and r[st.FLAGS] & st.NET:
                continue  # network identity survives delete_settings, or the unit goes offline
            if self.settings.get(name) != r[st.DEFAULT]:
                self.settings.apply(name, r[st.DEFAULT])
                self._announce(name)
                self._unstored_add(name)
        self._mark_dirty()

    def _mark_dirty(self):
        self._dirty = True
        if self._timer is None:
            wait = _COALESCE_MS
            if self._last_write is not None:
                gap = _MIN_WRITE_GAP_MS - ticks_diff(self.now(), self._last_write)
                if gap > wait:
                    wait = gap
            self._timer = self.after(wait, _T_FLUSH)

    def flush(self):
        if not self._dirty:
            return
        try:
            self.store.save(self.settings.persisted())
            self.writes += 1
            self._dirty = False
        except Exception as e:  # noqa: BLE001 - a read-only drive must not kill the actor
            self.write_errors += 1
            self.log(m.ERROR_LEVEL, "settings not stored: %s" % e)
            if self._unstored:  # accepted and in use, but not confirmed: say why, once per try
                self.post(m.SETTING_REJECTED, (self._unstored[0], str(self.settings.get(self._unstored[0])),
                                               "in use but not stored (%s); retrying" % e))
            self._timer = self.after(_MIN_WRITE_GAP_MS * 6, _T_FLUSH)
        else:
            if self._unstored:  # "confirmed" means stored: the bridge acknowledges these now
                names, self._unstored = tuple(self._unstored), []
                self.post(m.SETTINGS_STORED, names)
        self._last_write = self.now()


def _text(raw):
    return st.text_of(raw)
