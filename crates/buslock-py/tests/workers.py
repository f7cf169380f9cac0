"""Code run in other processes by the tests: `multiprocessing` workers and
the Dexter reference algorithm. Kept out of the test modules so that
`spawn`ed workers import only this.

The shared invariant lives in a small file mapped by every process:
slot 0 = who is inside the critical section (0: nobody), slot 1 = a counter
incremented inside it with a non-atomic read-modify-write, slot 2 = the
number of times a holder found somebody else inside. Exclusion holds iff
slot 2 stays 0 and slot 1 ends equal to the number of critical sections.
"""

import fcntl
import mmap
import os
import struct
import threading
import time

SLOTS = 3
SLOT = struct.Struct("q")


def make_shared(path):
    """Create the shared invariant file at `path`."""
    with open(path, "wb") as f:
        f.write(b"\0" * (SLOT.size * SLOTS))


class Shared:
    """The shared invariant file, mapped."""

    def __init__(self, path):
        self._f = open(path, "r+b")
        self._m = mmap.mmap(self._f.fileno(), SLOT.size * SLOTS)

    def get(self, i):
        return SLOT.unpack_from(self._m, i * SLOT.size)[0]

    def set(self, i, v):
        SLOT.pack_into(self._m, i * SLOT.size, v)

    def critical_section(self, me):
        """Body run under the lock: check nobody else is inside, and bump
        the counter slowly enough that an overlap would be caught."""
        if self.get(0) != 0:
            self.set(2, self.get(2) + 1)
        self.set(0, me)
        count = self.get(1)
        for _ in range(20):
            if self.get(0) != me:
                self.set(2, self.get(2) + 1)
        self.set(1, count + 1)
        if self.get(0) != me:
            self.set(2, self.get(2) + 1)
        self.set(0, 0)

    def close(self):
        self._m.close()
        self._f.close()


def exclusion_worker(name, lock_dir, shared_path, iterations, threads):
    """`threads` threads sharing one buslock.Mutex object, each entering the
    critical section `iterations` times; raises (non-zero exit) on error."""
    import buslock

    mutex = buslock.Mutex(name, lock_dir)
    shared = Shared(shared_path)
    errors = []

    def run():
        me = threading.get_native_id()
        try:
            for _ in range(iterations):
                with mutex:
                    shared.critical_section(me)
        except BaseException as e:  # reported by the parent through the exit code
            errors.append(e)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    shared.close()
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in pool):
        raise RuntimeError("a worker thread did not finish within 60 s")


def dexter_acquire(filename, loop_time=0.0001):
    """Dexter Industries' DI_Mutex.acquire, reproduced: open the file for
    writing (truncating it) and try a non-blocking lockf, again and again,
    sleeping `loop_time` between tries. Returns the open file (the hold)."""
    while True:
        handle = None
        try:
            handle = open(filename, "w")
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except IOError:
            if handle is not None:
                handle.close()
            time.sleep(loop_time)


def dexter_release(handle, loop_time=0.0001):
    """Dexter's DI_Mutex.release: closing the file drops the lock."""
    handle.close()
    time.sleep(loop_time)


def pickled_options_worker(record, sem_mutex, a, b, sem_name, out):
    """Report, from a `spawn`ed child, what the pickled handles do with the
    options their parent gave them (see test_pickle_options.py)."""
    import posix_ipc

    import buslock

    seen = {}
    # legacy_poll_interval=10 s: within 15 s of this handle's own release a
    # try declines, leaving the pollers their turn (1 ms default: takes it).
    record.acquire()
    record.release()
    time.sleep(0.05)
    seen["try_after_release"] = record.acquire(blocking=False)
    if seen["try_after_release"]:
        record.release()
    # legacy_semaphore: holding the mutex holds the real semaphore too.
    with sem_mutex:
        try:
            posix_ipc.Semaphore(sem_name).acquire(0)
            seen["semaphore_taken"] = False
        except posix_ipc.BusyError:
            seen["semaphore_taken"] = True
    # lockdep="error": the parent recorded A before B; B then A is refused.
    with b:
        try:
            a.acquire()
            a.release()
            seen["inversion"] = "allowed"
        except buslock.LockOrderError:
            seen["inversion"] = "refused"
    out.put(seen)
