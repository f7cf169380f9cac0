"""Helper process for the tests: `python child.py COMMAND ARGS...`.

It uses the lock directories from BUSLOCK_DIR / BUSLOCK_LEGACY_DIR (set by
the test) and reports each step as one line on stdout. Every wait in here
is bounded, so a broken lock ends the helper instead of leaving it behind.
"""

import os
import sys
import threading
import time

import buslock
from buslock.compat import DI_Mutex, global_lock

import workers

#: Longest a helper keeps a lock or waits for one.
BOUND = 60


def say(*words):
    print(*words, flush=True)


def hold(name, seconds=str(BOUND)):
    """Take the lock, say so, keep it (to be killed), then release."""
    m = buslock.Mutex(name)
    m.acquire()
    say("held", os.getpid(), threading.get_native_id(), int(m.previous_owner_died))
    time.sleep(float(seconds))
    m.release()
    say("released")


def say_interrupted(m):
    """Report a KeyboardInterrupt while waiting, and what is held after it."""
    say(
        "interrupted",
        "%.9f" % time.clock_gettime(time.CLOCK_MONOTONIC),
        "holder_thread=%s" % m.holder_thread,
        "held=%d" % m.is_held_by_current_thread(),
    )


def wait(name):
    """Wait for the lock until interrupted (SIGINT) or BOUND passes."""
    m = buslock.Mutex(name)
    say("waiting", os.getpid())
    try:
        got = m.acquire(timeout=BOUND)
        say("acquired" if got else "timeout")
    except KeyboardInterrupt:
        say_interrupted(m)


def wait_with(name):
    """Like `wait`, through `with m:` (no timeout: only SIGINT ends it)."""
    m = buslock.Mutex(name)
    say("waiting", os.getpid())
    try:
        with m:
            say("acquired")
    except KeyboardInterrupt:
        say_interrupted(m)


def reset_wait(name):
    """Mutex.reset_stats() while another process holds the lock, until
    interrupted (SIGINT) or the holder lets go."""
    m = buslock.Mutex(name)
    say("waiting", os.getpid())
    try:
        m.reset_stats()
        say("reset")
    except KeyboardInterrupt:
        say_interrupted(m)


def dexter(name, shared_path, iterations):
    """Dexter's original algorithm on BUSLOCK_LEGACY_DIR/DI_Mutex_<name>."""
    filename = os.path.join(os.environ["BUSLOCK_LEGACY_DIR"], "DI_Mutex_" + name)
    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        handle = workers.dexter_acquire(filename)
        shared.critical_section(os.getpid())
        workers.dexter_release(handle)
    say("done")


def dropin(name, shared_path, iterations):
    """The buslock.compat.DI_Mutex drop-in, same loop."""
    mutex = DI_Mutex(name)
    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        mutex.acquire()
        shared.critical_section(os.getpid())
        mutex.release()
    say("done")


def wait_usr1(name):
    """Wait for the lock with a SIGUSR1 handler that does not raise: the
    handler runs during the wait, and the wait goes on."""
    import signal

    ran = []
    signal.signal(signal.SIGUSR1, lambda *_: ran.append(1))
    m = buslock.Mutex(name)
    say("waiting", os.getpid())
    got = m.acquire(timeout=BOUND)
    say("acquired" if got else "timeout", "handler_runs=%d" % len(ran))
    if got:
        m.release()


def dropin_wait(name):
    """DI_Mutex(name).acquire() until interrupted (SIGINT)."""
    mutex = DI_Mutex(name)
    say("waiting", os.getpid())
    try:
        mutex.acquire()
        say("acquired")
    except KeyboardInterrupt:
        say(
            "interrupted",
            "holder_thread=%s" % mutex.mutex.holder_thread,
            "locked=%d" % mutex.mutex.locked(),
        )


def dexter_hold(name, seconds=str(BOUND)):
    """Hold Dexter's lock file with the original algorithm."""
    filename = os.path.join(os.environ["BUSLOCK_LEGACY_DIR"], "DI_Mutex_" + name)
    handle = workers.dexter_acquire(filename)
    say("held")
    time.sleep(float(seconds))
    workers.dexter_release(handle)


def global_get(name, timeout):
    """global_lock(name).get_lock(timeout) from another process."""
    lock = global_lock(name)
    t = None if timeout == "None" else float(timeout)
    say("get_lock", lock.get_lock(t))
    say("unget_lock", lock.unget_lock())


def main():
    command, *args = sys.argv[1:]
    globals()[command](*args)


if __name__ == "__main__":
    main()
