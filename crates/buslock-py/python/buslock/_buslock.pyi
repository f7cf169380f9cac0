"""Type stubs for the native part of buslock (built from crates/buslock-py)."""

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, List, Literal, Optional, Tuple, Type, Union, final

__all__ = [
    "INTERRUPT_SLICE",
    "Event",
    "LongestHold",
    "Mutex",
    "Owner",
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

_Path = Union[str, "os.PathLike[str]"]

#: How often an interruptible wait wakes to check for signals, in seconds.
INTERRUPT_SLICE: float
__version__: str

def lock_dir(dir: Optional[_Path] = None) -> Path:
    """Resolve the lock directory: `dir`, else $BUSLOCK_DIR, else the default."""

def lock_names(dir: Optional[_Path] = None) -> List[str]:
    """Names of the locks in a lock directory."""

def bus_lock_name(path: _Path) -> str:
    """The lock name of the bus behind a device node: /dev/spidev0.1 -> spi0,
    /dev/i2c-1 -> i2c-1."""

@final
class Owner:
    """The holder of a lock, as recorded by the holder itself."""

    pid: int
    tid: int
    start_time: int
    program: str
    since: float
    held_for: float
    took_over_from_dead: bool
    state: str
    torn: bool
    @property
    def alive(self) -> bool: ...
    def __str__(self) -> str:
        """``pid 1234 tid 1240 (motor), held for 2.31s``: the wording of the
        library's errors and of the ``buslock`` command."""

@final
class Waiter:
    """A thread waiting for a lock."""

    pid: int
    tid: int
    start_time: int
    since: float
    waiting_for: float
    state: str

@final
class Event:
    """One completed hold of a lock."""

    seq: int
    pid: int
    tid: int
    program: str
    acquired: float
    waited: float
    held: float
    previous_owner_died: bool
    read: bool
    died: bool

@final
class LongestHold:
    """The longest hold seen and who held it."""

    duration: float
    pid: int
    tid: int
    program: str
    at: float

@final
class Stats:
    """A snapshot of a lock's statistics; durations in seconds."""

    acquisitions: int
    contended: int
    owner_died: int
    timeouts: int
    total_wait: float
    total_hold: float
    wait_histogram: List[int]
    hold_histogram: List[int]
    longest_hold: Optional[LongestHold]
    since: float
    def contention_ratio(self) -> float: ...
    def wait_quantile(self, q: float) -> Optional[float]: ...
    def hold_quantile(self, q: float) -> Optional[float]: ...
    @staticmethod
    def bucket_bounds(i: int) -> Tuple[float, Optional[float]]: ...

@final
class Mutex:
    """A named lock shared by every process and thread on this machine.

    Used like threading.Lock; also excludes other processes, is released
    when its holder dies (see previous_owner_died), is fair, and is not
    recursive.

    Mutex(name, dir=None, *, create=True, legacy_record_lock=None): `name`
    is case-sensitive; `dir` None means $BUSLOCK_DIR or the default
    directory; `create=False` raises buslock.Error instead of creating a
    missing lock file; `legacy_record_lock` is a file also locked with
    fcntl.lockf while the mutex is held, to exclude old lockf users.
    """

    def __new__(
        cls,
        name: str,
        dir: Optional[_Path] = None,
        *,
        create: bool = True,
        legacy_record_lock: Optional[_Path] = None,
        lockdep: Optional[Literal["off", "warn", "error"]] = None,
        legacy_semaphore: Optional[str] = None,
        legacy_poll_interval: Optional[float] = None,
    ) -> "Mutex": ...
    def acquire(self, blocking: bool = True, timeout: Optional[float] = -1) -> bool:
        """Take the lock; False when `timeout` seconds passed first."""
    def release(self) -> None:
        """Release the lock; RuntimeError unless this thread holds it."""
    def __enter__(self) -> "Mutex": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...
    def locked(self) -> bool:
        """Whether some live thread holds the lock."""
    def is_held_by_current_thread(self) -> bool: ...
    def assert_held(self) -> None:
        """AssertionError unless the calling thread holds the lock."""
    @property
    def owner(self) -> Optional[Owner]: ...
    @property
    def holder_thread(self) -> Optional[int]: ...
    @property
    def previous_owner_died(self) -> bool: ...
    @property
    def waited(self) -> float: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def legacy_path(self) -> Optional[Path]: ...
    def stats(self) -> Stats: ...
    def reset_stats(self) -> None: ...
    def waiters(self) -> List[Waiter]: ...
    def events_since(self, start: int) -> Tuple[List[Event], int]: ...
    def event_head(self) -> int: ...
    def __reduce__(
        self,
    ) -> Tuple[
        Any,
        Tuple[str, Path, Optional[Path], str, Optional[str], Optional[float]],
    ]: ...
    @staticmethod
    def _reopen(
        name: str,
        dir: _Path,
        legacy_record_lock: Optional[_Path],
        lockdep: Optional[str] = None,
        legacy_semaphore: Optional[str] = None,
        legacy_poll_interval: Optional[float] = None,
    ) -> "Mutex": ...

@final
class Reader:
    """A reader holding a readers-writer lock."""

    pid: int
    tid: int
    program: str
    since: float
    state: str

@final
class RwLockHold:
    """What RwLock.read() and RwLock.write() return: a context manager."""

    def __enter__(self) -> "RwLock": ...
    def __exit__(self, *_exc: object) -> bool: ...

@final
class RwLock:
    """A readers-writer lock shared by every process and thread on this
    machine: many readers at once, or one writer.

    `with rw.read():` shares it, `with rw.write():` takes it alone. A dead
    reader frees its share; a dead writer is reported to the next holder
    of either kind (previous_owner_died). Once a writer waits, new readers
    queue behind it. Reading again from a reading thread, or writing from
    it, raises RuntimeError.
    """

    def __new__(
        cls,
        name: str,
        dir: Optional[_Path] = None,
        *,
        create: bool = True,
        lockdep: Optional[Literal["off", "warn", "error"]] = None,
    ) -> "RwLock": ...
    def acquire_read(self, blocking: bool = True, timeout: Optional[float] = -1) -> bool:
        """Share the lock; False when `timeout` seconds passed first."""
    def release_read(self) -> None:
        """Give back this thread's share."""
    def acquire_write(self, blocking: bool = True, timeout: Optional[float] = -1) -> bool:
        """Take the lock alone; False when `timeout` seconds passed first."""
    def release_write(self) -> None:
        """Release this thread's write hold."""
    def downgrade(self) -> None:
        """Turn this thread's write hold into a read hold, no writer in between."""
    def read(self) -> RwLockHold:
        """`with rw.read():` shares the lock for the block."""
    def write(self) -> RwLockHold:
        """`with rw.write():` holds the lock alone for the block."""
    @property
    def previous_owner_died(self) -> bool: ...
    @property
    def writer(self) -> Optional[Owner]: ...
    @property
    def readers(self) -> List[Reader]: ...
    def events_since(self, start: int) -> Tuple[List[Event], int]:
        """Reads, writes and holders found dead numbered `start` and
        later still in the ring, and the number to pass next time."""
    def event_head(self) -> int: ...
    def writers_waiting(self) -> List[Waiter]:
        """Threads waiting to write, longest first."""
    def readers_waiting(self) -> List[Waiter]:
        """Threads waiting to read, longest first."""
    def stats(self) -> Dict[str, Union[int, float]]:
        """reads, reads_contended, read_wait, read_timeouts, reader_deaths,
        writes, writes_contended, write_timeouts, writer_deaths."""
    def reset_stats(self) -> None:
        """Zero both sides' statistics, under a brief write hold."""
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
