"""buslock.Mutex within one process: the threading.Lock interface, threads,
timeouts, misuse, errors and introspection."""

import os
import threading

import pytest

import buslock
from conftest import WAIT_SECONDS, wait_until


def test_with_takes_and_releases(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    assert not spi.locked()
    with spi as entered:
        assert entered is spi
        assert spi.locked()
        assert spi.is_held_by_current_thread()
        spi.assert_held()
        owner = spi.owner
        assert owner.pid == os.getpid()
        assert owner.tid == threading.get_native_id()
        assert owner.alive and not owner.took_over_from_dead
        assert spi.holder_thread == threading.get_native_id()
        assert not spi.previous_owner_died
    assert not spi.locked()
    assert spi.owner is None
    assert spi.holder_thread is None
    with pytest.raises(AssertionError, match="not held by this thread"):
        spi.assert_held()


def test_owner_str_is_the_library_wording(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    with spi:
        owner = spi.owner
        tid = threading.get_native_id()
        head = f"pid {os.getpid()} tid {tid} ({owner.program}), held for "
        assert str(owner).startswith(head), str(owner)
        assert "died" not in str(owner)
        assert repr(owner).startswith(f"Owner(pid={os.getpid()}, tid={tid},")


def test_default_dir_is_buslock_dir(lock_dir):
    spi = buslock.Mutex("SPI")
    assert spi.path == lock_dir / "SPI.lock"
    assert buslock.lock_dir() == lock_dir
    assert "SPI" in buslock.lock_names()
    assert spi.name == "SPI" and spi.legacy_path is None


def test_acquire_release_return_values(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    assert spi.acquire() is True
    assert spi.release() is None
    assert spi.acquire(blocking=False) is True
    spi.release()
    assert spi.acquire(timeout=0.5) is True
    spi.release()
    assert spi.acquire(True, 0) is True
    spi.release()


def test_threading_lock_argument_rules(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    with pytest.raises(ValueError, match="non-blocking"):
        spi.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="non-negative"):
        spi.acquire(timeout=-2)
    with pytest.raises(OverflowError):
        spi.acquire(timeout=1e300)
    assert not spi.locked()


def holder_thread(mutex, release):
    """Start a thread that takes `mutex` and keeps it until `release` is set."""
    taken = threading.Event()

    def run():
        with mutex:
            taken.set()
            release.wait(WAIT_SECONDS)

    t = threading.Thread(target=run)
    t.start()
    assert taken.wait(WAIT_SECONDS), "holder thread did not take the lock"
    return t


def test_timeouts_while_another_thread_holds(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    release = threading.Event()
    t = holder_thread(spi, release)
    try:
        assert spi.locked()
        assert spi.acquire(blocking=False) is False
        assert spi.acquire(timeout=0) is False
        assert spi.acquire(timeout=0.2) is False
        other = buslock.Mutex("SPI", lock_dir)
        assert other.acquire(timeout=0.1) is False
        assert spi.stats().timeouts >= 2
    finally:
        release.set()
        t.join(WAIT_SECONDS)
    assert not t.is_alive()
    assert spi.acquire(timeout=WAIT_SECONDS) is True
    assert spi.waited >= 0.0
    spi.release()


def test_waiter_gets_lock_when_released(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    spi.acquire()
    got = []

    def waiter():
        got.append(spi.acquire(timeout=WAIT_SECONDS))
        spi.release()

    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: len(spi.waiters()) == 1, "the waiter to queue")
    w = spi.waiters()[0]
    assert w.pid == os.getpid() and w.tid != threading.get_native_id()
    spi.release()
    t.join(WAIT_SECONDS)
    assert got == [True]
    assert spi.stats().contended >= 1


def test_release_from_wrong_thread_raises(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    spi.acquire()
    errors = []

    def intruder():
        try:
            spi.release()
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=intruder)
    t.start()
    t.join(WAIT_SECONDS)
    assert len(errors) == 1
    assert "not by this thread" in errors[0] and "'SPI'" in errors[0]
    # Still held, by the right thread, which can release it.
    assert spi.is_held_by_current_thread()
    spi.release()
    assert not spi.locked()


def test_release_unlocked_raises(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        spi.release()
    with spi:
        pass
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        spi.release()


def test_recursion_raises_instead_of_hanging(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    with spi:
        with pytest.raises(RuntimeError, match="not recursive"):
            spi.acquire()
        with pytest.raises(RuntimeError, match="not recursive"):
            spi.acquire(timeout=1)
        # A second object in the same thread is the same lock.
        other = buslock.Mutex("SPI", lock_dir)
        with pytest.raises(RuntimeError, match="not recursive"):
            other.acquire()
        assert spi.is_held_by_current_thread()
    assert not spi.locked()


def test_threads_with_separate_objects_exclude_each_other(lock_dir):
    inside = []
    overlaps = []
    counter = [0]

    def run():
        m = buslock.Mutex("SPI", lock_dir)
        for _ in range(300):
            with m:
                if inside:
                    overlaps.append(1)
                inside.append(1)
                c = counter[0]
                for _ in range(5):
                    pass
                counter[0] = c + 1
                inside.pop()

    pool = [threading.Thread(target=run) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(WAIT_SECONDS)
    assert not any(t.is_alive() for t in pool)
    assert overlaps == []
    assert counter[0] == 4 * 300


def test_stats_count_and_reset(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    for _ in range(5):
        with spi:
            pass
    s = spi.stats()
    assert s.acquisitions == 5
    assert s.owner_died == 0
    assert sum(s.hold_histogram) == 5
    assert len(s.wait_histogram) == len(s.hold_histogram) == 32
    assert s.hold_quantile(0.5) is not None
    assert s.wait_quantile(0.5) is None
    assert s.longest_hold.pid == os.getpid()
    assert s.contention_ratio() == 0.0
    assert buslock.Stats.bucket_bounds(0)[0] == 0.0
    assert buslock.Stats.bucket_bounds(31)[1] is None
    events, nxt = spi.events_since(0)
    assert len(events) == 5 and nxt == spi.event_head() == 5
    assert events[0].pid == os.getpid()
    spi.reset_stats()
    # The reset's own hold is the first of the new period.
    after = spi.stats()
    assert after.acquisitions == 1
    assert sum(after.hold_histogram) == 1


def test_invalid_name_is_a_value_error(lock_dir):
    with pytest.raises(buslock.InvalidName, match="invalid lock name") as info:
        buslock.Mutex("../etc", lock_dir)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, buslock.Error)
    assert not info.value.is_permission() and not info.value.is_corrupt()


def test_corrupt_lock_file(lock_dir):
    (lock_dir / "BAD.lock").write_bytes(b"not a lock" * 10)
    with pytest.raises(buslock.CorruptLockFile) as info:
        buslock.Mutex("BAD", lock_dir)
    assert info.value.is_corrupt()
    assert "BAD.lock" in str(info.value)
    (lock_dir / "BAD2.lock").write_bytes(b"\xff" * 12288)
    with pytest.raises(buslock.CorruptLockFile, match="BAD2.lock"):
        buslock.Mutex("BAD2", lock_dir)


def test_missing_dir_is_an_error(tmp_path):
    with pytest.raises(buslock.Error, match="does not exist"):
        buslock.Mutex("SPI", tmp_path / "nowhere")
    with pytest.raises(buslock.Error, match="does not exist"):
        buslock.Mutex("SPI", tmp_path, create=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_permission_denied(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(buslock.PermissionDenied) as info:
            buslock.Mutex("SPI", ro)
        assert info.value.is_permission()
        assert isinstance(info.value, PermissionError)
    finally:
        ro.chmod(0o700)


def test_dropping_a_held_mutex_releases_it(lock_dir):
    spi = buslock.Mutex("SPI", lock_dir)
    spi.acquire()
    del spi
    assert buslock.Mutex("SPI", lock_dir).acquire(blocking=False)


def test_pickle_reopens_the_same_lock(lock_dir, legacy_dir):
    import pickle

    spi = buslock.Mutex("SPI", lock_dir, legacy_record_lock=legacy_dir / "old")
    spi.acquire()
    copy = pickle.loads(pickle.dumps(spi))
    assert copy.path == spi.path and copy.legacy_path == spi.legacy_path
    assert copy.holder_thread is None
    assert copy.locked()
    spi.release()
    assert not copy.locked()


def test_legacy_record_lock_on_any_mutex(lock_dir, legacy_dir):
    import fcntl

    spi = buslock.Mutex("SPI", lock_dir, legacy_record_lock=legacy_dir / "old")
    assert spi.legacy_path == legacy_dir / "old"
    with spi:
        with open(legacy_dir / "old", "w") as f:
            # An open file description of our own still conflicts with the
            # OFD lock taken by the Mutex.
            with pytest.raises(OSError):
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(legacy_dir / "old", "w") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert spi.acquire(timeout=0.05) is False
        assert not spi.locked()
        fcntl.lockf(f, fcntl.LOCK_UN)
    assert spi.acquire(timeout=WAIT_SECONDS) is True
    spi.release()
