"""Helper process for test_lock_word.py: `python lock_word_child.py COMMAND ARGS...`.

Uses the lock directory from BUSLOCK_DIR; reports each step as one line on
stdout. Every wait is bounded.
"""

import os
import sys
import threading
import time

import buslock

#: Longest a helper keeps a lock or waits for one.
BOUND = 60


def say(*words):
    print(*words, flush=True)


def wait_for(path):
    deadline = time.monotonic() + BOUND
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("no %s" % path)
        time.sleep(0.002)


def abba(first, second, go, mode):
    """Hold `first`, wait for file `go`, then take `second`."""
    a = buslock.Mutex(first)
    b = buslock.Mutex(second)
    a.acquire()
    say("holding", threading.get_native_id())
    wait_for(os.path.join(os.environ["BUSLOCK_DIR"], go))
    try:
        if mode == "with":
            with b:
                say("got")
        else:
            got = b.acquire(timeout=BOUND if mode == "timeout" else -1)
            say("got" if got else "timeout")
            if got:
                b.release()
    except buslock.DeadlockError as e:
        assert isinstance(e, buslock.Error)
        say("deadlock", str(e).replace("\n", " "))
        time.sleep(0.1)
    a.release()
    say("released")


#: Module-level, as a script's lock usually is: finalisation collects it.
held = None


def die_holding(name, how):
    """Acquire, then end the program without releasing."""
    global held
    held = buslock.Mutex(name)
    held.acquire()
    say("held")
    if how == "exception":
        raise RuntimeError("uncaught, while holding the bus")
    if how == "exit":
        sys.exit(3)
    raise SystemExit("unknown way to die %r" % how)


def exception_in_with(name):
    """Leave a `with` block by an exception, then hold on (not a death)."""
    m = buslock.Mutex(name)
    try:
        with m:
            raise ValueError("handled by the caller")
    except ValueError:
        pass
    say("left")
    time.sleep(BOUND)


def main():
    command, *args = sys.argv[1:]
    globals()[command](*args)


if __name__ == "__main__":
    main()
