#!/usr/bin/env bash
# ARM: builds the whole workspace for the Raspberry Pi targets (64-bit
# aarch64 and 32-bit armv7 hard-float) and runs the library and CLI tests
# under qemu-user. Needs (installed by .ci/run): the rustup targets, Debian's
# gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, libc6-dev-{arm64,armhf}-cross
# and qemu-user(-binfmt). Without them it says so and stops (exit 1 under
# CI, where .ci/run installs them; a skip with the reason elsewhere).
#
# Test binaries spawn other ARM binaries (the CLI, themselves), so the
# kernel must run ARM executables through qemu: the script registers
# Debian's qemu binfmt entries in a binfmt_misc instance of its own, inside
# a private user + mount namespace (Linux 6.7 or later). Nothing is
# registered for the rest of the machine, and nothing is left mounted.
#
# Three things do not work under qemu-user, and a probe program
# (scripts/arm/probe.c) checks each under each emulator at run time: the
# robust list (qemu answers set_robust_list with ENOSYS, so a process that
# dies holding a lock is never marked dead by the emulated kernel) and exec
# errors of posix_spawn (qemu runs its vfork-style clone as a plain fork, so
# a missing program looks like a child that exits 127), and
# prctl(PR_SET_CHILD_SUBREAPER), which `buslock run` uses to keep what a
# command leaves in the background (it warns and goes on). The tests that need
# what is missing are skipped by name, each printed with the reason; on a
# real board (or an emulator that has both) every test runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
declare -A gcc=([aarch64-unknown-linux-gnu]=aarch64-linux-gnu-gcc
  [armv7-unknown-linux-gnueabihf]=arm-linux-gnueabihf-gcc)
declare -A sysroot=([aarch64-unknown-linux-gnu]=/usr/aarch64-linux-gnu
  [armv7-unknown-linux-gnueabihf]=/usr/arm-linux-gnueabihf)
declare -A qemu=([aarch64-unknown-linux-gnu]=aarch64 [armv7-unknown-linux-gnueabihf]=arm)

# Tests that need the kernel to mark a dead holder through the robust list.
needs_robust_list=(
  sigkilled_holder_without_waiters_is_reported_to_the_next_opener
  sigkilled_holder_releases_to_blocked_waiter_who_is_told
  state_after_the_holder_is_sigkilled_shows_the_death
  demo_finishes_with_zero_overlaps_and_a_recovery
  demo_with_one_worker_recovers_through_its_restart
  a_death_found_by_an_acquirer_that_steps_aside_is_reported_once
  the_event_ring_records_reads_writes_and_both_deaths
  a_reader_killed_while_being_handed_the_word_is_not_told_as_a_writer_death
  a_writer_killed_while_waiting_for_readers_is_not_told
)
# Tests that need posix_spawn to report a failed exec.
needs_spawn_errors=(
  run_exits_with_the_command_status
)
# Tests that need `buslock run` to be a child subreaper.
needs_subreaper=(
  run_keeps_the_lock_until_background_workers_exit
  sigterm_reaches_what_the_command_left_running
)

missing=()
for t in "${targets[@]}"; do
  rustup target list --installed 2>/dev/null | grep -qx "$t" || missing+=("rustup target $t")
  command -v "${gcc[$t]}" >/dev/null || missing+=("${gcc[$t]}")
  command -v "qemu-${qemu[$t]}" >/dev/null || missing+=("qemu-${qemu[$t]}")
  [ -e "/usr/lib/binfmt.d/qemu-${qemu[$t]}.conf" ] || missing+=("qemu-user-binfmt")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIPPED arm.sh: missing ${missing[*]} (.ci/run installs them)"
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi

for t in "${targets[@]}"; do
  upper=$(echo "$t" | tr 'a-z-' 'A-Z_')
  export "CARGO_TARGET_${upper}_LINKER=${gcc[$t]}"
done

echo "-- building the workspace for ${targets[*]}"
for t in "${targets[@]}"; do
  cargo build --workspace --all-targets --target "$t" --quiet
done

# Run ARGS in a user + mount namespace with binfmt entries for qemu.
in_emulation_namespace() {
  unshare --user --map-root-user --mount -- bash -c '
    set -e
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    for f in /usr/lib/binfmt.d/qemu-aarch64.conf /usr/lib/binfmt.d/qemu-arm.conf; do
      cat "$f" > /proc/sys/fs/binfmt_misc/register
    done
    exec "$@"' bash "$@"
}
if ! in_emulation_namespace true 2>/tmp/buslock-arm-ns.$$; then
  why=$(tr '\n' ' ' </tmp/buslock-arm-ns.$$)
  rm -f /tmp/buslock-arm-ns.$$
  echo "SKIPPED ARM test runs: cannot register qemu in a private binfmt_misc ($why); the builds above passed"
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
rm -f /tmp/buslock-arm-ns.$$

probe_dir=target/arm-probe
mkdir -p "$probe_dir"
for t in "${targets[@]}"; do
  export QEMU_LD_PREFIX="${sysroot[$t]}"
  "${gcc[$t]}" -O -o "$probe_dir/probe-$t" scripts/arm/probe.c
  probe=$(in_emulation_namespace "$probe_dir/probe-$t")
  robust=$(sed -n 's/^robust-list: //p' <<<"$probe")
  spawn=$(sed -n 's/^spawn-errors: //p' <<<"$probe")
  subreaper=$(sed -n 's/^subreaper: //p' <<<"$probe")
  skips=()
  if [ "$robust" != ok ]; then
    for name in "${needs_robust_list[@]}"; do
      echo "SKIPPED on $t: $name: needs the kernel's robust list ($robust)"
      skips+=(--skip "$name")
    done
  fi
  if [ "$spawn" != ok ]; then
    for name in "${needs_spawn_errors[@]}"; do
      echo "SKIPPED on $t: $name: needs exec errors reported by posix_spawn ($spawn)"
      skips+=(--skip "$name")
    done
  fi
  if [ "$subreaper" != ok ]; then
    for name in "${needs_subreaper[@]}"; do
      echo "SKIPPED on $t: $name: needs a child subreaper ($subreaper)"
      skips+=(--skip "$name")
    done
  fi
  echo "-- testing buslock and buslock-cli on $t under qemu-${qemu[$t]}"
  in_emulation_namespace cargo test -p buslock -p buslock-cli --target "$t" \
    --lib --bins --tests -- "${skips[@]}"
done
unset QEMU_LD_PREFIX
