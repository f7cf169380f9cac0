#!/usr/bin/env bash
# Packages: builds them (scripts/package) and checks what can be checked
# here: each .deb's metadata, file list and binary architecture; the amd64
# .deb extracted into a throwaway root, its `buslock --version` and
# `buslock doctor` run from there; its maintainer scripts run twice each
# (idempotent) as root in a private mount namespace with a private copy of
# /etc and a fresh /run (so the group they create never reaches the
# machine); each wheel's tags and glibc needs; and the amd64 wheel
# installed with pip into a fresh virtualenv and used.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/package"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
fail() { echo "FAILED package check: $*" >&2; exit 1; }

archs=(amd64 arm64 armhf)
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v arm-linux-gnueabihf-gcc >/dev/null; then
  echo "SKIPPED arm64/armhf packages: no ARM cross gcc (.ci/run installs it)"
  [ "${CI:-}" = true ] && exit 1
  archs=(amd64)
fi
scripts/package "${archs[@]}"

declare -A elf_machine=([amd64]="x86-64" [arm64]="ARM aarch64" [armhf]="ARM, EABI5")
declare -A wheel_arch=([amd64]=x86_64 [arm64]=aarch64 [armhf]=armv7l)
checks=0
for arch in "${archs[@]}"; do
  deb="$out/buslock_${version}_$arch.deb"
  [ -f "$deb" ] || fail "$deb was not built"
  info=$(dpkg-deb --info "$deb")
  for want in "Package: buslock" "Version: $version" "Architecture: $arch" "Depends: libc6 (>= 2."; do
    grep -qF "$want" <<<"$info" || fail "$deb: control lacks '$want'"
  done
  glibc=$(sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p' <<<"$info")
  [ "$(printf '%s\n2.36\n' "$glibc" | sort -V | tail -1)" = 2.36 ] \
    || fail "$deb needs glibc $glibc, newer than bookworm's 2.36"
  listing=$(dpkg-deb --contents "$deb")
  files=$(awk '{print $NF}' <<<"$listing")
  for want in ./usr/bin/buslock ./usr/share/man/man1/buslock.1.gz ./usr/share/man/man1/buslock-run.1.gz \
    ./usr/share/bash-completion/completions/buslock ./usr/share/zsh/vendor-completions/_buslock \
    ./usr/share/fish/vendor_completions.d/buslock.fish ./usr/lib/tmpfiles.d/buslock.conf \
    ./usr/share/doc/buslock/copyright; do
    grep -qx "$want" <<<"$files" || fail "$deb lacks $want"
  done
  grep -q ' root/root .* \./usr/bin/buslock$' <<<"$listing" || fail "$deb: buslock not root-owned"
  x=$(mktemp -d)
  dpkg-deb -x "$deb" "$x"
  dpkg-deb -e "$deb" "$x/DEBIAN"
  file -b "$x/usr/bin/buslock" | grep -qF "${elf_machine[$arch]}" \
    || fail "$deb: usr/bin/buslock is $(file -b "$x/usr/bin/buslock")"
  for s in postinst postrm; do
    [ -x "$x/DEBIAN/$s" ] || fail "$deb lacks an executable $s"
    sh -n "$x/DEBIAN/$s" || fail "$deb: $s is not valid sh"
  done
  cmp -s "$x/usr/lib/tmpfiles.d/buslock.conf" dist/buslock.conf || fail "$deb: tmpfiles snippet differs"
  if [ "$arch" = amd64 ]; then
    got=$("$x/usr/bin/buslock" --version)
    [ "$got" = "buslock $version" ] || fail "installed buslock --version says '$got'"
    locks=$(mktemp -d)
    BUSLOCK_DIR="$locks" "$x/usr/bin/buslock" run SPI -- true
    doctor=$(BUSLOCK_DIR="$locks" "$x/usr/bin/buslock" doctor) || fail "installed buslock doctor failed: $doctor"
    grep -q "SPI" <<<"$doctor" || fail "installed buslock doctor does not see lock SPI: $doctor"
    zcat "$x/usr/share/man/man1/buslock.1.gz" | grep -q '^\.TH' || fail "buslock.1 is not a man page"
    rm -rf "$locks"
    if [ "$(id -u)" = 0 ] && unshare --mount true 2>/dev/null; then
      # The maintainer scripts, twice each, in a private /etc and /run.
      unshare --mount --propagation private -- sh -e -c '
        x=$1; priv=$(mktemp -d)
        cp -a /etc "$priv/etc"
        mount --bind "$priv/etc" /etc
        mount -t tmpfs -o mode=755 tmpfs /run
        mkdir -m 1777 /run/lock
        ! getent group buslock >/dev/null || { echo "private /etc already has group buslock"; exit 1; }
        for i in 1 2; do "$x/DEBIAN/postinst" configure; done
        getent group buslock >/dev/null || { echo "postinst made no group buslock"; exit 1; }
        [ "$(stat -c "%U:%G %a" /run/lock/buslock)" = "root:buslock 2770" ] \
          || { echo "postinst left /run/lock/buslock $(stat -c "%U:%G %a" /run/lock/buslock)"; exit 1; }
        BUSLOCK_DIR= "$x/usr/bin/buslock" run SPI -- true
        [ "$(stat -c "%G %a" /run/lock/buslock/SPI.lock)" = "buslock 660" ] \
          || { echo "lock file is $(stat -c "%G %a" /run/lock/buslock/SPI.lock)"; exit 1; }
        for i in 1 2; do "$x/DEBIAN/postrm" remove; done
        getent group buslock >/dev/null || { echo "postrm remove dropped the group"; exit 1; }
        for i in 1 2; do "$x/DEBIAN/postrm" purge; done
        ! getent group buslock >/dev/null || { echo "postrm purge kept the group"; exit 1; }
        rm -rf "$priv"' sh "$x" || fail "maintainer scripts (see above)"
      echo "maintainer scripts: group and /run/lock/buslock set up, idempotent, purged (private /etc)"
    else
      echo "SKIPPED maintainer script run: needs root and unshare --mount"
    fi
  fi
  rm -rf "$x"
  checks=$((checks + 1))

  wheel=$(ls "$out"/buslock-"$version"-cp39-abi3-manylinux_2_*_"${wheel_arch[$arch]}".whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || fail "no abi3 manylinux wheel for ${wheel_arch[$arch]}: $(ls "$out")"
  tag=$(basename "$wheel" | sed -n 's/.*manylinux_2_\([0-9]*\)_.*/\1/p')
  [ "$tag" -le 36 ] || fail "$wheel is tagged for glibc 2.$tag, newer than bookworm's 2.36"
  checks=$((checks + 1))
done

# The amd64 wheel in a fresh virtualenv, used from another directory.
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-index "$out"/buslock-"$version"-cp39-abi3-manylinux_2_*_x86_64.whl
locks=$(mktemp -d)
(cd / && "$venv/bin/python" - "$locks" <<'PY'
import sys, buslock
m = buslock.Mutex("SPI", dir=sys.argv[1])
with m:
    assert m.locked()
print("wheel: imported", buslock.__name__, "and took a lock")
PY
) || fail "the amd64 wheel does not work in a fresh virtualenv"
rm -rf "$(dirname "$venv")" "$locks"
checks=$((checks + 1))
echo "$checks passed, 0 failed"
