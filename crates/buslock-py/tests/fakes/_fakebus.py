"""The fake bus behind the fake ``spidev`` and ``smbus2`` modules: every
byte of every call is a line ``<pid> <kind> <seq>`` appended to the file
``$FAKE_BUS_FILE`` (kinds: S start, B byte, E end, O/C session open/close,
R reset). Each call checks, at its end, that nobody else's line appeared
since its own start line, and counts violations.

``$FAKE_BUS_DELAY`` (seconds, default 0.0002) sleeps after each byte to
widen the window for interleaving; with ``$FAKE_BUS_STALL=n`` the call
says ``@mid`` on stdout after its n-th byte and stalls forever (to be
SIGKILLed).
"""

import os
import sys
import time

PID = os.getpid()
DELAY = float(os.environ.get("FAKE_BUS_DELAY", "0.0002"))
STALL = int(os.environ.get("FAKE_BUS_STALL", "0"))
_fd = None
_seq = 0
#: Foreign lines this process found inside its own calls.
violations = 0


_fd_path = None


def _out():
    global _fd, _fd_path
    path = os.environ["FAKE_BUS_FILE"]
    if _fd_path != path:  # a new test in this process: a new file
        if _fd is not None:
            os.close(_fd)
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _fd_path = path
    return _fd


def put(kind, seq=None):
    os.write(_out(), ("%d %s %d\n" % (PID, kind, _seq if seq is None else seq)).encode())


def size():
    return os.fstat(_out()).st_size


def foreign_since(mark, first):
    """Lines of other processes after this process's first line from
    offset `mark` that satisfies `first(kind, seq)`."""
    with open(os.environ["FAKE_BUS_FILE"], "rb") as f:
        f.seek(mark)
        lines = [l.split() for l in f.read().decode().splitlines()]
    begin = next(
        i for i, (pid, kind, seq) in enumerate(lines) if int(pid) == PID and first(kind, int(seq))
    )
    return sum(1 for pid, _, _ in lines[begin:] if int(pid) != PID)


class Call:
    """One call on the bus: S, bytes, E, then the check."""

    def __enter__(self):
        global _seq
        _seq += 1
        self.seq = _seq
        self.mark = size()
        self.bytes = 0
        put("S")
        return self

    def byte(self):
        put("B")
        self.bytes += 1
        if STALL and self.bytes == STALL:
            print("@mid", flush=True)
            while True:
                time.sleep(1)
        if DELAY:
            time.sleep(DELAY)

    def __exit__(self, *exc):
        global violations
        put("E")
        seq = self.seq
        violations += foreign_since(self.mark, lambda k, s: k == "S" and s == seq)


def verdict(path):
    """The test's own check of the whole file: (intrusions, calls per pid,
    reset lines)."""
    intrusions, calls, resets = 0, {}, []
    inside = None  # (pid, depth)
    with open(path) as f:
        for line in f:
            pid, kind, _ = line.split()
            pid = int(pid)
            if kind == "R":
                resets.append(pid)
                inside = None
                continue
            if inside is not None and inside[0] != pid:
                intrusions += 1
            if kind in ("S", "O"):
                if kind == "S":
                    calls[pid] = calls.get(pid, 0) + 1
                inside = (pid, inside[1] + 1) if inside and inside[0] == pid else (pid, 1)
            elif kind in ("E", "C"):
                inside = (pid, inside[1] - 1) if inside and inside[0] == pid and inside[1] > 1 else None
    return intrusions, calls, resets
