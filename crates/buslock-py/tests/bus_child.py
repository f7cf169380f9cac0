"""A process that talks to the fake bus through ``buslock.spidev`` /
``buslock.smbus2`` (or, with mode ``bare``, through the fake packages
directly): ``bus_child.py KIND MODE COUNT``. Prints ``@done <violations
it saw> <resets it made>`` at the end."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes"))

import _fakebus  # noqa: E402

kind, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
resets = 0


def hook(dev):
    global resets
    resets += 1
    _fakebus.put("R")
    # The hook holds the bus and may use the device (a reset sequence).
    if kind == "spidev":
        dev.writebytes([0xFF])
    else:
        dev.write_i2c_block_data(0x40, 0, [0])


if kind == "spidev":
    if mode == "bare":
        import spidev

        dev = spidev.SpiDev()
        dev.open(0, 1)
    else:
        from buslock.spidev import SpiDev

        dev = SpiDev(0, 1, on_owner_died=hook)
        dev.max_speed_hz = 1000000  # a setter, under the lock
    calls = [
        lambda: dev.xfer2([1, 2, 3, 4, 5, 6]),
        lambda: dev.writebytes([1, 2, 3]),
        lambda: dev.readbytes(4),
    ]
else:
    if mode == "bare":
        import smbus2
        from smbus2 import i2c_msg

        dev = smbus2.SMBus(1)
    else:
        from buslock.smbus2 import SMBus, i2c_msg

        dev = SMBus(1, on_owner_died=hook)
    calls = [
        lambda: dev.write_i2c_block_data(0x40, 1, [1, 2, 3, 4]),
        lambda: dev.i2c_rdwr(i2c_msg.write(0x40, [0]), i2c_msg.read(0x40, 3)),
        lambda: dev.read_byte_data(0x40, 2),
    ]

# Start together with the other children, however slowly each started.
go = os.environ.get("BUS_GO_FILE")
if go:
    import time

    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        assert time.monotonic() < deadline, "no start signal"
        time.sleep(0.001)

for i in range(count):
    if mode == "session":
        with dev.session():
            mark = _fakebus.size()
            _fakebus.put("O")
            with dev.session():  # re-entrant in this thread
                calls[i % 3]()
                calls[(i + 1) % 3]()
            calls[(i + 2) % 3]()
            _fakebus.put("C")
            _fakebus.violations += _fakebus.foreign_since(mark, lambda k, s: k == "O")
    else:
        calls[i % 3]()
print("@done", _fakebus.violations, resets, flush=True)
