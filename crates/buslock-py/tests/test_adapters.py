"""``buslock.spidev.SpiDev`` and ``buslock.smbus2.SMBus`` against a fake
device (fake ``spidev``/``smbus2`` modules whose every byte goes to a shared
file) with real processes: no call or session interleaves with another
process's, every participant checks its own calls, a SIGKILL mid-call is
followed by the owner-died hook, and without the lock the same workload
interleaves (the control)."""

import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import HERE, Child

FAKES = HERE / "fakes"
sys.path.insert(0, str(FAKES))

import _fakebus  # noqa: E402

import buslock  # noqa: E402


class BusChild(Child):
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "bus_child.py"), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines = []
        self._buf = b""
        self.err = ""


@pytest.fixture
def bus_file(tmp_path, monkeypatch):
    path = tmp_path / "bus"
    monkeypatch.setenv("FAKE_BUS_FILE", str(path))
    return path


@pytest.fixture
def start():
    started = []

    def start(*args):
        c = BusChild(*args)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
        c.proc.stdout.close()
        c.proc.stderr.close()


def finish(c):
    line = c.expect("@done")
    assert c.wait() == 0, c.err
    _, seen, resets = line.split()
    return int(seen), int(resets)


def run_workers(start, kind, mode, n=3, count=30):
    go = os.environ["FAKE_BUS_FILE"] + ".go"
    os.environ["BUS_GO_FILE"] = go
    try:
        children = [start(kind, mode, count) for _ in range(n)]
    finally:
        del os.environ["BUS_GO_FILE"]
    open(go, "w").close()  # all start together
    return sum(finish(c)[0] for c in children)


@pytest.mark.parametrize("kind", ["spidev", "smbus2"])
@pytest.mark.parametrize("mode", ["locked", "session"])
def test_calls_of_processes_never_interleave(start, bus_file, kind, mode):
    seen = run_workers(start, kind, mode)
    intrusions, calls, resets = _fakebus.verdict(bus_file)
    assert seen == 0
    assert intrusions == 0
    per = 30 * (3 if mode == "session" else 1)
    assert sorted(calls.values()) == [per] * 3
    assert resets == []


@pytest.mark.parametrize("kind", ["spidev", "smbus2"])
def test_the_checks_see_interleaving_without_the_lock(start, bus_file, kind):
    seen = run_workers(start, kind, "bare")
    intrusions, _, _ = _fakebus.verdict(bus_file)
    assert seen > 0
    assert intrusions > 0


@pytest.mark.parametrize("kind", ["spidev", "smbus2"])
def test_a_process_killed_mid_call_is_followed_by_the_owner_died_hook(
    start, bus_file, monkeypatch, kind
):
    monkeypatch.setenv("FAKE_BUS_STALL", "2")
    victim = start(kind, "locked", 1)
    victim.expect("@mid")
    monkeypatch.delenv("FAKE_BUS_STALL")
    nxt = start(kind, "locked", 5)
    victim.kill()
    assert finish(nxt) == (0, 1)
    with open(bus_file) as f:
        lines = [l.split() for l in f]
    r = next(i for i, l in enumerate(lines) if l[1] == "R")
    assert int(lines[r][0]) == nxt.pid
    assert lines[r - 1][:2] == [str(victim.pid), "B"]
    assert all(int(l[0]) == victim.pid for l in lines[:r])
    # The hook's own reset call comes next, on the held bus.
    assert [l[:2] for l in lines[r + 1 : r + 3]] == [[str(nxt.pid), "S"], [str(nxt.pid), "B"]]
    intrusions, calls, resets = _fakebus.verdict(bus_file)
    assert (intrusions, resets, calls[nxt.pid]) == (0, [nxt.pid], 6)


def test_sessions_are_reentrant_in_their_thread_and_exclude_other_threads(bus_file, lock_dir):
    from buslock.smbus2 import SMBus

    bus = SMBus(1)
    events = []

    def other():
        events.append("other waits")
        bus.read_byte_data(0x40, 0)
        events.append("other done")

    with bus.session():
        with bus.session():
            bus.read_byte_data(0x40, 0)
        t = threading.Thread(target=other)
        t.start()
        deadline = time.monotonic() + 30
        while bus.lock.waiters() == [] and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(bus.lock.waiters()) == 1
        bus.read_byte_data(0x40, 1)
        events.append("session ends")
    t.join(30)
    assert events == ["other waits", "session ends", "other done"]
    assert not bus.lock.locked()


def test_lock_names_follow_the_kernel_devices(bus_file, lock_dir):
    from buslock.smbus2 import SMBus
    from buslock.spidev import SpiDev

    assert SpiDev(0, 1).lock.name == "spi0"
    assert SpiDev(2, 0).lock.name == "spi2"
    assert SMBus(1).lock.name == "i2c-1"
    assert SMBus("/dev/i2c-3").lock.name == "i2c-3"
    assert buslock.bus_lock_name("/dev/spidev0.1") == "spi0"
    with pytest.raises(buslock.Error, match="'/dev/ttyAMA0' is not an SPI or I2C device node"):
        buslock.bus_lock_name("/dev/ttyAMA0")
    with pytest.raises(RuntimeError, match="not open"):
        SpiDev().xfer2([1])


def test_an_owner_died_hook_that_fails_runs_again(bus_file, lock_dir, child):
    from buslock.smbus2 import SMBus

    holder = child("hold", "i2c-1")
    holder.expect("held")
    holder.kill()
    calls = []

    def hook(dev):
        calls.append(dev)
        if len(calls) == 1:
            raise OSError("reset failed")

    bus = SMBus(1, on_owner_died=hook)
    with pytest.raises(OSError, match="reset failed"):
        bus.read_byte_data(0x40, 0)
    assert not bus.lock.locked()
    bus.read_byte_data(0x40, 0)
    bus.read_byte_data(0x40, 0)
    assert calls == [bus, bus]


@pytest.mark.parametrize("module,extra", [("spidev", "spidev"), ("smbus2", "smbus2")])
def test_a_missing_package_is_an_import_error_naming_the_extra(module, extra):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [sys.executable, "-c", "import buslock.%s" % module],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert "pip install buslock[%s]" % extra in out.stderr
