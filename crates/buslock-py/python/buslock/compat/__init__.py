"""Drop-in replacements for the locks robot code already uses, on buslock.

Migrating is one changed import:

    # from di_sensors.easy_mutex import DI_Mutex      (Dexter Industries)
    from buslock.compat import DI_Mutex

    # from global_lock import global_lock             (posix_ipc semaphore)
    from buslock.compat import global_lock            # takes /NAME as a companion

    # import I2C_mutex                                (Dexter's I2C lock)
    from buslock.compat import I2C_mutex

    # from di_sensors.easy_mutex import ifMutexAcquire, ifMutexRelease
    from buslock.compat.easy_mutex import ifMutexAcquire, ifMutexRelease

(``I2C_mutex`` and ``easy_mutex`` lock the I2C bus ``i2c-1``, the lock that
``buslock.smbus2.SMBus(1)`` takes; see their own docs.)

Both keep their class names, constructors, methods and return values, with
buslock's semantics underneath: waiting blocks without polling, a holder
that dies releases the lock, threads of one process exclude each other, and
Ctrl-C while waiting raises KeyboardInterrupt.

Where the old behaviour cannot be kept, the choices are:

- Only the thread that took a lock can release it. Releasing a lock that is
  held by *another thread* through the same object raises RuntimeError
  (the old locks silently released somebody else's hold). An unbalanced
  release of a lock that is not held through the object is ignored, as
  before (``DI_Mutex.release`` returns None, ``global_lock.unget_lock``
  returns False). A lock held by another process is never released.
- Taking a lock again from the thread that holds it never hangs:
  ``DI_Mutex.acquire()`` and ``global_lock.get_lock()`` without a timeout
  raise RuntimeError (the old locks waited forever);
  ``global_lock.get_lock(timeout)`` returns False at once.

``DI_Mutex`` also takes Dexter's own lock on ``/run/lock/DI_Mutex_<name>``
(an exclusive POSIX record lock, which conflicts with the ``fcntl.lockf``
that unmigrated programs take), after the buslock mutex and released before
it, so old and migrated programs exclude each other on the same bus. Only
buslock users ever wait for that file while holding the buslock mutex, and
unmigrated programs hold nothing buslock users wait for, so the order
cannot deadlock.

Environment: ``BUSLOCK_DIR`` chooses the buslock lock directory (as for
``buslock.Mutex``), ``BUSLOCK_LEGACY_DIR`` the directory of Dexter's lock
files (default ``/run/lock``); both can also be passed as keywords.
"""

import os
import sys
from typing import Optional, Union

from .._buslock import Mutex
from ..errors import Error

__all__ = ["DI_Mutex", "global_lock", "legacy_path", "LEGACY_DIR"]

#: Where Dexter's DI_Mutex keeps its lock files.
LEGACY_DIR = "/run/lock"

_PathLike = Union[str, "os.PathLike[str]"]


def legacy_path(name: str, legacy_dir: Optional[_PathLike] = None) -> str:
    """Dexter's lock file for lock `name`: ``<legacy_dir>/DI_Mutex_<name>``,
    where `legacy_dir` defaults to ``$BUSLOCK_LEGACY_DIR``, else ``/run/lock``."""
    if legacy_dir is None:
        legacy_dir = os.environ.get("BUSLOCK_LEGACY_DIR") or LEGACY_DIR
    return os.path.join(os.fspath(legacy_dir), "DI_Mutex_" + name)


