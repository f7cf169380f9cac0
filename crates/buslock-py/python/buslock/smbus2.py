"""``buslock.smbus2.SMBus``: the ``smbus2`` package's ``SMBus`` with the
bus lock held around every call.

    # from smbus2 import SMBus, i2c_msg        (before)
    from buslock.smbus2 import SMBus, i2c_msg  # after: one changed import

    with SMBus(1) as bus:                      # locks "i2c-1" around each call
        who = bus.read_byte_data(0x68, 0x75)
        with bus.session():                    # several calls, bus held throughout
            bus.write_byte(0x70, 0x04)         # select a mux channel
            bus.i2c_rdwr(i2c_msg.write(0x40, [0]), i2c_msg.read(0x40, 2))

The kernel serialises one ``I2C_RDWR``/``I2C_SMBUS`` call and nothing across
calls; the lock is the adapter (``/dev/i2c-N`` -> ``i2c-N``; see
``buslock.bus_lock_name``), shared with buslock-hal and ``buslock run
/dev/i2c-N``. Every method of ``smbus2.SMBus`` (``read_byte``,
``write_byte_data``, ``read_i2c_block_data``, ``i2c_rdwr``, ``process_call``,
``enable_pec``, ...) runs under the lock, except ``open``, ``close`` and
``fileno``; attributes read and write through.

``with bus.session():`` holds the bus across calls (re-entrant in its
thread; other threads wait). ``on_owner_died=f`` calls ``f(bus)`` holding
the bus before the first call after a holder died mid-transfer.
``dir=`` chooses the lock directory.

Needs the ``smbus2`` package: ``pip install buslock[smbus2]``.
"""

import os
from typing import Any, Callable, Optional, Union

from ._buslock import bus_lock_name
from ._bus import BusLock, LockedDevice, import_extra

_smbus2 = import_extra("smbus2", "smbus2", "buslock.smbus2")

#: smbus2's message class, for ``i2c_rdwr``.
i2c_msg = _smbus2.i2c_msg

__all__ = ["SMBus", "i2c_msg"]



class SMBus(LockedDevice):
    """``smbus2.SMBus`` with the bus lock held around every call."""

    # Calls that need no lock: they touch no bus.
    _UNLOCKED = frozenset(["open", "close", "fileno"])
    _NOT_OPEN = "SMBus is not open: call open(bus) first"

    def __init__(
        self,
        bus: Union[None, int, str] = None,
        force: bool = False,
        *,
        dir: Any = None,
        on_owner_died: Optional[Callable[["SMBus"], None]] = None,
    ) -> None:
        object.__setattr__(self, "_dev", _smbus2.SMBus(None, force))
        object.__setattr__(self, "_dir", dir)
        object.__setattr__(self, "_hook", on_owner_died)
        object.__setattr__(self, "_lock", None)
        if bus is not None:
            self.open(bus)

    def open(self, bus: Union[int, str]) -> None:
        """Open ``/dev/i2c-<bus>`` (or the node path `bus`); its lock is
        ``i2c-<N>``."""
        path = os.fspath(bus) if isinstance(bus, (str, os.PathLike)) else "/dev/i2c-%d" % bus
        object.__setattr__(
            self, "_lock", BusLock(bus_lock_name(path), self._dir, self, self._hook)
        )
        self._dev.open(bus)

    def i2c_rdwr(self, *msgs: Any) -> None:
        """Combined read/write transaction (``I2C_RDWR``), under the lock."""
        with self._held_lock():
            return self._dev.i2c_rdwr(*msgs)
