"""A fake ``smbus2`` module for the tests: no device, every byte goes to
the fake bus file (see _fakebus)."""

import _fakebus


class i2c_msg:
    def __init__(self, addr, flags, buf):
        self.addr, self.flags, self.buf = addr, flags, list(buf)

    @staticmethod
    def read(address, length):
        return i2c_msg(address, 1, [0] * length)

    @staticmethod
    def write(address, buf):
        return i2c_msg(address, 0, buf)

    def __iter__(self):
        return iter(self.buf)


class SMBus:
    def __init__(self, bus=None, force=False):
        self.fd = None
        self.pec = 0
        if bus is not None:
            self.open(bus)

    def open(self, bus):
        self.fd = bus

    def close(self):
        self.fd = None

    def fileno(self):
        return -1

    def _bytes(self, n):
        with _fakebus.Call() as call:
            for _ in range(n):
                call.byte()

    def read_byte_data(self, i2c_addr, register, force=None):
        self._bytes(3)
        return register

    def write_byte_data(self, i2c_addr, register, value, force=None):
        self._bytes(3)

    def read_i2c_block_data(self, i2c_addr, register, length, force=None):
        self._bytes(2 + length)
        return [register] * length

    def write_i2c_block_data(self, i2c_addr, register, data, force=None):
        self._bytes(2 + len(data))

    def i2c_rdwr(self, *i2c_msgs):
        with _fakebus.Call() as call:
            for m in i2c_msgs:
                call.byte()
                for i in range(len(m.buf)):
                    call.byte()
                    if m.flags & 1:
                        m.buf[i] = i
