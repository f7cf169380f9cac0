"""The drop-ins of buslock.compat: Dexter's DI_Mutex (and its interop with
programs still running Dexter's algorithm) and global_lock."""

import os
import signal
import threading

import pytest

import buslock
import workers
from buslock.compat import DI_Mutex, global_lock, legacy_path
from conftest import WAIT_SECONDS, wait_until


def test_di_mutex_acquire_release(lock_dir, legacy_dir):
    m = DI_Mutex("SPI")
    assert m.Filename == os.path.join(str(legacy_dir), "DI_Mutex_SPI")
    assert m.mutex.path == lock_dir / "SPI.lock"
    assert m.acquire() is None
    assert m.mutex.is_held_by_current_thread()
    assert m.release() is None
    assert not m.mutex.locked()
    # An unbalanced release is ignored, as in Dexter's class.
    assert m.release() is None
    with m:
        assert m.mutex.locked()
    assert not m.previous_owner_died


def test_di_mutex_default_legacy_path_is_dexters(monkeypatch, tmp_path):
    monkeypatch.delenv("BUSLOCK_LEGACY_DIR")
    # Only the path is checked: the tests never touch /run/lock.
    assert legacy_path("SPI") == "/run/lock/DI_Mutex_SPI"
    assert legacy_path("SPI", tmp_path) == str(tmp_path / "DI_Mutex_SPI")
    m = DI_Mutex("SPI", legacy_dir=tmp_path)
    assert m.Filename == str(tmp_path / "DI_Mutex_SPI")
    m = DI_Mutex("SPI", legacy=False)
    assert m.mutex.legacy_path is None


def test_di_mutex_legacy_file_problems_are_clear_errors(lock_dir, legacy_dir, tmp_path):
    with pytest.raises(buslock.Error, match="legacy lock directory .* does not exist"):
        DI_Mutex("SPI", legacy_dir=tmp_path / "missing")
    target = tmp_path / "victim"
    target.write_text("keep me")
    (legacy_dir / "DI_Mutex_SPI").symlink_to(target)
    with pytest.raises(buslock.Error, match="symbolic link"):
        DI_Mutex("SPI")
    assert target.read_text() == "keep me"


def test_di_mutex_excludes_threads(lock_dir):
    a, b = DI_Mutex("SPI"), DI_Mutex("SPI")
    a.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(b.mutex.acquire(timeout=0.2)))
    t.start()
    t.join(WAIT_SECONDS)
    assert got == [False]
    a.release()


def test_di_mutex_release_from_other_thread_raises(lock_dir):
    m = DI_Mutex("SPI")
    m.acquire()
    errors = []

    def other():
        try:
            m.release()
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join(WAIT_SECONDS)
    assert len(errors) == 1
    m.release()


def test_di_mutex_holds_dexters_file(lock_dir, legacy_dir, child):
    m = DI_Mutex("SPI")
    assert m.mutex.legacy_path == legacy_dir / "DI_Mutex_SPI"
    m.acquire()
    try:
        # Dexter's algorithm, in another process, cannot get the file.
        old = child("dexter_hold", "SPI", "0")
        wait_until(lambda: (legacy_dir / "DI_Mutex_SPI").exists(), "the legacy file")
        assert old.proc.poll() is None
        with pytest.raises(AssertionError):
            old.expect("held", timeout=0.3)
    finally:
        m.release()
    old = child("dexter_hold", "SPI", "0")
    old.expect("held")
    assert old.wait() == 0


def test_buslock_waits_for_dexters_holder(lock_dir, legacy_dir, child):
    old = child("dexter_hold", "SPI", "2")
    old.expect("held")
    m = DI_Mutex("SPI")
    assert m.mutex.acquire(timeout=0.1) is False
    assert not m.mutex.locked(), "a failed legacy wait must leave the buslock mutex free"
    assert m.mutex.acquire(timeout=WAIT_SECONDS) is True
    m.release()
    assert old.wait() == 0


