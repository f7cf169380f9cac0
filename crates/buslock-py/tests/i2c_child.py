"""Processes for test_compat_i2c: Dexter's real I2C_mutex algorithm and the
drop-ins. ``i2c_child.py COMMAND ARGS...``; reports on stdout."""

import fcntl
import os
import sys
import time

import workers


def say(*words):
    print(*words, flush=True)


def dexter_file():
    return os.path.join(os.environ["BUSLOCK_LEGACY_DIR"], "DexterLockI2C")


def dexter_i2c_acquire():
    """Dexter's I2C_mutex.Mutex.acquire, reproduced: open the file for
    writing and try a non-blocking lockf every 1 ms."""
    while True:
        handle = open(dexter_file(), "w")
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except IOError:
            handle.close()
            time.sleep(0.001)


def dexter_i2c_release(handle):
    """Dexter's release: close the file (dropping the lock), sleep 1 ms."""
    handle.close()
    time.sleep(0.001)


def dexter(shared_path, iterations):
    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        h = dexter_i2c_acquire()
        shared.critical_section(os.getpid())
        dexter_i2c_release(h)
    say("done")


def dropin(shared_path, iterations):
    from buslock.compat import I2C_mutex

    m = I2C_mutex.Mutex()
    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        with m:
            shared.critical_section(os.getpid())
    say("done")


def easy(shared_path, iterations):
    from buslock.compat.easy_mutex import ifMutexAcquire, ifMutexRelease

    shared = workers.Shared(shared_path)
    say("ready")
    for _ in range(int(iterations)):
        ifMutexAcquire(True)
        shared.critical_section(os.getpid())
        ifMutexRelease(True)
    say("done")


def functions_hold():
    from buslock.compat import I2C_mutex

    I2C_mutex.I2C_Mutex_Acquire()
    say("held")
    sys.stdin.readline()
    I2C_mutex.I2C_Mutex_Release()
    say("released")
    sys.stdin.readline()


def easy_hold(enabled):
    from buslock.compat import easy_mutex

    easy_mutex.ifMutexAcquire(enabled == "1")
    say("holding" if easy_mutex.mutex.mutex.holder_thread else "not-holding")
    sys.stdin.readline()
    easy_mutex.ifMutexRelease(enabled == "1")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    globals()[command](*args)
