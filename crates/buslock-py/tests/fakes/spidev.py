"""A fake ``spidev`` module for the tests: no device, every byte goes to
the fake bus file (see _fakebus)."""

import _fakebus


class SpiDev:
    def __init__(self, bus=None, device=None):
        self.mode = 0
        self.max_speed_hz = 500000
        self.bits_per_word = 8
        self.opened = None
        if bus is not None:
            self.open(bus, device)

    def open(self, bus, device):
        self.opened = (bus, device)

    def open_path(self, path):
        self.opened = path

    def close(self):
        self.opened = None

    def fileno(self):
        return -1

    def _xfer(self, values):
        with _fakebus.Call() as call:
            out = []
            for v in values:
                call.byte()
                out.append(v ^ 0xFF)
            return out

    def xfer(self, values, speed_hz=0, delay_usecs=0, bits_per_word=0):
        return self._xfer(values)

    def xfer2(self, values, speed_hz=0, delay_usecs=0, bits_per_word=0):
        return self._xfer(values)

    def xfer3(self, values, speed_hz=0, delay_usecs=0, bits_per_word=0):
        return tuple(self._xfer(values))

    def readbytes(self, n):
        return self._xfer([0xFF] * n)

    def writebytes(self, values):
        self._xfer(values)

    def writebytes2(self, values):
        self._xfer(values)
