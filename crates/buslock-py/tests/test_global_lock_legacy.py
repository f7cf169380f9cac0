"""compat.global_lock against the real global_lock algorithm (a posix_ipc
semaphore) in the same run: the drop-in waits for an old program holding
the semaphore, the two never overlap, and a drop-in holder that dies is
healed so old programs are not locked out."""

import os
import subprocess
import sys

import pytest

from conftest import HERE, Child

import workers

posix_ipc = pytest.importorskip("posix_ipc")


class SemChild(Child):
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sem_child.py"), *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines = []
        self._buf = b""
        self.err = ""

    def go_on(self):
        self.proc.stdin.write(b"\n")
        self.proc.stdin.flush()


@pytest.fixture
def sem():
    """A semaphore name unique to this test, unlinked afterwards."""
    name = "/NCSPI-test%d" % os.getpid()
    yield name
    try:
        posix_ipc.unlink_semaphore(name)
    except posix_ipc.ExistentialError:
        pass


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.kill()


def real(name):
    return posix_ipc.Semaphore(name, flags=posix_ipc.O_CREAT, mode=0o600, initial_value=1)


def test_global_lock_dropin_waits_for_an_old_program_holding_the_semaphore(lock_dir, sem, procs):
    from buslock.compat import global_lock

    old = SemChild("real_hold", sem)
    procs.append(old)
    old.expect("held")
    lock = global_lock(sem)
    assert lock.get_lock(0.2) is False
    assert lock.get_lock(0) is False
    old.go_on()
    old.expect("released")
    assert lock.get_lock(5) is True
    s = real(sem)
    with pytest.raises(posix_ipc.BusyError):
        s.acquire(0)
    assert lock.unget_lock() is True
    assert s.value == 1
    old.go_on()
    assert old.wait() == 0, old.err


def test_real_global_lock_and_dropin_never_overlap(lock_dir, sem, procs, tmp_path):
    shared = tmp_path / "shared"
    workers.make_shared(shared)
    iterations = 200
    for kind in ("real_loop", "dropin_loop", "real_loop", "dropin_loop"):
        procs.append(SemChild(kind, sem, shared, iterations))
    for p in procs:
        p.expect("done", timeout=120)
        assert p.wait() == 0, p.err
    s = workers.Shared(shared)
    assert s.get(2) == 0, "a holder found another inside"
    assert s.get(1) == 4 * iterations
    s.close()
    assert real(sem).value == 1


def test_global_lock_heals_the_semaphore_of_a_dead_dropin_holder(lock_dir, sem, procs):
    from buslock.compat import global_lock

    holder = SemChild("dropin_hold", sem)
    procs.append(holder)
    holder.expect("held")
    holder.kill()
    s = real(sem)
    # The kernel does not give the semaphore back: old programs are stuck.
    assert s.value == 0
    with pytest.raises(posix_ipc.BusyError):
        s.acquire(0.1)
    lock = global_lock(sem)
    assert lock.get_lock(5) is True
    assert lock.lock.previous_owner_died
    assert lock.unget_lock() is True
    assert s.value == 1
    s.acquire(0)  # an old program gets it again
    s.release()
