"""buslock: a named, crash-safe, fair, system-wide mutex for processes and
threads sharing a hardware bus (SPI, I2C) on Linux.

    import buslock
    spi = buslock.Mutex("SPI")          # dir=None: $BUSLOCK_DIR or the default
    with spi:                           # blocks; Ctrl-C raises KeyboardInterrupt
        if spi.previous_owner_died:     # the last holder crashed mid-transfer
            reset_bus()
        xfer(...)

Every program that opens "SPI" in the same lock directory takes turns with
every other, in whatever process or thread it runs. The lock is released
when its holder dies, waiters are served in arrival order, and
``spi.owner`` says who holds it.

Bus classes that lock for you: ``buslock.spidev.SpiDev`` and
``buslock.smbus2.SMBus`` (drop-ins for the spidev and smbus2 packages).

Migrating from Dexter's ``DI_Mutex`` or from ``global_lock``: see
``buslock.compat``.
"""

from ._buslock import (
    INTERRUPT_SLICE,
    Event,
    LongestHold,
    Mutex,
    Owner,
    Reader,
    RwLock,
    RwLockHold,
    Stats,
    Waiter,
    __version__,
    bus_lock_name,
    lock_dir,
    lock_names,
)
from .errors import (
    CorruptLockFile,
    DeadlockError,
    Error,
    InvalidName,
    LockOrderError,
    LockOrderWarning,
    PermissionDenied,
)

__all__ = [
    "INTERRUPT_SLICE",
    "CorruptLockFile",
    "DeadlockError",
    "Error",
    "Event",
    "InvalidName",
    "LockOrderError",
    "LockOrderWarning",
    "LongestHold",
    "Mutex",
    "Owner",
    "PermissionDenied",
    "Reader",
    "RwLock",
    "RwLockHold",
    "Stats",
    "Waiter",
    "__version__",
    "bus_lock_name",
    "lock_dir",
    "lock_names",
]
