"""Regression tests for the lock core (issue 8, section 1) from Python: a
cross-process deadlock raises DeadlockError, a program ended by an uncaught
exception or sys.exit() while holding is reported as a death, an exception
leaving a `with` block is not, and a saved lock file is taken over."""

import os
import shutil
import signal
import subprocess
import sys

import buslock
from conftest import HERE, WAIT_SECONDS, Child, wait_until


class CoreChild(Child):
    """A helper process running lock_word_child.py."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "lock_word_child.py"), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines = []
        self._buf = b""
        self.err = ""


def start(started, *args):
    c = CoreChild(*args)
    started.append(c)
    return c


def run_abba(lock_dir, mode):
    started = []
    try:
        p1 = start(started, "abba", "A", "B", "go1", mode)
        p2 = start(started, "abba", "B", "A", "go2", mode)
        tid1 = p1.expect("holding").split()[1]
        tid2 = p2.expect("holding").split()[1]
        a = buslock.Mutex("A", lock_dir)
        (lock_dir / "go2").touch()
        wait_until(lambda: any(w.pid == p2.pid for w in a.waiters()), "P2 to wait for A")
        (lock_dir / "go1").touch()
        # P2 is listed as a waiter a moment before it blocks in the kernel,
        # so P1 may block on B first and P2's own wait close the cycle; and
        # when both enter the kernel at once its chain walk may refuse both.
        # Whoever closes the cycle is refused and lets go; a side not
        # refused then gets its lock.
        outcomes = [p.expect(("deadlock", "got", "timeout", "error")) for p in (p1, p2)]
        refused = [o for o in outcomes if o.startswith("deadlock")]
        assert refused, outcomes
        assert all(o.startswith(("deadlock", "got")) for o in outcomes), outcomes
        for line in refused:
            for needle in ("lock 'A'", "lock 'B'", "pid %d tid %s" % (p1.pid, tid1),
                           "pid %d tid %s" % (p2.pid, tid2), "lock_word_child.py"):
                assert needle in line, (needle, line)
        p1.expect("released")
        p2.expect("released")
        assert p1.wait() == 0, p1.err
        assert p2.wait() == 0, p2.err
        with a:
            assert not a.previous_owner_died
    finally:
        for c in started:
            c.kill()


def test_cross_process_abba_deadlock_raises_deadlock_error(lock_dir):
    run_abba(lock_dir, "forever")


def test_cross_process_abba_deadlock_in_a_timed_acquire_raises_deadlock_error(lock_dir):
    run_abba(lock_dir, "timeout")


def test_cross_process_abba_deadlock_in_a_with_block_raises_deadlock_error(lock_dir):
    run_abba(lock_dir, "with")


def test_deadlock_error_is_a_buslock_error():
    assert issubclass(buslock.DeadlockError, buslock.Error)


def died_holding(lock_dir, how, code):
    c = CoreChild("die_holding", "SPI", how)
    try:
        c.expect("held")
        assert c.wait() == code, c.err
    finally:
        c.kill()
    spi = buslock.Mutex("SPI", lock_dir)
    assert spi.acquire(timeout=WAIT_SECONDS)
    try:
        return spi.previous_owner_died
    finally:
        spi.release()


def test_uncaught_exception_while_holding_is_reported_as_a_death(lock_dir):
    assert died_holding(lock_dir, "exception", 1) is True


def test_sys_exit_while_holding_is_reported_as_a_death(lock_dir):
    assert died_holding(lock_dir, "exit", 3) is True


def test_exception_leaving_a_with_block_is_not_a_death(lock_dir):
    c = CoreChild("exception_in_with", "SPI")
    try:
        c.expect("left")
        spi = buslock.Mutex("SPI", lock_dir)
        with spi:
            assert spi.previous_owner_died is False
    finally:
        c.kill()


def test_saved_lock_file_whose_holder_is_gone_is_taken_over(lock_dir, tmp_path, child):
    holder = child("hold", "SPI")
    holder.expect("held")
    saved = tmp_path / "saved"
    saved.mkdir()
    shutil.copy(lock_dir / "SPI.lock", saved / "SPI.lock")
    os.kill(holder.pid, signal.SIGKILL)
    holder.proc.wait(WAIT_SECONDS)
    spi = buslock.Mutex("SPI", str(saved))
    assert spi.owner.state == "gone"
    assert not spi.locked()
    assert spi.acquire(timeout=WAIT_SECONDS) is True
    try:
        assert spi.previous_owner_died is True
    finally:
        spi.release()


def test_holder_thread_that_ended_is_not_shown_as_holding(lock_dir):
    import threading

    spi = buslock.Mutex("SPI", lock_dir)
    ended = threading.Thread(target=spi.acquire)
    ended.start()
    ended.join()
    # join() returns before the OS thread has quite gone; once it has, the
    # kernel has released the lock and nothing may show it as held.
    wait_until(lambda: not spi.locked(), "the ended thread to stop showing as holder")
    assert spi.owner.state == "gone"
    assert spi.acquire(timeout=WAIT_SECONDS) is True
    try:
        assert spi.previous_owner_died is True
    finally:
        spi.release()
