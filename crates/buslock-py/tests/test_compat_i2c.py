"""Dexter's I2C conventions (``I2C_mutex``, ``di_sensors.easy_mutex``) and
their drop-ins in ``buslock.compat``, against Dexter's real algorithm in the
same run: no overlap; the module functions and the overall-mutex flag
behave as the originals."""

import fcntl
import os
import subprocess
import sys

from conftest import HERE, WAIT_SECONDS, Child

import workers


class I2cChild(Child):
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "i2c_child.py"), *map(str, args)],
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


def dexter_file_busy(legacy_dir):
    """Try Dexter's own lockf once, as an unmigrated program would."""
    with open(os.path.join(str(legacy_dir), "DexterLockI2C"), "w") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN)
        return False


def test_dropins_and_dexters_i2c_algorithm_never_overlap(lock_dir, legacy_dir, tmp_path):
    shared = tmp_path / "shared"
    workers.make_shared(shared)
    iterations = 150
    procs = [I2cChild(kind, shared, iterations) for kind in ("dexter", "dropin", "dexter", "easy")]
    try:
        for p in procs:
            p.expect("done", timeout=120)
            assert p.wait() == 0, p.err
    finally:
        for p in procs:
            p.kill()
    s = workers.Shared(shared)
    assert s.get(2) == 0, "a holder found another inside"
    assert s.get(1) == 4 * iterations
    s.close()


def test_module_functions_hold_the_bus_and_dexters_file(lock_dir, legacy_dir):
    import buslock

    holder = I2cChild("functions_hold")
    try:
        holder.expect("held")
        assert dexter_file_busy(legacy_dir)
        owner = buslock.Mutex("i2c-1").owner
        assert owner is not None and owner.pid == holder.pid
        holder.go_on()
        holder.expect("released")
        assert not dexter_file_busy(legacy_dir)
        holder.go_on()
        assert holder.wait(WAIT_SECONDS) == 0
    finally:
        holder.kill()


def test_if_mutex_acquire_follows_the_flag_and_the_overall_mutex(lock_dir, legacy_dir):
    from buslock.compat import I2C_mutex

    for enabled, overall, expect in [("0", False, "not-holding"), ("1", False, "holding"), ("0", True, "holding")]:
        flag = I2C_mutex.Mutex(legacy=False)
        if overall:
            flag.set_overall_mutex()
            assert flag.overall_mutex()
        p = I2cChild("easy_hold", enabled)
        try:
            assert p.expect(expect) == expect
            assert dexter_file_busy(legacy_dir) == (expect == "holding")
            p.go_on()
            assert p.wait() == 0, p.err
        finally:
            p.kill()
            if overall:
                flag.release_overall_mutex()
                assert not flag.overall_mutex()


def test_i2c_mutex_and_smbus_share_the_bus_lock(lock_dir, legacy_dir):
    from buslock.compat import I2C_mutex

    assert I2C_mutex.Mutex().mutex.name == "i2c-1"
    assert I2C_mutex.Mutex(bus=3).mutex.name == "i2c-3"
    m = I2C_mutex.Mutex()
    with m:
        assert m.mutex.is_held_by_current_thread()
    m.release()  # unbalanced: ignored, as before


def test_importing_easy_mutex_creates_no_file(lock_dir, legacy_dir):
    """Regression: ``easy_mutex`` makes its process-wide mutex at import, as
    Dexter's does, and that opened the bus lock at once: importing the
    module (or running stubtest over the package) created the lock file,
    and as root the system lock directory and Dexter's file."""
    before = (sorted(os.listdir(lock_dir)), sorted(os.listdir(legacy_dir)))
    code = "import buslock.compat.easy_mutex, buslock.compat.I2C_mutex as m; m.Mutex()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=WAIT_SECONDS)
    assert (sorted(os.listdir(lock_dir)), sorted(os.listdir(legacy_dir))) == before
    # The first acquire opens it.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from buslock.compat.easy_mutex import ifMutexAcquire as a, ifMutexRelease as r;"
            " a(True); r(True)",
        ],
        check=True,
        timeout=WAIT_SECONDS,
    )
    assert "i2c-1.lock" in os.listdir(lock_dir)
