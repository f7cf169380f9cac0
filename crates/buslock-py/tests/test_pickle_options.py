"""A Mutex passed to a `multiprocessing` worker (pickled, reopened in a
spawned child) keeps every option it was opened with."""

import multiprocessing
import os
import warnings

import pytest

import buslock
import workers

posix_ipc = pytest.importorskip("posix_ipc")


@pytest.fixture
def sem():
    name = "/buslock-pickle-test%d" % os.getpid()
    yield name
    try:
        posix_ipc.unlink_semaphore(name)
    except posix_ipc.ExistentialError:
        pass


def test_a_pickled_mutex_loses_legacy_semaphore_poll_interval_and_lockdep(
    lock_dir, legacy_dir, sem, monkeypatch
):
    # The child must not get lockdep="error" from the environment.
    monkeypatch.setenv("BUSLOCK_LOCKDEP", "warn")
    record = buslock.Mutex(
        "SPI", legacy_record_lock=legacy_dir / "DI_Mutex_SPI", legacy_poll_interval=10.0
    )
    posix_ipc.Semaphore(sem, flags=posix_ipc.O_CREAT, mode=0o600, initial_value=1)
    sem_mutex = buslock.Mutex("NCSPI", legacy_semaphore=sem)
    a = buslock.Mutex("A", lockdep="error")
    b = buslock.Mutex("B", lockdep="error")
    with a:
        with b:
            pass
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(
        target=workers.pickled_options_worker, args=(record, sem_mutex, a, b, sem, out)
    )
    child.start()
    try:
        seen = out.get(timeout=60)
    finally:
        child.join(60)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert seen == {
        "try_after_release": False,
        "semaphore_taken": True,
        "inversion": "refused",
    }
