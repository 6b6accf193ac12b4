"""The board port's construction (dinamics.board_port.BoardPort.__init__): boot-time only,
imported by it and dropped after (heap, docs/heap.md), like board_profiles. Board modules are
touched here and in board_port only."""
import board
import busio

from dinamics import board_profiles as bp  # boot-time only too: code.py drops it after
from dinamics.board_port import AdcCapture, Console, _gpio
from dinamics.clock import BoardClock
from dinamics.store import FlashFs


def _env_int(getenv, name, default):
    v = getenv(name)
    return default if v is None else int(v)


def build(port):
    port.clock = BoardClock()
    port.console = Console(port.clock)
    port._feeder = None  # the WatchdogFeeder, once start_watchdog() ran
    port.fs = FlashFs("/")
    port.roles = bp.ROLES
    # Raises bp.BoardError (one line, code.py prints it) for an unknown board or a bad pin.
    port.board_name, port.pins = bp.resolve(bp.getenv, getattr(board, "board_id", ""), board,
                                            _gpio())
    print(bp.describe(port.board_name, port.pins))
    port.evse_uart = busio.UART(port.pin("EVSE_TX"), port.pin("EVSE_RX"),
                                baudrate=115200, timeout=0, receiver_buffer_size=512)
    port.ct_stream = None
    port.ct_adc = None
    if bp.getenv("DINAMICS_HIL") == 1:
        import usb_cdc

        port.ct_stream = usb_cdc.data
        if port.ct_stream is not None:
            port.ct_stream.timeout = 0  # default None blocks
    else:
        pins = [port.pin("CT1"), port.pin("CT2"), port.pin("CT3")]
        port.ct_adc = AdcCapture(pins, _env_int(bp.getenv, "DINAMICS_CT_RATE", 10013))
    port._i2c = None
    port._i2c_said = False
    have_lcd = port.pin("LCD_SDA") is not None and port.pin("LCD_SCL") is not None
    port.i2c_bus = port._i2c_bus if have_lcd else None  # the lcd actor is wired only with pins
    port.socket_pool = None
    port.ssl_context = None
    port.mac = b"\x00" * 6
    port.radio = None
    port.wifi_env = (bp.getenv("CIRCUITPY_WIFI_SSID"), bp.getenv("CIRCUITPY_WIFI_PASSWORD"),
                     bp.getenv("DINAMICS_AP_PASSWORD"))
    try:
        import socketpool
        import ssl
        import wifi

        # The stubs type mac_address as ReadableBuffer, a union that includes RGBMatrix.
        port.mac = bytes(wifi.radio.mac_address)  # pyright: ignore[reportArgumentType]
        port.socket_pool = socketpool.SocketPool(wifi.radio)
        port.ssl_context = ssl.create_default_context()
        port._wifi = wifi
    except ImportError:
        port._wifi = None
    if port._wifi is not None:
        try:
            import mdns
        except ImportError:
            mdns = None
        from dinamics.wifi_radio import WifiRadio

        port.radio = WifiRadio(port._wifi, port.socket_pool, mdns)
