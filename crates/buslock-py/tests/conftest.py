"""Fixtures shared by the buslock tests.

Every test gets its own temporary lock directory (never the machine's
default one) and runs under a watchdog that dumps the stacks and ends the
run if the test hangs, so a broken lock fails the suite instead of hanging
it.
"""

import faulthandler
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

#: Longest any single test may run before the watchdog ends the run.
TEST_WATCHDOG_SECONDS = 120
#: Longest a test waits for any one event (a child's message, an exit).
WAIT_SECONDS = 30


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(TEST_WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def private_lock_dirs(tmp_path, monkeypatch):
    """Point BUSLOCK_DIR and BUSLOCK_LEGACY_DIR at temporary directories,
    for this process and the children it starts."""
    locks = tmp_path / "locks"
    legacy = tmp_path / "legacy"
    locks.mkdir()
    legacy.mkdir()
    monkeypatch.setenv("BUSLOCK_DIR", str(locks))
    monkeypatch.setenv("BUSLOCK_LEGACY_DIR", str(legacy))
    return locks, legacy


@pytest.fixture
def lock_dir(private_lock_dirs):
    return private_lock_dirs[0]


@pytest.fixture
def legacy_dir(private_lock_dirs):
    return private_lock_dirs[1]


class Child:
    """A helper process (`python tests/child.py ...`) that reports what it
    does one line at a time on stdout."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "child.py"), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines = []
        self._buf = b""
        self.err = ""

    @property
    def pid(self):
        return self.proc.pid

    def expect(self, prefix, timeout=WAIT_SECONDS):
        """Wait (at most `timeout` s) for a line starting with `prefix`."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buf:
                    raw, self._buf = self._buf.split(b"\n", 1)
                    line = raw.decode()
                    self.lines.append(line)
                    if line.startswith(prefix):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise AssertionError(
                        "child %d did not say %r within %ss; it said %r, stderr %r"
                        % (self.pid, prefix, timeout, self.lines, self.stderr())
                    )
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout=WAIT_SECONDS)
                    raise AssertionError(
                        "child %d exited (%s) before saying %r; it said %r, stderr %r"
                        % (self.pid, self.proc.returncode, prefix, self.lines, self.stderr())
                    )
                self._buf += chunk

    def stderr(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def wait(self, timeout=WAIT_SECONDS):
        """Wait for the exit (watchdog: kill and fail after `timeout` s)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("child %d did not exit within %ss" % (self.pid, timeout))
        self._buf += out
        self.lines.extend(l.decode() for l in self._buf.splitlines())
        self._buf = b""
        self.err = err.decode(errors="replace")
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT_SECONDS)


@pytest.fixture
def child():
    """Start helper processes; any still running at the end are killed."""
    started = []

    def start(*args):
        c = Child(*args)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
        c.proc.stdout.close()
        c.proc.stderr.close()


def wait_until(condition, what, timeout=WAIT_SECONDS, step=0.01):
    """Poll `condition` until true; fail (not hang) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(step)
