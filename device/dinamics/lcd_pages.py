"""What the unit's LCD shows (actors/lcd.py), imported with the driver once a display answers, so
a unit without a display does not pay for it. Functions of the lcd actor `a` (its fields: state,
pilot, car_ma, session_ws, total_wh, ct, link_down, ct_stale, broker, net, net_down, text, cols,
rows, _page, settings, port). Every line is fitted to the width; numbers are fixed-width fields."""

_STATES = ("starting", "not connected", "connected", "charging", "vent required",
           "diode check", "GFCI fault", "no ground", "stuck relay", "GFI self-test",
           "over temperature", "over current")


def _state_name(s):
    if s is None:
        return "no EVSE data"
    if 0 <= s < len(_STATES):
        return _STATES[s]
    return {254: "sleeping", 255: "disabled"}.get(s, "state %02x" % s)


def _fit(text, w):
    text = text[:w]
    return text + " " * (w - len(text))


def _amps(x):
    """A current as %4.1f, clamped so the field never widens."""
    return "%4.1f" % (min(max(x, 0.0), 99.9))


def fault(a):
    """The error to hold on the glass (two lines), or None."""
    if a.link_down is not None:
        return ("EVSE LINK DOWN", "no reply to " + a.link_down)
    s = a.state
    if s is not None and 4 <= s < 254:
        return ("EVSE FAULT", _state_name(s))
    if a.ct_stale:
        return ("CT STALE", "no fresh current")
    return None


def pages(a):
    """The enabled rotating pages, as page numbers 0..3."""
    mask = a.settings.get("lcd_pages")
    return [i for i in range(4) if mask & (1 << i)]


def page_lines(a, page, w):
    if page == 0:
        pilot = "--" if a.pilot is None else "%2d" % min(a.pilot, 99)
        car = " --.-" if a.car_ma is None else " " + _amps(a.car_ma / 1000)
        return (_state_name(a.state),
                "Car" + car + ("A  Pilot " if w >= 20 else "A  P") + pilot + "A")
    if page == 1:
        brk = a.settings.get("breaker")
        ct = a.ct
        if ct is None:
            return ("CT  no readings", "breaker %3dA" % brk)
        bw = (w - 2) // 3
        nums = []
        bars = []
        for i in range(3):
            if ct[2] & (1 << i):
                a = ct[1][i]
                nums.append(_amps(a))
                n = min(bw, int(bw * a / brk + 0.5)) if brk else 0
                bars.append("#" * n + "." * (bw - n))
            else:
                nums.append(" -.-")
                bars.append("-" * bw)
        head = " ".join(nums) + "A"
        if w >= 20:
            head += "/%3d" % brk
        return (head, " ".join(bars))
    if page == 2:
        sess = "  -.--" if a.session_ws is None else "%6.2f" % (min(a.session_ws / 3.6e6, 999.99))
        tot = "      --" if a.total_wh is None else "%8d" % min(a.total_wh // 1000, 99999999)
        return ("Sess" + sess + " kWh", "Tot" + tot + "kWh")
    # page 3: network
    net = a.net
    if net is not None and net[1] == "ap":
        ssid, pw = net[2], net[3]
        return ("AP " + ssid if len(ssid) + 3 <= w else ssid,
                ("PW " + pw if len(pw) + 3 <= w else pw) if pw else "open setup AP")
    if a.net_down is not None:
        return ("WiFi down", a.net_down)
    ip = net[0] if net is not None else a.port.ip()
    b = "connected" if a.broker else ("lost" if a.broker is False else (
        "none" if not a.settings.get("mqtt_host") else "connecting"))
    return (ip or "no network", "MQTT " + b)


def lines(a):
    """The text for the glass now, one str per row (each exactly `cols` wide)."""
    w, rows = a.cols, a.rows
    if a.text is not None:
        t = a.text
        out = [t[i * w:(i + 1) * w] for i in range(rows)]
    else:
        blocks = []
        f = fault(a)
        if f is not None:
            blocks.append(f)
        on = pages(a)
        if on:
            need = rows // 2 - len(blocks)
            for k in range(need):
                p = on[(a._page * need + k) % len(on)]
                if k < len(on):
                    blocks.append(page_lines(a, p, w))
        out = []
        for b in blocks:
            out.extend(b)
    out = out[:rows]
    while len(out) < rows:
        out.append("")
    return [_fit(ln, w) for ln in out]
