#!/usr/bin/env bash
# Builds the Python bindings (crates/buslock-py) into a virtualenv it creates
# and runs their pytest suite: real interpreters, real processes, real
# SIGKILL/SIGINT, lock files in temporary directories only.
# Also type-checks an example program with `mypy --strict` and compares the
# type stubs with the built module (`mypy.stubtest`).
# Needs only python3 (3.9+) with pip and venv, Rust and gcc; installs maturin,
# pytest and mypy into the virtualenv from PyPI. Exits non-zero if any test
# or check fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
crate="$root/crates/buslock-py"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/py-venv"
python="${PYTHON:-python3}"

if ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "-- creating virtualenv $venv"
  rm -rf "$venv"
  if ! "$python" -m venv "$venv"; then
    # Some distributions ship Python without ensurepip/venv: use virtualenv.
    rm -rf "$venv"
    "$python" -m pip install --quiet --user virtualenv \
      || "$python" -m pip install --quiet --user --break-system-packages virtualenv
    "$python" -m virtualenv --quiet "$venv"
  fi
fi
py="$venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check --upgrade "maturin>=1.7,<2" pytest mypy
# posix_ipc: the real global_lock semaphore that compat.global_lock must exclude.
"$py" -m pip install --quiet --disable-pip-version-check posix_ipc

echo "-- building the extension (maturin, release)"
rm -rf "$target/py-wheels"
(cd "$crate" && CARGO_TARGET_DIR="$target" "$venv/bin/maturin" build --release \
  --interpreter "$py" --out "$target/py-wheels" --quiet)
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
  "$target"/py-wheels/buslock-*.whl

cd "$crate"
echo "-- mypy --strict on an example, and stubtest against the built module"
"$py" -m mypy --strict --no-incremental tests/typing_example.py
# The bus classes import their optional packages (spidev, smbus2) at import
# time; the tests' fake devices stand in for them here.
# stubtest imports every module: point the lock directories at a temporary
# one so that nothing can touch the machine's own.
stub_dirs=$(mktemp -d)
mkdir -p "$stub_dirs/locks" "$stub_dirs/legacy"
BUSLOCK_DIR="$stub_dirs/locks" BUSLOCK_LEGACY_DIR="$stub_dirs/legacy" \
  PYTHONPATH=tests/fakes "$py" -m mypy.stubtest --allowlist tests/stubtest-allowlist.txt buslock
rm -rf "$stub_dirs"

echo "-- pytest"
# Never touch the machine's default lock directory from the tests.
unset BUSLOCK_DIR BUSLOCK_LEGACY_DIR
exec "$py" -m pytest -q -p no:cacheprovider tests "$@"