class DI_Mutex:
    """Dexter Industries' ``DI_Mutex(name)`` on buslock.

    ``acquire()`` blocks until the lock is free (no polling; Ctrl-C raises
    KeyboardInterrupt) and ``release()`` releases it; both return None like
    the original. Also usable as ``with DI_Mutex("SPI"):``.

    ``loop_time`` is how often unmigrated programs poll Dexter's file (as
    in the original): the drop-in waits for the file in the kernel, without
    polling, and leaves each unmigrated program that is contending one turn
    between two of its own, pausing at most 1.5 ``loop_time`` to do so (see
    ``bench/shares.py``).
    ``dir`` is the buslock lock directory (None: ``$BUSLOCK_DIR`` or the
    default), ``legacy_dir`` the directory of Dexter's lock file (None:
    ``$BUSLOCK_LEGACY_DIR`` or ``/run/lock``); ``legacy=False`` skips
    Dexter's lock file once no unmigrated program remains.
    """

    def __init__(
        self,
        name: str,
        loop_time: float = 0.0001,
        *,
        dir: Optional[_PathLike] = None,
        legacy_dir: Optional[_PathLike] = None,
        legacy: bool = True,
    ) -> None:
        self.Name = name
        self.LoopTime = loop_time
        #: Dexter's lock file (locked too unless ``legacy=False``).
        self.Filename = legacy_path(name, legacy_dir)
        folder = os.path.dirname(self.Filename)
        if legacy and not os.path.isdir(folder):
            raise Error(
                "legacy lock directory '%s' for DI_Mutex(%r) does not exist; create it, "
                "choose another with legacy_dir= or BUSLOCK_LEGACY_DIR, or pass "
                "legacy=False once no program uses Dexter's DI_Mutex any more" % (folder, name)
            )
        self.mutex = Mutex(
            name,
            dir,
            legacy_record_lock=self.Filename if legacy else None,
            legacy_poll_interval=loop_time,
        )

    def acquire(self) -> None:
        """Wait until this thread holds the lock."""
        self.mutex.acquire()

    def release(self) -> None:
        """Release the lock; a release without a hold is ignored."""
        if self.mutex.holder_thread is not None:
            self.mutex.release()

    @property
    def previous_owner_died(self) -> bool:
        """Whether the last acquire found the previous holder dead."""
        return self.mutex.previous_owner_died

    def __enter__(self) -> "DI_Mutex":
        self.mutex.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mutex.release()

    def __repr__(self) -> str:
        return "DI_Mutex(%r) on %r" % (self.Name, self.mutex)


class global_lock:
    """``global_lock(lockname)`` from global_lock.py on buslock.

    ``get_lock(timeout=None)`` returns True when the lock was taken and False
    when ``timeout`` seconds passed first (None: wait as long as it takes;
    0: do not wait). ``unget_lock()`` returns True when it released the lock
    and False for an extraneous call. ``is_locked()`` says whether anybody
    holds the lock, ``lock_value()`` gives the semaphore count the original
    showed: 0 while locked, 1 while free. ``debug=True`` prints each call,
    as the original did.

    A leading '/' in ``lockname`` (required by POSIX semaphores) is dropped
    for the buslock name. ``dir`` is the buslock lock directory.

    The real ``global_lock``'s semaphore ``/<lockname>`` is taken too, after
    the buslock mutex and released before it, so programs not yet migrated
    are excluded; when a buslock holder dies holding it, the next holder
    posts it back (the real ``global_lock`` stays locked until reboot).
    ``legacy=False`` skips the semaphore once no old program remains.
    """

    def __init__(
        self,
        lockname: str,
        debug: bool = False,
        *,
        dir: Optional[_PathLike] = None,
        legacy: bool = True,
    ) -> None:
        if not lockname.startswith("/"):
            lockname = "/" + lockname
        self.lockname = lockname
        self.debug = debug
        #: The buslock mutex underneath.
        self.lock = Mutex(lockname[1:], dir, legacy_semaphore=lockname if legacy else None)

    def _say(self, what: str) -> None:
        if self.debug:
            print("<%s> %s (%d)" % (self.lockname, what, self.lock_value()), file=sys.stdout)

    def get_lock(self, timeout: Optional[float] = None) -> bool:
        """Request the lock; True if acquired, False if the request timed out."""
        if timeout is not None and timeout < 0:
            timeout = None
        if timeout is not None and self.lock.is_held_by_current_thread():
            self._say("lock request timed out: this thread already holds it")
            return False
        if timeout is None:
            got = self.lock.acquire()
        elif timeout == 0:
            got = self.lock.acquire(blocking=False)
        else:
            got = self.lock.acquire(timeout=timeout)
        self._say("lock request successful" if got else "lock request timed out ")
        return got

    def unget_lock(self) -> bool:
        """Release the lock; True if released, False for an extraneous call."""
        if self.lock.holder_thread is not None:
            self.lock.release()
            self._say("lock released")
            return True
        self._say("Extraneous unget, ignored")
        return False

    def is_locked(self) -> bool:
        """True if anybody holds the lock now, else False."""
        locked = self.lock.locked()
        self._say("is currently %s" % ("locked" if locked else "unlocked"))
        return locked

    def lock_value(self) -> int:
        """The original's semaphore count: 0 while locked, 1 while free."""
        return 0 if self.lock.locked() else 1
