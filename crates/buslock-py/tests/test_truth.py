"""The Python package tells the truth and behaves like threading.Lock
(issue 9, items 5, 6, 13, 14, 15)."""

import inspect
import os
import pydoc
import signal
import threading

import pytest

import buslock
from conftest import WAIT_SECONDS, wait_until


def test_acquire_takes_ints_for_blocking_like_threading_lock(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    assert spi.acquire(1) is True
    other = buslock.Mutex("SPI", lock_dir)
    result = []
    t = threading.Thread(target=lambda: result.append(other.acquire(0)))
    t.start()
    t.join(WAIT_SECONDS)
    assert result == [False], "acquire(0) must not wait"
    spi.release()
    assert spi.acquire(0) is True
    spi.release()
    assert spi.acquire(blocking=0) is True
    spi.release()


def test_exit_returns_none_and_defaults_are_real_values(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    spi.__enter__()
    assert spi.__exit__(None, None, None) is None
    sig = inspect.signature(buslock.Mutex.acquire)
    assert sig.parameters["timeout"].default == -1
    assert sig.parameters["blocking"].default is True
    assert "Ellipsis" not in pydoc.render_doc(buslock.Mutex.acquire)


def test_help_explains_create_and_legacy_record_lock():
    text = pydoc.render_doc(buslock.Mutex)
    assert "create:" in text and "legacy_record_lock:" in text, text
    assert "case-sensitive" in text


def test_reset_stats_listens_for_ctrl_c(lock_dir, child):
    spi = buslock.Mutex("SPI", lock_dir)
    spi.acquire()
    try:
        waiter = child("reset_wait", "SPI")
        waiter.expect("waiting")
        wait_until(
            lambda: any(w.pid == waiter.pid for w in spi.waiters()), "the child to wait"
        )
        os.kill(waiter.pid, signal.SIGINT)
        line = waiter.expect("interrupted")
        assert "held=0" in line.split()
        assert waiter.wait() == 0, waiter.err
    finally:
        spi.release()


def test_a_monitoring_handle_follows_a_replaced_lock_file(lock_dir, child):
    monitor = buslock.Mutex("SPI", lock_dir)
    path = monitor.path
    os.unlink(path)
    holder = child("hold", "SPI")
    holder.expect("held")
    assert os.path.exists(path)
    assert monitor.locked()
    assert monitor.owner is not None and monitor.owner.pid == holder.pid


def test_a_holder_thread_that_exited_is_not_reported_as_holding(lock_dir):
    # Keep the handle alive: finalising it would release the lock (and
    # report a death), while this test is about a thread that ends with
    # the lock still taken.
    kept = []

    tids = []

    def take_and_exit():
        m = buslock.Mutex("SPI", lock_dir)
        kept.append(m)
        m.acquire()
        tids.append(threading.get_native_id())

    t = threading.Thread(target=take_and_exit)
    t.start()
    t.join(WAIT_SECONDS)
    # join() returns when the Python thread state is gone, a moment before
    # the kernel has ended the thread (and marked the lock word): wait for
    # the kernel thread itself.
    wait_until(
        lambda: not os.path.exists("/proc/self/task/%d" % tids[0]),
        "the holder thread to end in the kernel",
    )
    monitor = buslock.Mutex("SPI", lock_dir)
    owner = monitor.owner
    assert owner is not None and not owner.alive, owner
    assert not monitor.locked()
    # And the next holder is told.
    assert monitor.acquire(timeout=WAIT_SECONDS)
    assert monitor.previous_owner_died
    monitor.release()
