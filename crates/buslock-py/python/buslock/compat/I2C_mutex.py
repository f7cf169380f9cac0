"""Drop-in for Dexter Industries' ``I2C_mutex`` module (RFR_Tools; used by
the GoPiGo3, DI_Sensors and friends), on buslock.

    # import I2C_mutex                              (before)
    from buslock.compat import I2C_mutex            # after

    mutex = I2C_mutex.Mutex()
    mutex.acquire()
    ...                                             # the I2C bus is ours
    mutex.release()

    I2C_mutex.I2C_Mutex_Acquire()                   # older releases' functions
    I2C_mutex.I2C_Mutex_Release()

Dexter's original polls ``fcntl.lockf(LOCK_EX | LOCK_NB)`` on
``/run/lock/DexterLockI2C`` every 1 ms and sleeps 1 ms after each release.
The drop-in takes the buslock mutex of the I2C bus (``i2c-1`` by default,
the same lock as ``buslock.smbus2.SMBus(1)`` and buslock-hal on
``/dev/i2c-1``: ``bus=`` chooses another) and, as a companion, an exclusive
record lock on Dexter's file (which conflicts with the ``lockf`` of programs
not yet migrated), so every program on the robot excludes every other
whichever convention it still uses. Waiting blocks in buslock's queue; a
holder that dies releases the bus and the next holder is told
(``previous_owner_died``); each unmigrated program that is contending gets
one turn between two turns of buslock users (``bench/shares.py``).

Where behaviour differs, on purpose:

- ``with Mutex():`` acquires on entry (Dexter's ``__enter__`` did not,
  only ``__exit__`` released).
- Only the thread that acquired can release; an unbalanced ``release()``
  is ignored, as before. ``acquire()`` again from the holding thread raises
  RuntimeError instead of waiting forever.

The "overall mutex" flag file (``/run/lock/DexterOS_overall_mutex``; its
presence asks every ``ifMutexAcquire`` caller to lock) is kept as it was:
``set_overall_mutex()``, ``release_overall_mutex()``, ``overall_mutex()``.
``BUSLOCK_LEGACY_DIR`` moves both files (default ``/run/lock``).
"""

import os
import threading
from typing import Any, Optional

from .._buslock import Mutex as _Mutex
from .._buslock import bus_lock_name

__all__ = ["Mutex", "I2C_Mutex_Acquire", "I2C_Mutex_Release", "LOCK_FILE", "OVERALL_FILE"]

#: Dexter's I2C lock file, in the legacy directory.
LOCK_FILE = "DexterLockI2C"
#: Dexter's "overall mutex" flag file, in the legacy directory.
OVERALL_FILE = "DexterOS_overall_mutex"


def _legacy_dir(legacy_dir: Any) -> str:
    if legacy_dir is None:
        legacy_dir = os.environ.get("BUSLOCK_LEGACY_DIR") or "/run/lock"
    return os.fspath(legacy_dir)


class Mutex(object):
    """Dexter's ``I2C_mutex.Mutex(debug=False)`` on buslock."""

    def __init__(
        self,
        debug: bool = False,
        *,
        bus: int = 1,
        dir: Any = None,
        legacy_dir: Any = None,
        legacy: bool = True,
    ) -> None:
        self.mutex_debug = debug
        folder = _legacy_dir(legacy_dir)
        self.DexterLockI2C_handle_filename = os.path.join(folder, LOCK_FILE)
        self.DexterOverallMutex_filename = os.path.join(folder, OVERALL_FILE)
        self.overall_mutex_handle: Optional[Any] = None
        self._bus = bus
        self._dir = dir
        self._legacy = legacy
        self._mutex: Optional[_Mutex] = None
        self._opening = threading.Lock()

    @property
    def mutex(self) -> _Mutex:
        """The buslock mutex of the I2C bus, opened at its first use, so
        that constructing one (as importing ``easy_mutex`` does) creates no
        file."""
        with self._opening:
            if self._mutex is None:
                self._mutex = _Mutex(
                    bus_lock_name("/dev/i2c-%d" % self._bus),
                    self._dir,
                    legacy_record_lock=self.DexterLockI2C_handle_filename
                    if self._legacy
                    else None,
                    legacy_poll_interval=0.001,
                )
            return self._mutex

    def _say(self, what: str) -> None:
        if self.mutex_debug:
            print(what)

    def acquire(self) -> None:
        """Wait until this thread holds the I2C bus."""
        self._say("I2C mutex acquire")
        self.mutex.acquire()
        self._say("I2C mutex acquired")

    def release(self) -> None:
        """Release the bus; a release without a hold is ignored."""
        self._say("I2C mutex release")
        if self.mutex.holder_thread is not None:
            self.mutex.release()

    @property
    def previous_owner_died(self) -> bool:
        """Whether the last acquire found the previous holder dead."""
        return self.mutex.previous_owner_died

    def enableDebug(self) -> None:
        self.mutex_debug = True

    def disableDebug(self) -> None:
        self.mutex_debug = False

    def set_overall_mutex(self) -> None:
        """Ask every ``ifMutexAcquire`` caller to lock (creates the flag file)."""
        try:
            self.overall_mutex_handle = open(self.DexterOverallMutex_filename, "w")
            os.chmod(self.DexterOverallMutex_filename, 0o666)
        except OSError as e:
            print(e)

    def release_overall_mutex(self) -> None:
        """Remove the flag file."""
        try:
            if self.overall_mutex_handle is not None:
                self.overall_mutex_handle.close()
            os.remove(self.DexterOverallMutex_filename)
        except OSError:
            pass

    def overall_mutex(self) -> bool:
        """Whether the flag file exists."""
        return os.path.isfile(self.DexterOverallMutex_filename)

    def __enter__(self) -> "Mutex":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_module_mutex: Optional[Mutex] = None


def _shared() -> Mutex:
    global _module_mutex
    if _module_mutex is None:
        _module_mutex = Mutex()
    return _module_mutex


def I2C_Mutex_Acquire() -> None:
    """Older releases' module function: acquire the I2C bus."""
    _shared().acquire()


def I2C_Mutex_Release() -> None:
    """Older releases' module function: release the I2C bus."""
    _shared().release()
