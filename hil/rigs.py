"""Rigs: what a scenario drives. The OpenEVSE emulator with a car behind it (hil.evse_emulator,
hil.ev_model), a house load (hil.house.HouseLoad) and a CT injector that plays house + the car's
real draw into the unit's CT feed (hil.house.CtInjector). Two rigs share one interface, so every
scenario, check and figure is the same code for both:

  WorldRig  the firmware in this process on the host port, joined to the emulator and the CT feed
            by pseudo-terminal pairs (hil.world.World), on the VIRTUAL clock: deterministic, fast.
            It may also look inside the firmware (`rig.fw` = the App) for extra figures.
  BenchRig  (hil.bench_rig) a real unit on real serial ports, real time; `rig.fw` is None.

Everything is measured from the wire and from the truth, never from the firmware's own view,
into the rig's hil.tape.Tape:
  - a load step happens when the house model changes (`rig.set_house`);
  - a command happens when the emulator receives its line (emulator log, rx, with its ms);
  - the truth is house + the car's actual draw per phase (the EV model lags the pilot by
    response_s), sampled every rig step.
"""
from hil.broker import Mosquitto, MosquittoMissing
from hil.checks import Skip
from hil.tape import Tape

STEP_MS = 10  # rig step (virtual time)
LINK_TICK_MS = 5  # virtual time per byte exchange: the RAPI round trip on the host (see WorldRig)


