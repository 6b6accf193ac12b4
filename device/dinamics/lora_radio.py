"""The radio interface lora_link uses, over an RFM9x (SX127x) and adafruit_rfm9x, without its
blocking calls (docs/lora.md "Radio").

adafruit_rfm9x's send() busy-polls until the packet is out (up to 2 s), receive() waits 0.5 s
unless told otherwise, send_with_ack() blocks for seconds. Used here:
  - construction (reset pulse + 10 ms: once, at boot) and its register properties (SF, BW, CR,
    power, CRC);
  - send: the FIFO is filled and TX mode entered with the library's own register helpers
    (_write_u8/_write_from, transmit()) -- what send() does before its wait loop -- and the
    TxDone flag (tx_done()) is looked at on later calls of busy(); no RadioHead header is added
    (our frame carries what we need; CRC stays on);
  - receive: rx_done() first, and only when a packet is there receive(timeout=0, with_header=True)
    -- with timeout 0 its wait loop ends at once -- which reads the FIFO and listens again.
Takes its bus and pins as arguments (the board port builds them), Adafruit style.
"""
FREQ_MHZ = {868: 868.1, 869: 869.525, 915: 915.0}
_REG_FIFO = 0x00
_REG_FIFO_PTR = 0x0D
_REG_IRQ = 0x12
_REG_PAYLOAD_LEN = 0x22
_REG_MODEM_STAT = 0x18


class Rfm9xRadio:
    def __init__(self, spi, cs, reset, band=868, sf=7, bw_khz=125, tx_power=13):
        import adafruit_rfm9x

        r = adafruit_rfm9x.RFM9x(spi, cs, reset, FREQ_MHZ[band], crc=True)
        r.spreading_factor = sf
        r.signal_bandwidth = bw_khz * 1000
        r.coding_rate = 5
        r.tx_power = tx_power  # 13 dBm: within EU868's 25 mW ERP with a plain antenna
        self.rfm = r
        self.sending = False
        self.rssi = 0
        self.sent = 0
        self.crc_errors = 0
        r.listen()

    def configure(self, band, sf, bw_khz):
        """New band / SF / BW (settings changed): register writes only."""
        r = self.rfm
        r.idle()
        r.frequency_mhz = FREQ_MHZ[band]
        r.spreading_factor = sf
        r.signal_bandwidth = bw_khz * 1000
        self.sending = False
        r.listen()

    def send(self, frame):
        """Start sending `frame`; False while the previous one is still on air."""
        if self.busy():
            return False
        r = self.rfm
        r.idle()
        r._write_u8(_REG_FIFO_PTR, 0x00)
        r._write_from(_REG_FIFO, frame)
        r._write_u8(_REG_PAYLOAD_LEN, len(frame))
        r.transmit()
        self.sending = True
        self.sent += 1
        return True

    def busy(self):
        if self.sending:
            r = self.rfm
            if not r.tx_done():
                return True
            r._write_u8(_REG_IRQ, 0xFF)
            self.sending = False
            r.listen()
        return False

    def carrier(self):
        """RegModemStat: signal detected / synchronised / header valid (a frame coming in)."""
        if self.sending:
            return False
        return bool(self.rfm._read_u8(_REG_MODEM_STAT) & 0x0B)

    def receive(self):
        if self.sending and self.busy():
            return None
        r = self.rfm
        if not r.rx_done():
            return None
        n = r.crc_error_count
        pkt = r.receive(timeout=0, with_header=True, keep_listening=True)
        if r.crc_error_count != n:
            self.crc_errors += 1
        if pkt is None:
            return None
        self.rssi = int(r.last_rssi)
        return bytes(pkt)
