"""``buslock.spidev.SpiDev``: the ``spidev`` package's ``SpiDev`` with the
bus lock held around every call.

    # import spidev                       (before)
    from buslock import spidev            # after: one changed import

    spi = spidev.SpiDev()
    spi.open(0, 1)                        # locks "spi0" around each call
    spi.max_speed_hz = 1_000_000
    rx = spi.xfer2([0x01, 0x80, 0x00])    # one locked transfer
    with spi.session():                   # several calls, bus held throughout
        spi.writebytes([0x06])
        status = spi.readbytes(1)

The kernel serialises one transfer and nothing across transfers; the lock
is the whole *bus* (every chip select of ``/dev/spidevB.*`` shares the
lock ``spiB``; see ``buslock.bus_lock_name``), so every program using these
classes, Rust programs using buslock-hal and ``buslock run /dev/spidevB.C``
take turns. Methods and attributes are those of ``spidev.SpiDev`` (``open``,
``open_path``, ``close``, ``xfer``, ``xfer2``, ``xfer3``, ``readbytes``,
``writebytes``, ``writebytes2``, ``fileno``, ``mode``, ``max_speed_hz``,
``bits_per_word``, ``cshigh``, ``lsbfirst``, ``threewire``, ``loop``,
``no_cs``, ...); every call and every attribute write (which reconfigures
the device for all its users) runs under the lock.

``with spi.session():`` holds the bus across calls; it is re-entrant in the
thread that opened it, and other threads' calls wait for it to end.
``on_owner_died=f`` calls ``f(spi)`` holding the bus before the first call
after a holder died mid-transfer (reset the device there). ``dir=`` chooses
the lock directory (default: ``$BUSLOCK_DIR`` or buslock's default).

Needs the ``spidev`` package: ``pip install buslock[spidev]``.
"""

import os
from typing import Any, Callable, Optional

from ._buslock import bus_lock_name
from ._bus import BusLock, LockedDevice, import_extra

_spidev = import_extra("spidev", "spidev", "buslock.spidev")

__all__ = ["SpiDev"]


class SpiDev(LockedDevice):
    """``spidev.SpiDev`` with the bus lock held around every call."""

    # Calls that need no lock: they touch no bus.
    _UNLOCKED = frozenset(["open", "open_path", "close", "fileno"])
    _NOT_OPEN = "SpiDev is not open: call open(bus, device) first"

    def __init__(
        self,
        bus: Optional[int] = None,
        device: Optional[int] = None,
        *,
        dir: Any = None,
        on_owner_died: Optional[Callable[["SpiDev"], None]] = None,
    ) -> None:
        object.__setattr__(self, "_dev", _spidev.SpiDev())
        object.__setattr__(self, "_dir", dir)
        object.__setattr__(self, "_hook", on_owner_died)
        object.__setattr__(self, "_lock", None)
        if bus is not None:
            self.open(bus, 0 if device is None else device)

    def _use(self, name: str) -> None:
        object.__setattr__(
            self, "_lock", BusLock(bus_lock_name(name), self._dir, self, self._hook)
        )

    def open(self, bus: int, device: int) -> None:
        """Open ``/dev/spidev<bus>.<device>``; its bus lock is ``spi<bus>``."""
        self._use("/dev/spidev%d.%d" % (bus, device))
        self._dev.open(bus, device)

    def open_path(self, path: str) -> None:
        """Open the SPI device node `path` (spidev 3.6+)."""
        self._use(os.fspath(path))
        self._dev.open_path(path)

    def xfer(self, values: Any, *args: Any) -> Any:
        """Transfer (chip select released between bytes), under the lock."""
        with self._held_lock():
            return self._dev.xfer(values, *args)

    def xfer2(self, values: Any, *args: Any) -> Any:
        """Transfer (chip select held for the block), under the lock."""
        with self._held_lock():
            return self._dev.xfer2(values, *args)

    def xfer3(self, values: Any, *args: Any) -> Any:
        """Transfer a block of any size, under the lock."""
        with self._held_lock():
            return self._dev.xfer3(values, *args)

    def readbytes(self, n: int) -> Any:
        """Read `n` bytes, under the lock."""
        with self._held_lock():
            return self._dev.readbytes(n)

    def writebytes(self, values: Any) -> Any:
        """Write bytes, under the lock."""
        with self._held_lock():
            return self._dev.writebytes(values)

    def writebytes2(self, values: Any) -> Any:
        """Write a block of any size, under the lock."""
        with self._held_lock():
            return self._dev.writebytes2(values)
