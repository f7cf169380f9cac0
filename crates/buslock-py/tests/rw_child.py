"""Helper process for test_rwlock.py: `python rw_child.py COMMAND NAME ...`.

Uses the lock directory from BUSLOCK_DIR and reports each step as one line
on stdout. Every wait is bounded, so a broken lock ends the helper.
"""

import os
import sys
import threading
import time

import buslock

BOUND = 60


def say(*words):
    print(*words, flush=True)


def overlap(name, n):
    """Read, then wait until `n` readers hold it at once."""
    rw = buslock.RwLock(name)
    with rw.read():
        deadline = time.monotonic() + BOUND
        while len(rw.readers) < int(n):
            assert time.monotonic() < deadline, "readers never overlapped"
            time.sleep(0.005)
        say("overlap", len(rw.readers))
        time.sleep(0.2)


def hold(name, kind):
    """Take the lock (`read` or `write`), say so, keep it until killed."""
    rw = buslock.RwLock(name)
    (rw.acquire_read if kind == "read" else rw.acquire_write)(timeout=BOUND)
    say("held", os.getpid(), threading.get_native_id())
    time.sleep(BOUND)


def wait_read(name):
    """Wait to read until interrupted (SIGINT) or BOUND passes."""
    rw = buslock.RwLock(name)
    say("waiting", os.getpid())
    try:
        with rw.read():
            say("acquired")
    except KeyboardInterrupt:
        say("interrupted", len([r for r in rw.readers if r.pid == os.getpid()]))


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