def test_sigint_while_waiting_for_dexters_file(lock_dir, legacy_dir, child):
    old = child("dexter_hold", "SPI")
    old.expect("held")
    waiter = child("dropin_wait", "SPI")
    waiter.expect("waiting")
    spi = buslock.Mutex("SPI", lock_dir)
    # The drop-in holds the buslock mutex while it waits for Dexter's file.
    def taken():
        if spi.acquire(blocking=False):
            spi.release()
            return False
        return True

    wait_until(taken, "the drop-in to take the buslock mutex and wait for the file")
    os.kill(waiter.pid, signal.SIGINT)
    line = waiter.expect("interrupted")
    assert waiter.wait() == 0, waiter.err
    assert "holder_thread=None" in line.split() and "locked=0" in line.split()
    assert not spi.locked()
    old.kill()
    assert DI_Mutex("SPI").mutex.acquire(timeout=WAIT_SECONDS) is True


def test_dexter_algorithm_and_dropin_never_overlap(lock_dir, legacy_dir, tmp_path, child):
    shared = tmp_path / "shared"
    workers.make_shared(shared)
    iterations = 300
    procs = [
        child("dexter", "SPI", shared, iterations),
        child("dropin", "SPI", shared, iterations),
        child("dexter", "SPI", shared, iterations),
        child("dropin", "SPI", shared, iterations),
    ]
    for p in procs:
        p.expect("ready")
    for p in procs:
        p.expect("done", timeout=WAIT_SECONDS * 2)
        assert p.wait() == 0, p.err
    s = workers.Shared(shared)
    try:
        assert s.get(2) == 0, "a Dexter process and a buslock process overlapped"
        assert s.get(1) == len(procs) * iterations
    finally:
        s.close()

@pytest.fixture
def sem():
    """A global_lock name unique to this test; its POSIX semaphore (which
    compat.global_lock takes as a companion) is removed afterwards."""
    name = "I2C-test%d" % os.getpid()
    yield name
    try:
        os.unlink("/dev/shm/sem." + name)
    except FileNotFoundError:
        pass


def test_global_lock_return_values(lock_dir, child, capsys, sem):
    lock = global_lock(sem)
    assert lock.lockname == "/" + sem
    assert lock.lock.path == lock_dir / (sem + ".lock")
    assert lock.is_locked() is False
    assert lock.lock_value() == 1
    assert lock.get_lock() is True
    assert lock.is_locked() is True
    assert lock.lock_value() == 0
    # Held by this thread: a timed request fails at once, an endless one
    # raises instead of hanging forever as a semaphore would.
    assert lock.get_lock(0.1) is False
    assert lock.get_lock(0) is False
    with pytest.raises(RuntimeError, match="not recursive"):
        lock.get_lock()
    # Another process times out, and its extraneous unget is refused.
    other = child("global_get", "/" + sem, "0.1")
    assert other.wait() == 0, other.err
    assert other.lines == ["get_lock False", "unget_lock False"]
    assert lock.unget_lock() is True
    assert lock.unget_lock() is False
    assert lock.is_locked() is False
    assert lock.lock_value() == 1
    other = child("global_get", sem, "None")
    assert other.wait() == 0, other.err
    assert other.lines == ["get_lock True", "unget_lock True"]
    assert lock.get_lock(timeout=0) is True
    assert lock.unget_lock() is True
    assert capsys.readouterr().out == ""


def test_global_lock_debug_prints(lock_dir, capsys, sem):
    lock = global_lock(sem, debug=True)
    assert lock.get_lock(1) is True
    assert lock.unget_lock() is True
    assert lock.unget_lock() is False
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "</%s> lock request successful (0)" % sem,
        "</%s> lock released (1)" % sem,
        "</%s> Extraneous unget, ignored (1)" % sem,
    ]


def test_global_lock_survives_a_crashed_holder(lock_dir, child, sem):
    holder = child("hold", sem)
    holder.expect("held")
    lock = global_lock("/" + sem)
    assert lock.get_lock(0.05) is False
    os.kill(holder.pid, signal.SIGKILL)
    holder.proc.wait(WAIT_SECONDS)
    # A posix_ipc semaphore would stay at 0 forever here.
    assert lock.get_lock(WAIT_SECONDS) is True
    assert lock.lock.previous_owner_died
    assert lock.unget_lock() is True