class Rig:
    """What a scenario drives. Subclasses provide _advance(ms), now_ms(), link_up(), configure()."""

    virtual = True
    mode = "host"
    fw = None  # the firmware App when it runs in this process (introspection), else None
    link = "cable"  # "lora": a LoRa-linked install (hil.world.World with the bridge)
    broker: "Broker | None" = None  # a Broker the rig controls (start/stop), or None
    progress = None  # a hil.progress.Progress: a line now and then while the rig runs

    def __init__(self, emu, house, injector):
        self.emu = emu
        self.house = house
        self.injector = injector
        self.tape = Tape()
        self.settings = _defaults()
        self._seen = emu.log_total
        self.notes = []
        self.t_begin = self.now_ms()

    # --- time ---------------------------------------------------------------------------------
    def step(self, ms=STEP_MS):
        self._advance(ms)
        self.observe()
        if self.progress is not None:
            self.progress.tick(self.progress_text)

    def progress_text(self):
        """Where the run is: rig time and the last thing the scenario did."""
        now = self.now_ms()
        text = "rig time %.0f s" % ((now - self.t_begin) / 1000.0)
        if self.tape.marks:
            ms, label, _ = self.tape.marks[-1]
            text += ", last event %s at %.1f s" % (label, (ms - self.t_begin) / 1000.0)
        return text

    def observe(self):
        now = self.now_ms()
        self.tape.record(now, tuple(float(x) for x in self.house.amps(now)),
                         tuple(float(x) for x in self.emu.ev_phase_currents()))
        new = self.emu.log_total - self._seen
        if new > 0:
            for ms, kind, text in self.emu.log[-min(new, len(self.emu.log)):]:
                if kind == "rx":
                    self.tape.add_rx(ms, text)
                elif kind == "tx":
                    self.tape.sent.append((ms, text))
            self._seen = self.emu.log_total

    def run_for(self, ms, step=STEP_MS):
        end = self.now_ms() + ms
        while self.now_ms() < end:
            self.step(step)

    def run_until(self, predicate, timeout_ms, step=STEP_MS):
        end = self.now_ms() + timeout_ms
        while self.now_ms() < end:
            self.step(step)
            if predicate():
                return True
        return False

    # --- the world around the unit -------------------------------------------------------------
    def set_house(self, amps3, label="load"):
        """Change the house load now. Returns (t_step, pilot in effect)."""
        now = self.now_ms()
        self.house.set(now, tuple(float(x) for x in amps3))
        pilot = self.emu.current_capacity
        self.tape.mark(now, label, amps=tuple(amps3), pilot=pilot)
        self.observe()
        return now, pilot

    def plug(self, ev):
        self.tape.mark(self.now_ms(), "plug", ev=repr(ev))
        return self.emu.plug(ev)

    def unplug(self):
        self.tape.mark(self.now_ms(), "unplug")
        self.emu.unplug()

    def reboot_controller(self):
        self.tape.mark(self.now_ms(), "reboot")
        self.emu.reboot()

    def ct_feed(self, enabled):
        """False: the feed goes silent (no R lines at all)."""
        self.tape.mark(self.now_ms(), "ct feed " + ("on" if enabled else "off"))
        self.injector.enabled = enabled

    def ct_fitted(self, fitted):
        """(1, 0, 1): CT2 sends '-' (no data), as when its clamp is pulled out of its input."""
        self.tape.mark(self.now_ms(), "ct fitted %s" % (fitted,))
        self.injector.fitted = tuple(fitted)

    def car_draw(self):
        return max(self.emu.ev_phase_currents())

    def align_ct(self, before_ms):
        """Virtual time: run until the next CT reading is `before_ms` away, so that a load step
        made now falls at a known place in the CT window (the figures of a scenario whose earlier
        part takes real time, e.g. waiting for a broker, stay reproducible). No-op in real time."""
        if not self.virtual:
            return
        inj = self.injector
        period = inj.period_ms
        end = self.now_ms() + 2 * period
        while self.now_ms() < end:
            nxt = getattr(inj, "_next", None)
            if nxt is None or (nxt - self.now_ms()) % period == before_ms % period:
                return
            self.step(LINK_TICK_MS)

    def configure(self, **values):
        self.settings.update(values)
        self._configure(values)
        if "cte" in values and self.injector is not None:
            # the unit captures only its fitted CTs (ct_meter): so does the feed
            cts = [int(c) - 1 for c in str(values["cte"]) if c in "123"]
            if cts:
                self.injector.capture(cts)

    def close(self):
        pass

    # --- provided by each rig -------------------------------------------------------------------
    def now_ms(self):
        raise NotImplementedError

    def _advance(self, ms):
        raise NotImplementedError

    def _configure(self, values):
        raise NotImplementedError

    def link_up(self):
        raise NotImplementedError

    def ct_fresh(self):
        raise NotImplementedError

    def cut_link(self, cut):
        raise NotImplementedError

    def net_up(self):
        """True/False when the rig can tell whether the unit is on its broker, else None."""
        return None

    def worst_pass_ms(self):
        return None


def _defaults():
    from dinamics.settings import defaults

    return defaults()


