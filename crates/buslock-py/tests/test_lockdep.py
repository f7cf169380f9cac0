"""Lock-order checking from Python: LockOrderWarning, LockOrderError and
the modes, against orders recorded by other (real) processes in the test's
temporary lock directory."""

import os
import subprocess
import sys
import threading
import warnings

import pytest

import buslock

from conftest import WAIT_SECONDS

NEST = """
import sys, warnings, buslock
if sys.argv[2:] == ["strict"]:
    warnings.simplefilter("error", buslock.LockOrderWarning)
locks = [buslock.Mutex(n) for n in sys.argv[1].split(",")]
for m in locks:
    try:
        m.acquire()
    except buslock.LockOrderError as e:
        print("REFUSED", str(e).replace("\\n", "|"))
        sys.exit(0)
print("OK")
"""


def nest(names, mode="warn", strict=False):
    """Take `names` in order in a new Python process, which then exits;
    `strict` turns LockOrderWarning into an error there."""
    env = dict(os.environ, BUSLOCK_LOCKDEP=mode)
    out = subprocess.run(
        [sys.executable, "-c", NEST, ",".join(names)] + (["strict"] if strict else []),
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    return out


def test_ab_in_exited_process_then_ba_warns_once(lock_dir):
    out = nest(["A", "B"])
    assert out.returncode == 0 and out.stdout.strip() == "OK", out
    a, b = buslock.Mutex("A"), buslock.Mutex("B")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with b:
            with a:
                pass
        with b:
            with a:
                pass
    order = [w for w in caught if issubclass(w.category, buslock.LockOrderWarning)]
    assert len(order) == 1, [str(w.message) for w in caught]
    text = str(order[0].message)
    assert "wants lock 'A' while holding 'B'" in text
    assert "'A' then 'B': first taken by" in text
    assert "holds 'A', wants 'B'" in text and "holds 'B', wants 'A'" in text
    assert order[0].filename == __file__, "points at the caller"


def test_error_mode_refuses_before_blocking(lock_dir):
    assert nest(["A", "B"]).stdout.strip() == "OK"
    a = buslock.Mutex("A", lockdep="error")
    b = buslock.Mutex("B", lockdep="error")
    with b:
        with pytest.raises(buslock.LockOrderError) as info:
            a.acquire()
        assert isinstance(info.value, buslock.Error)
        assert "holding 'B'" in str(info.value)
        assert not a.locked()
        # acquire(timeout=...) and `with` are refused the same way.
        with pytest.raises(buslock.LockOrderError):
            a.acquire(timeout=1.0)
        with pytest.raises(buslock.LockOrderError):
            with a:
                pass
    # In the recorded order it works.
    with a:
        with b:
            pass


def test_env_error_mode_in_another_process(lock_dir):
    assert nest(["A", "B"], mode="error").stdout.strip() == "OK"
    out = nest(["B", "A"], mode="error")
    assert out.returncode == 0, out
    assert out.stdout.startswith("REFUSED "), out
    assert "'A' then 'B'" in out.stdout


def test_warn_mode_in_another_process_raises_the_warning(lock_dir):
    # The child turns LockOrderWarning into an error: the acquisition
    # raises it and leaves nothing held.
    assert nest(["A", "B"]).stdout.strip() == "OK"
    out = nest(["B", "A"], strict=True)
    assert out.returncode != 0
    assert "LockOrderWarning" in out.stderr, out
    assert not buslock.Mutex("A").locked()


def test_off_mode_neither_checks_nor_warns(lock_dir):
    assert nest(["A", "B"]).stdout.strip() == "OK"
    a = buslock.Mutex("A", lockdep="off")
    b = buslock.Mutex("B", lockdep="off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with b:
            with a:
                pass


def test_warning_turned_into_error_releases_the_lock(lock_dir):
    assert nest(["A", "B"]).stdout.strip() == "OK"
    a, b = buslock.Mutex("A"), buslock.Mutex("B")
    with warnings.catch_warnings():
        warnings.simplefilter("error", buslock.LockOrderWarning)
        with b:
            with pytest.raises(buslock.LockOrderWarning):
                a.acquire()
            assert not a.locked()


def test_threads_inverting_in_one_process(lock_dir):
    a = buslock.Mutex("A", lockdep="error")
    b = buslock.Mutex("B", lockdep="error")
    errors = []

    def ab():
        with a:
            with b:
                pass

    def ba():
        with b:
            try:
                a.acquire()
                a.release()
            except buslock.LockOrderError as e:
                errors.append(e)

    for target in (ab, ba):
        t = threading.Thread(target=target)
        t.start()
        t.join(WAIT_SECONDS)
    assert len(errors) == 1


def test_hand_over_hand_is_not_reported(lock_dir):
    a, b, c = (buslock.Mutex(n, lockdep="error") for n in "ABC")
    for _ in range(3):
        a.acquire()
        b.acquire()
        a.release()
        c.acquire()
        b.release()
        c.release()


def test_invalid_mode_is_a_value_error(lock_dir):
    with pytest.raises(ValueError, match="off, warn or error"):
        buslock.Mutex("A", lockdep="loud")


def test_warning_reaches_python_while_the_inverting_acquire_waits(lock_dir):
    # A is held elsewhere: the inverting acquisition waits, and the warning
    # (an error here) is raised while it waits, not after the lock comes.
    assert nest(["A", "B"]).stdout.strip() == "OK"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import buslock, sys, time\n"
         "m = buslock.Mutex('A'); m.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        a, b = buslock.Mutex("A"), buslock.Mutex("B")
        with warnings.catch_warnings():
            warnings.simplefilter("error", buslock.LockOrderWarning)
            with b:
                with pytest.raises(buslock.LockOrderWarning):
                    a.acquire(timeout=WAIT_SECONDS)
        assert not a.is_held_by_current_thread()
    finally:
        holder.kill()
        holder.wait()


def test_nested_non_waiting_acquires_still_take_a_free_lock(lock_dir):
    # Regression: while another lock is held, acquire(timeout=0) and
    # acquire(blocking=False) must still try the (free) lock.
    a, b = buslock.Mutex("A"), buslock.Mutex("B")
    with a:
        assert b.acquire(timeout=0)
        b.release()
        assert b.acquire(blocking=False)
        b.release()
