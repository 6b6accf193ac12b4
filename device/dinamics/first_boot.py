"""settings.toml seeds the stored settings; a value set later over MQTT is never overridden.

Keys (template: settings.toml.example; docs/board.md):
  DINAMICS_SERIAL       -> serial     (topic prefix Dinamics/<serial>/; empty = from the MAC)
  DINAMICS_MQTT_HOST    -> mqtt_host  DINAMICS_MQTT_PORT -> mqtt_port  DINAMICS_MQTT_TLS -> mqtt_tls
  DINAMICS_MQTT_USER    -> mqtt_user  DINAMICS_MQTT_PASS -> mqtt_pass
  DINAMICS_WEB_PASSWORD  checked only (8-63 characters); the web UI / setup AP reads it itself
  DINAMICS_RESEED       a token: when it differs from the last one seen, the file wins once

Which wins: the STORED value, once one exists. The file seeds a setting that was never stored,
and follows edits of the file as long as the stored value is still the one the file gave (the
seed record remembers it). Once the value was changed over MQTT the stored value wins; a file
value that differs is then reported on the console at every boot (values of secrets are not
printed) and not used. Why: an installer sets the broker in the file, the back-end may move the
unit later over MQTT; a reboot must not silently undo that. To make the file win again, give
DINAMICS_RESEED a new value (any; e.g. 1, then 2): at the next boot every valid file value is used
once. A file value the settings table refuses is one console line and is not used.

With no settings record at all (a new unit, or settings.a/.b deleted) every file value is used.
Record kept for this: a second two-slot store "seed" (seed.a / seed.b, dinamics.store) holding
{setting: value the file gave, "!reseed": token}. The settings record is written before the
seed record, so a power cut in between never turns a file value into an "MQTT" value.

Pure logic (`plan`) on dicts; `seed` does the I/O with an injected getenv (os.getenv on a board,
a dict's .get in tests). code.py runs it once before the app is built and drops the module.
"""

from dinamics import settings as st
from dinamics.store import SlotStore

KEYS = (("DINAMICS_SERIAL", "serial"), ("DINAMICS_MQTT_HOST", "mqtt_host"),
        ("DINAMICS_MQTT_PORT", "mqtt_port"), ("DINAMICS_MQTT_USER", "mqtt_user"),
        ("DINAMICS_MQTT_PASS", "mqtt_pass"), ("DINAMICS_MQTT_TLS", "mqtt_tls"),
        ("DINAMICS_LORA", "lora"), ("DINAMICS_LORA_KEY", "lora_key"),
        ("DINAMICS_LORA_BAND", "lora_band"), ("DINAMICS_LORA_SF", "lora_sf"),
        ("DINAMICS_LORA_BW", "lora_bw"), ("DINAMICS_LORA_FAILSAFE_S", "lora_failsafe_s"))
RESEED = "!reseed"
INFO = 20  # dinamics.messages levels (not imported: one module less at boot)
WARNING = 30


def read_file(getenv, say):
    """settings.toml -> ({setting: typed value}, reseed token or None). Bad values: one line each
    through say(level, text), and left out."""
    values = {}
    for key, name in KEYS:
        raw = getenv(key)
        if raw is None:
            continue
        r = st.row(name)
        try:
            v = st.parse(r, str(raw))
            if name == "serial" and v and not _serial_ok(v):
                raise ValueError("letters, digits, - and _ only")
        except ValueError as e:
            flags = r[st.FLAGS]
            shown = "***" if isinstance(flags, int) and flags & st.SECRET else repr(raw)
            say(WARNING, "settings.toml %s=%s refused: %s; not used" % (key, shown, e))
            continue
        values[name] = v
    pw = getenv("DINAMICS_WEB_PASSWORD")
    if pw is not None and not (isinstance(pw, str) and 8 <= len(pw) <= 63):
        say(WARNING, "settings.toml DINAMICS_WEB_PASSWORD refused: 8-63 characters; not used")
    token = getenv("DINAMICS_RESEED")
    return values, (None if token is None else str(token))


def _serial_ok(sn):
    for ch in sn:
        if not ("0" <= ch <= "9" or "A" <= ch <= "Z" or "a" <= ch <= "z" or ch in "-_"):
            return False
    return True


def plan(file_values, token, stored, record, say):
    """Decide, per setting the file gives. Changes `stored` (the settings record, as the settings
    actor stores it: only values that differ from the default) and `record` (the seed record) in
    place. Returns (settings changed, record changed)."""
    changed = False
    rec_changed = False
    force = token is not None and record.get(RESEED) != token
    if force:
        record[RESEED] = token
        rec_changed = True
        say(INFO, "settings.toml DINAMICS_RESEED=%s: the file's values win at this boot" % token)
    for key, name in KEYS:
        if name not in file_values:
            continue
        f = file_values[name]
        r = st.row(name)
        live = _stored(stored, r)
        if force:
            take = True
        elif name in record:
            # seeded before: follow the file while the stored value is still the file's
            take = live == record[name]
        else:
            take = name not in stored
        if take:
            if live != f:
                changed = True
                if f == r[st.DEFAULT]:
                    stored.pop(name, None)
                else:
                    stored[name] = f
                say(INFO, "settings.toml %s=%s stored" % (key, _show(r, f)))
        elif live != f:
            say(WARNING, "settings.toml %s=%s ignored: the stored value %s (set over MQTT) wins; "
                "give DINAMICS_RESEED a new value to use the file" % (key, _show(r, f), _show(r, live)))
            continue
        if record.get(name) != f or name not in record:
            record[name] = f
            rec_changed = True
    return changed, rec_changed


def _stored(stored, r):
    """The value the settings actor will use: the stored one if the table accepts it."""
    if r[st.NAME] in stored:
        try:
            return st.parse(r, str(stored[r[st.NAME]]))
        except ValueError:
            pass
    return r[st.DEFAULT]


def _show(r, v):
    return "***" if r[st.FLAGS] & st.SECRET else repr(v)


def seed(getenv, fs, say):
    """Read settings.toml through getenv, update the settings store (and the seed record) on fs.
    say(level, text) prints. Returns True when the stored settings changed."""
    values, token = read_file(getenv, say)
    if not values and token is None:
        return False
    store = SlotStore(fs)
    rec_store = SlotStore(fs, "seed")
    stored = store.load()
    record = rec_store.load() or {}
    if stored is None:  # no settings record at all (new unit, or its files were deleted): a first
        stored = {}     # boot, whatever an old seed record says
        record = dict((k, v) for k, v in record.items() if k == RESEED)
    changed, rec_changed = plan(values, token, stored, record, say)
    try:
        if changed:
            store.save(stored)  # first: see the module doc
        if rec_changed:
            rec_store.save(record)
    except Exception as e:  # noqa: BLE001 - StoreError or OSError: read-only drive
        say(WARNING, "settings.toml values not stored (%s): the stored settings stay in use" % e)
        return False
    return changed
