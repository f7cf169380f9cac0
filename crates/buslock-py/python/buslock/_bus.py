"""What ``buslock.spidev`` and ``buslock.smbus2`` share: the bus lock held
around each call, re-entrant sessions, the owner-died hook, and importing
the wrapped package as an optional extra."""

import importlib
import threading
from typing import Any, Callable, FrozenSet, Optional, TypeVar

from ._buslock import Mutex


def import_extra(module: str, extra: str, user: str) -> Any:
    """Import the wrapped package `module`, or raise ImportError naming the
    extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            "%s needs the %r package, which is not installed: pip install buslock[%s] "
            "(or pip install %s)" % (user, module, extra, module),
            name=module,
        ) from e


class BusLock:
    """The buslock mutex of one bus, held by one thread at a time, and
    re-entrant within that thread: calls inside ``with dev.session():`` do
    not lock again.

    ``on_owner_died(device)`` runs (holding the bus) before the first call
    after another holder died while holding it; if it raises, the call
    fails with its exception and the hook runs again next time.
    """

    def __init__(
        self,
        name: str,
        dir: Any,
        device: Any,
        on_owner_died: Optional[Callable[[Any], None]],
    ) -> None:
        self.mutex = Mutex(name, dir)
        self._device = device
        self._hook = on_owner_died
        # Written only by the thread that holds the mutex, so another thread
        # never sees its own ident here.
        self._thread: Optional[int] = None
        self._depth = 0
        self._reset_pending = False

    def __enter__(self) -> "BusLock":
        me = threading.get_ident()
        if self._thread == me:
            self._depth += 1
            return self
        self.mutex.acquire()
        # Held from here: the hook may use the device's own methods.
        self._thread = me
        self._depth = 1
        try:
            if self.mutex.previous_owner_died:
                self._reset_pending = True
            if self._reset_pending:
                if self._hook is not None:
                    self._hook(self._device)
                self._reset_pending = False
        except BaseException:
            self._thread = None
            self._depth = 0
            self.mutex.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._thread = None
            self.mutex.release()

    def held(self) -> bool:
        """Whether the calling thread holds the bus through this object."""
        return self._thread == threading.get_ident()


_Device = TypeVar("_Device", bound="LockedDevice")


class LockedDevice:
    """The part of a bus class that does not depend on the bus: every call
    and attribute write of the wrapped device ``self._dev`` under the bus
    lock ``self._lock`` (set by ``open``), except the names in
    ``_UNLOCKED``; ``session()``, ``lock``, and use as a context manager."""

    #: Methods of the wrapped device that run without the lock.
    _UNLOCKED: FrozenSet[str] = frozenset()
    #: What to say when the device is used before ``open``.
    _NOT_OPEN = "the device is not open: call open() first"
    _dev: Any
    _lock: Optional[BusLock]

    @property
    def lock(self) -> Any:
        """The ``buslock.Mutex`` of this bus (after ``open``)."""
        return self._held_lock().mutex

    def _held_lock(self) -> BusLock:
        if self._lock is None:
            raise RuntimeError(self._NOT_OPEN)
        return self._lock

    def session(self) -> BusLock:
        """``with dev.session():`` holds the bus across several calls."""
        return self._held_lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._dev, name)
        if callable(value) and name not in self._UNLOCKED and not name.startswith("_"):
            def locked(*args: Any, **kwargs: Any) -> Any:
                with self._held_lock():
                    return value(*args, **kwargs)

            return locked
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # Settings (SPI mode, speed, ...) reconfigure the device for every
        # user of the bus.
        if self._lock is None:
            setattr(self._dev, name, value)
        else:
            with self._lock:
                setattr(self._dev, name, value)

    def __enter__(self: _Device) -> _Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the device."""
        self._dev.close()
