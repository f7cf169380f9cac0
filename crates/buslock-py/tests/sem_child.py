"""Processes for test_global_lock_legacy: the real global_lock algorithm
(a posix_ipc semaphore with value 1, as global_lock.py uses it) and the
buslock.compat drop-in. ``sem_child.py COMMAND NAME ARGS...``."""

import os
import sys

import posix_ipc

import workers


def say(*words):
    print(*words, flush=True)


def real(name):
    """global_lock.py's constructor: Semaphore(O_CREAT, 0600, value 1)."""
    return posix_ipc.Semaphore(name, flags=posix_ipc.O_CREAT, mode=0o600, initial_value=1)


def real_hold(name):
    s = real(name)
    s.acquire()
    say("held")
    sys.stdin.readline()
    if s.value == 0:  # global_lock.unget_lock
        s.release()
    say("released")
    sys.stdin.readline()


def real_loop(name, shared_path, iterations):
    s = real(name)
    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        s.acquire()
        shared.critical_section(os.getpid())
        if s.value == 0:
            s.release()
    say("done")


def dropin_loop(name, shared_path, iterations):
    from buslock.compat import global_lock

    lock = global_lock(name)
    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        assert lock.get_lock() is True
        shared.critical_section(os.getpid())
        assert lock.unget_lock() is True
    say("done")


def dropin_hold(name):
    from buslock.compat import global_lock

    lock = global_lock(name)
    assert lock.get_lock() is True
    say("held")
    sys.stdin.readline()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    globals()[command](*args)
