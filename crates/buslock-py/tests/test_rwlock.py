"""buslock.RwLock with real interpreters, real processes and real signals."""

import os
import signal
import subprocess
import sys
import threading

import pytest

import buslock
from conftest import HERE, WAIT_SECONDS, Child, wait_until


def rw_child(*args):
    c = Child.__new__(Child)
    c.proc = subprocess.Popen(
        [sys.executable, str(HERE / "rw_child.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    c.lines, c._buf, c.err = [], b"", ""
    return c


@pytest.fixture
def rw_children():
    started = []

    def start(*args):
        c = rw_child(*args)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()


def test_readers_in_three_processes_hold_it_at_once(lock_dir, rw_children):
    kids = [rw_children("overlap", "table", 3) for _ in range(3)]
    for k in kids:
        assert k.expect("overlap").split()[1] == "3"
    for k in kids:
        assert k.wait() == 0, k.err
    assert buslock.RwLock("table", lock_dir).stats()["reads"] == 3


def test_with_blocks_recursion_and_downgrade(lock_dir):
    rw = buslock.RwLock("table", lock_dir)
    with rw.read():
        assert [r.pid for r in rw.readers] == [os.getpid()]
        with pytest.raises(RuntimeError, match="already reading"):
            rw.acquire_read()
        with pytest.raises(RuntimeError, match="already reading"):
            rw.acquire_write()
    with rw.write():
        assert rw.writer.pid == os.getpid()
        assert rw.readers == []
        with pytest.raises(RuntimeError):
            rw.acquire_read()
    assert rw.acquire_write() is True
    rw.downgrade()
    assert rw.writer is None
    assert [r.tid for r in rw.readers] == [threading.get_native_id()]
    rw.release_read()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        rw.release_read()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        rw.release_write()
    s = rw.stats()
    assert (s["reads"], s["writes"]) == (2, 2)


def test_a_sigkilled_reader_frees_its_share(lock_dir, rw_children):
    reader = rw_children("hold", "table", "read")
    reader.expect("held")
    rw = buslock.RwLock("table", lock_dir)
    assert rw.acquire_write(blocking=False) is False
    os.kill(reader.pid, signal.SIGKILL)
    reader.proc.wait(WAIT_SECONDS)
    assert rw.acquire_write(timeout=WAIT_SECONDS) is True
    assert rw.previous_owner_died is False
    rw.release_write()
    assert rw.stats()["reader_deaths"] == 1
    # Resetting zeroes both sides for every user; its own write counts.
    rw.reset_stats()
    s = buslock.RwLock("table", lock_dir).stats()
    assert (s["reads"], s["reader_deaths"], s["writes"]) == (0, 0, 1), s
    # Not while this thread holds it: that would wait for itself.
    with rw.read():
        with pytest.raises(RuntimeError):
            rw.reset_stats()


def test_a_sigkilled_writer_is_told_to_the_next_reader(lock_dir, rw_children):
    writer = rw_children("hold", "table", "write")
    _, pid, tid = writer.expect("held").split()
    rw = buslock.RwLock("table", lock_dir)
    assert (rw.writer.pid, rw.writer.tid) == (int(pid), int(tid))
    assert rw.acquire_read(timeout=0.05) is False
    os.kill(writer.pid, signal.SIGKILL)
    writer.proc.wait(WAIT_SECONDS)
    with rw.read():
        assert rw.previous_owner_died is True
    with rw.read():
        assert rw.previous_owner_died is False
    assert rw.stats()["writer_deaths"] == 1


def test_events_show_reads_writes_and_a_killed_writer(lock_dir, rw_children):
    rw = buslock.RwLock("table", lock_dir)
    start = rw.event_head()
    with rw.read():
        pass
    with rw.write():
        pass
    writer = rw_children("hold", "table", "write")
    _, pid, _ = writer.expect("held").split()
    os.kill(writer.pid, signal.SIGKILL)
    writer.proc.wait(WAIT_SECONDS)
    with rw.read():
        assert rw.previous_owner_died is True
    events, nxt = rw.events_since(start)
    assert nxt == start + 4 == rw.event_head()
    got = [(e.pid, e.read, e.died, e.previous_owner_died) for e in events]
    me = os.getpid()
    assert got == [
        (me, True, False, False),
        (me, False, False, False),
        (int(pid), False, True, False),
        (me, True, False, True),
    ], events


def test_sigint_while_waiting_to_read_raises_keyboardinterrupt(lock_dir, rw_children):
    rw = buslock.RwLock("table", lock_dir)
    rw.acquire_write()
    try:
        waiter = rw_children("wait-read", "table")
        waiter.expect("waiting")
        wait_until(
            lambda: any(w.pid == waiter.pid for w in rw.readers_waiting()),
            "the child to wait",
        )
        os.kill(waiter.pid, signal.SIGINT)
        assert waiter.expect("interrupted").split()[1] == "0"
        assert waiter.wait() == 0, waiter.err
    finally:
        rw.release_write()


def test_a_name_is_one_kind_of_lock(lock_dir):
    buslock.RwLock("table", lock_dir)
    with pytest.raises(buslock.Error, match="holds a rwlock, not a mutex"):
        buslock.Mutex("table", lock_dir)
    buslock.Mutex("SPI", lock_dir)
    with pytest.raises(buslock.Error, match="holds a mutex, not a rwlock"):
        buslock.RwLock("SPI", lock_dir)


def test_a_writer_ended_by_an_exception_is_told(lock_dir, tmp_path):
    script = (
        "import buslock\n"
        "rw = buslock.RwLock('table')\n"
        "rw.acquire_write()\n"
        "raise SystemExit(3)\n"
    )
    p = subprocess.run([sys.executable, "-c", script], timeout=WAIT_SECONDS)
    assert p.returncode == 3
    rw = buslock.RwLock("table", lock_dir)
    with rw.read():
        assert rw.previous_owner_died is True