class WorldRig(Rig):
    """The firmware in this process (hil.world.World), virtual clock."""

    def __init__(self, house=None, broker=None, serial=None, ct_period_ms=300, radio=None,
                 port_kwargs=None, **emulator_kwargs):
        """radio: a hil.sim_radio.SimRadio: the unit runs its wifi actor on it (rig.wifi()).
        port_kwargs: more for the host port (e.g. the web UI's web_port, web_password)."""
        from hil.house import HouseLoad
        from hil.world import World

        kw = dict(port_kwargs or {})
        if radio is not None:
            kw["radio"] = radio
        self.world = World(virtual=True, out=None, ct=True, house=house or HouseLoad((0, 0, 0)),
                           ct_period_ms=ct_period_ms, broker=broker, serial=serial,
                           port_kwargs=kw or None, **emulator_kwargs)
        self.radio = radio
        self.fw = self.world.app
        self.link = self.world.link
        # pyserial raises "Write timeout" when a write that DID go through took longer than the
        # port's write_timeout (the process was preempted on a busy machine): keep the line.
        inj = self.world.injector
        assert inj is not None
        inj.writer.port = _Patient(inj.writer.port)  # pyright: ignore[reportAttributeAccessIssue]
        super().__init__(self.world.emu, self.world.house, self.world.injector)

    def now_ms(self):
        return self.world.ms()

    def _advance(self, ms):
        # Like World.step, but ONE exchange per LINK_TICK_MS of virtual time: a line the firmware
        # writes in a pass reaches the emulator at the next tick and its answer comes back to the
        # firmware at that tick, so a RAPI round trip takes LINK_TICK_MS (a real 115200-baud UART
        # plus a board pass: a few ms). World.step runs a whole round trip inside one clock value
        # (0 ms), which no real link does and which time-ordering logic cannot see as "after".
        w = self.world
        clock, inj, ct_modem = w.clock, w.injector, w.ct_modem
        assert clock is not None and inj is not None and ct_modem is not None
        left = ms
        while left > 0:
            d = LINK_TICK_MS if left >= LINK_TICK_MS else left
            left -= d
            clock.advance(d)
            now = w.ms()
            sent = inj.sent
            inj.poll(now)
            if inj.sent != sent:  # only the rig writes into the CT feed
                ct_modem.pump()
            w.modem.pump()
            w.emu.poll()
            w.modem.pump()
            w.lora_pass()
            w.sched.run_once()
            if left > 0:
                self.observe()

    def link_up(self):
        return self.fw.rapi.up

    def ct_fresh(self):
        return self.fw.balancer.good_t is not None

    def _configure(self, values):
        for name, value in values.items():
            if self.world.set(name, value) is None:
                raise RuntimeError("setting %s=%r refused" % (name, value))

    def cut_link(self, cut):
        if self.world.medium is not None:  # LoRa-linked: the radio dies
            self.tape.mark(self.now_ms(), "radio " + ("dead" if cut else "back"))
            self.world.medium.down = bool(cut)
            return
        self.tape.mark(self.now_ms(), "cable " + ("cut" if cut else "joined"))
        self.world.modem.cut = bool(cut)

    def wifi(self, op, ssid="home", **kw):
        """A scenario step on the simulated air (needs a rig built with radio=SimRadio()):
          "add"     the network appears (kw: password, rssi, channel, join_ms, dhcp, refuse)
          "remove"  it disappears (a station on it loses its link)
          "drop"    the station loses its link, the network stays (it rejoins at the next try)
          "dhcp"    kw on=False: its DHCP server goes silent (a join then hangs until the
                    watchdog: hil.sim_radio.BoardReset); on=True: it answers again"""
        r = self.radio
        if r is None:
            raise RuntimeError("this rig has no simulated radio (WorldRig(radio=SimRadio()))")
        self.tape.mark(self.now_ms(), "wifi " + op, ssid=ssid)
        if op == "add":
            r.add(ssid, **kw)
        elif op == "remove":
            r.remove(ssid)
        elif op == "drop":
            r.drop()
        elif op == "dhcp":
            r.nets[ssid].dhcp = bool(kw.get("on", True))
        else:
            raise ValueError("unknown wifi step %r" % op)

    def net_up(self):
        mq = self.fw.mqtt
        return bool(mq is not None and mq.connected)

    def worst_pass_ms(self):
        return self.world.sched.worst_pass_us / 1000.0

    def close(self):
        self.world.close()


class _Patient:
    """Wraps a pyserial port: a SerialTimeoutException on write is counted, not raised."""

    def __init__(self, ser):
        self.ser = ser
        self.timeouts = 0

    def write(self, data):
        import serial

        try:
            return self.ser.write(data)
        except serial.SerialTimeoutException:
            self.timeouts += 1
            return len(data)

    def __getattr__(self, name):
        return getattr(self.ser, name)


class Broker(Mosquitto):
    """The rig's mosquitto (hil.broker.Mosquitto); a missing mosquitto skips the scenario."""

    def __init__(self, port=None, bind="127.0.0.1"):
        try:
            super().__init__(port, bind)
        except MosquittoMissing as e:
            raise Skip(str(e))
