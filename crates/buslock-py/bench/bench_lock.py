"""Uncontended lock + unlock cost from Python, per iteration, against
references measured in the same run (not a test: timings are printed, never
asserted).

    python bench/bench_lock.py [--quick]

Compares `with spi:` on a buslock.Mutex with `with threading.Lock()`, a
posix_ipc.Semaphore (if posix_ipc is installed), the DI_Mutex drop-in
(buslock plus Dexter's legacy record lock) and Dexter's original DI_Mutex
algorithm (open the file for writing, lockf(LOCK_EX|LOCK_NB), close, sleep
loop_time = 0.1 ms after release, as the original does). Lock files go to a
temporary directory. Each case runs several rounds; the best round counts.
"""

import argparse
import fcntl
import os
import sys
import tempfile
import threading
import time

import buslock
from buslock.compat import DI_Mutex


def per_iteration(cases, rounds):
    """Best of `rounds` timings of each case, in ns per iteration. Rounds
    interleave the cases so that a busy machine slows them all alike."""
    best = {name: float("inf") for name, _, _ in cases}
    for name, body, _ in cases:
        body(10)  # warm up
    for _ in range(rounds):
        for name, body, n in cases:
            start = time.perf_counter_ns()
            body(n)
            best[name] = min(best[name], (time.perf_counter_ns() - start) / n)
    return [(name, best[name]) for name, _, _ in cases]


def loop_with(lock):
    def body(n):
        for _ in range(n):
            with lock:
                pass

    return body


def loop_acquire_release(lock):
    def body(n):
        acquire, release = lock.acquire, lock.release
        for _ in range(n):
            acquire()
            release()

    return body


def loop_dexter(filename, loop_time):
    """Dexter Industries' DI_Mutex acquire/release, reproduced (loop_time 0:
    without the sleep after release, to show the cost of the file calls)."""

    def body(n):
        for _ in range(n):
            while True:
                try:
                    handle = open(filename, "w")
                    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except IOError:
                    time.sleep(loop_time)
            handle.close()
            if loop_time:
                time.sleep(loop_time)

    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    fast_n, slow_n, rounds = (20_000, 200, 3) if args.quick else (100_000, 500, 9)

    with tempfile.TemporaryDirectory() as tmp:
        spi = buslock.Mutex("BENCH", tmp)
        cases = [
            ("threading.Lock, with", loop_with(threading.Lock()), fast_n),
            ("buslock.Mutex, with", loop_with(spi), fast_n),
            ("buslock.Mutex, acquire()/release()", loop_acquire_release(spi), fast_n),
        ]
        try:
            import posix_ipc

            sem = posix_ipc.Semaphore(
                "/buslock-bench-%d" % os.getpid(), posix_ipc.O_CREX, initial_value=1
            )
            cases.append(("posix_ipc.Semaphore", loop_acquire_release(sem), fast_n))
        except ImportError:
            sem = None
            print("(posix_ipc not installed: no semaphore reference)")
        dropin = DI_Mutex("BENCH2", dir=tmp, legacy_dir=tmp)
        cases.append(("DI_Mutex drop-in (with legacy lock)", loop_acquire_release(dropin), fast_n // 4))
        nolegacy = DI_Mutex("BENCH3", dir=tmp, legacy=False)
        cases.append(("DI_Mutex drop-in, legacy=False", loop_acquire_release(nolegacy), fast_n))
        cases.append(
            ("Dexter DI_Mutex algorithm", loop_dexter(os.path.join(tmp, "DI_Mutex_D"), 0.0001), slow_n)
        )
        cases.append(
            ("Dexter algorithm, no sleep", loop_dexter(os.path.join(tmp, "DI_Mutex_E"), 0), slow_n * 10)
        )
        try:
            results = per_iteration(cases, rounds)
        finally:
            if sem is not None:
                sem.unlink()
                sem.close()

    ref = dict(results)["threading.Lock, with"]
    dexter = dict(results)["Dexter DI_Mutex algorithm"]
    print("Python %s, %s" % (sys.version.split()[0], os.uname().machine))
    print("| case | ns/iteration | x threading.Lock | Dexter algorithm / case |")
    print("| --- | ---: | ---: | ---: |")
    for name, ns in results:
        print("| %s | %.0f | %.2f | %.0f |" % (name, ns, ns / ref, dexter / ns))


if __name__ == "__main__":
    main()
