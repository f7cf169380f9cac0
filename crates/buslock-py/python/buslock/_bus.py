"""What ``buslock.spidev`` and ``buslock.smbus2`` share: the bus lock held
around each call, re-entrant sessions, the owner-died hook, and importing
the wrapped package as an optional extra."""

import importlib
import threading
from typing import Any, Callable, Optional

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
