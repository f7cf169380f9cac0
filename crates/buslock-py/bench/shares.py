"""How often each program gets the bus when two unmigrated programs (Dexter's
real polling algorithm) and one migrated program (the buslock.compat
drop-in) compete, all in one run. Prints each program's share of the
acquisitions; a fair lock gives each a third.

Run with the test virtualenv's Python (after scripts/test.d/python.sh):

    target/py-venv/bin/python crates/buslock-py/bench/shares.py [SECONDS]

Each program loops: acquire, hold 0.5 ms, release, as fast as it can, for
SECONDS (default 3) per scenario. Scenarios: DI_Mutex (0.1 ms polling)
and I2C_mutex (1 ms polling), each with one or two unmigrated programs and
the drop-in and, as the reference, with three unmigrated programs.
"""

import fcntl
import multiprocessing as mp
import os
import sys
import tempfile
import time

HOLD = 0.0005


def old(path, loop, stop, counter):
    n = 0
    while not stop.is_set():
        while True:
            h = open(path, "w")
            try:
                fcntl.lockf(h, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                h.close()
                time.sleep(loop)
        time.sleep(HOLD)
        n += 1
        h.close()
        time.sleep(loop)
    counter.value = n


def new(kind, stop, counter):
    if kind == "di":
        from buslock.compat import DI_Mutex

        m = DI_Mutex("SPI")
    else:
        from buslock.compat import I2C_mutex

        m = I2C_mutex.Mutex()
    n = 0
    while not stop.is_set():
        m.acquire()
        time.sleep(HOLD)
        n += 1
        m.release()
    counter.value = n


def scenario(label, roles, seconds):
    stop = mp.Event()
    counters = [mp.Value("q", 0) for _ in roles]
    procs = [mp.Process(target=f, args=(*a, stop, c)) for (f, a), c in zip(roles, counters)]
    for p in procs:
        p.start()
    time.sleep(seconds)
    stop.set()
    for p in procs:
        p.join(30)
    total = sum(c.value for c in counters) or 1
    names = ["old%d" % (i + 1) for i in range(len(roles))]
    if roles[-1][0] is new:
        names[-1] = "new"
    shares = " ".join("%s=%.0f%%" % (n, 100.0 * c.value / total) for c, n in zip(counters, names))
    print("%-40s %s  (%d acquisitions)" % (label, shares, total))


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    with tempfile.TemporaryDirectory() as d:
        os.environ["BUSLOCK_DIR"] = d
        os.environ["BUSLOCK_LEGACY_DIR"] = d
        di = os.path.join(d, "DI_Mutex_SPI")
        i2c = os.path.join(d, "DexterLockI2C")
        print("shares of acquisitions (fair: equal shares)")
        scenario("DI_Mutex: 3 old (reference)", [(old, (di, 0.0001))] * 3, seconds)
        scenario("DI_Mutex: 1 old + drop-in", [(old, (di, 0.0001)), (new, ("di",))], seconds)
        scenario("DI_Mutex: 2 old + drop-in", [(old, (di, 0.0001))] * 2 + [(new, ("di",))], seconds)
        scenario("I2C_mutex: 3 old (reference)", [(old, (i2c, 0.001))] * 3, seconds)
        scenario("I2C_mutex: 1 old + drop-in", [(old, (i2c, 0.001)), (new, ("i2c",))], seconds)
        scenario("I2C_mutex: 2 old + drop-in", [(old, (i2c, 0.001))] * 2 + [(new, ("i2c",))], seconds)


if __name__ == "__main__":
    main()
