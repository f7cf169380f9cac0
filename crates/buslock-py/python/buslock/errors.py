"""Exceptions raised by buslock.

Every error from the library is a ``buslock.Error`` whose message names the
lock or path concerned and says how to fix the problem. Two kinds have their
own classes because a program may want to handle them:

- ``PermissionDenied`` (also a built-in ``PermissionError``): the user may not
  use the lock directory or lock file; a user, group or mode must change.
- ``CorruptLockFile``: the lock file is damaged or was made by an
  incompatible build; remove it when no program uses the lock.
- ``DeadlockError``: waiting for the lock would close a cycle (this thread
  holds a lock that the holder of this one waits for, perhaps through other
  locks). Nothing was changed and the thread keeps the locks it holds;
  release them so that the others proceed. The message names every lock,
  pid, tid and program in the cycle.

Lock-order checking (``BUSLOCK_LOCKDEP`` or ``Mutex(..., lockdep=...)``)
reports an acquisition that inverts the lock order recorded in the lock
directory with a ``LockOrderWarning`` (``warn``, the default, once per
process) or refuses it, before it blocks, with ``LockOrderError``
(``error``). Both messages show the orders, who took each and when, and
the deadlock scenario.

Misuse of a lock (acquiring it again from the thread that holds it,
releasing it from a thread that does not) raises the built-in
``RuntimeError``, as ``threading`` does.
"""

__all__ = [
    "CorruptLockFile",
    "DeadlockError",
    "Error",
    "InvalidName",
    "LockOrderError",
    "LockOrderWarning",
    "PermissionDenied",
]


class Error(Exception):
    """Base class of every buslock error."""

    def is_permission(self) -> bool:
        """Whether this is a permission problem (a user or group must change)."""
        return isinstance(self, PermissionDenied)

    def is_corrupt(self) -> bool:
        """Whether the lock file is damaged or incompatible."""
        return isinstance(self, CorruptLockFile)


class PermissionDenied(Error, PermissionError):
    """The user may not use the lock directory or the lock file."""


class CorruptLockFile(Error):
    """The lock file is damaged, truncated, or made by an incompatible build."""


class InvalidName(Error, ValueError):
    """The lock name is not a short identifier: 1 to 64 of A-Z a-z 0-9 . _ -,
    not starting with '.' or '-' (names are case-sensitive)."""


class LockOrderError(Error):
    """Acquiring the lock would invert the lock order recorded in its lock
    directory (a possible deadlock); it was refused before it blocked."""


class LockOrderWarning(UserWarning):
    """An acquisition inverted the lock order recorded in its lock directory
    (a possible deadlock); it went ahead (lock-order mode ``warn``)."""


class DeadlockError(Error):
    """Waiting for the lock would deadlock; the message names the cycle."""
