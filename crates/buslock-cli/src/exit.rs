//! The exit codes of `buslock`, as documented in `docs/CLI.md`.

/// Success; for `state`: the lock is free.
pub const OK: u8 = 0;
/// `state`: the lock is held by a live process. `doctor`: problems found.
/// `demo`: the demo saw an overlap or no recovery.
pub const HELD: u8 = 1;
/// Bad command-line arguments (clap's own code).
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// The lock or its directory could not be used (missing, permissions,
/// corrupt or incompatible file, I/O error).
pub const LOCK_ERROR: u8 = 3;
/// `--timeout` expired before the lock could be taken.
pub const TIMEOUT: u8 = 4;
/// `run`: the command could not be executed (found but not runnable).
pub const CANNOT_EXECUTE: u8 = 126;
/// `run`: the command was not found.
pub const NOT_FOUND: u8 = 127;
/// Added to a signal number: `128 + SIGINT` = 130 when a wait was
/// interrupted by Ctrl-C, 143 for `SIGTERM`; also for a `run` child killed
/// by a signal.
pub const SIGNAL_BASE: u8 = 128;
