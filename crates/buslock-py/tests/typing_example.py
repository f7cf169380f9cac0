"""An example program checked with `mypy --strict` by scripts/test.d/python.sh:
the stubs must let ordinary buslock code type-check without complaints."""

from typing import Optional

import buslock


def read_register(spi: buslock.Mutex, register: int) -> int:
    # `with` releases on every path; the stub's __exit__ returns None, so
    # mypy knows exceptions propagate and this function always returns.
    with spi:
        if spi.previous_owner_died:
            return -1
        return register * 2


def try_once(spi: buslock.Mutex) -> Optional[int]:
    if not spi.acquire(blocking=False):
        return None
    try:
        return 1
    finally:
        spi.release()


def holder(spi: buslock.Mutex) -> str:
    owner = spi.owner
    if owner is None:
        return "free"
    return "%s (pid %d)%s" % (owner.program, owner.pid, "" if owner.alive else " died")


def main() -> None:
    spi = buslock.Mutex("SPI", create=True)
    print(read_register(spi, 3), try_once(spi), holder(spi))
    if spi.acquire(timeout=0.5):
        spi.release()
    print(spi.stats().acquisitions)


if __name__ == "__main__":
    main()
