//! Shared pieces of the integration tests: the torture binary, helper
//! processes that report what they do line by line, and watchdogs so that
//! a broken lock fails a test instead of hanging it.
//!
//! Child processes, line channels and watchdogs live once in the
//! unpublished `buslock-test-support` crate; this module keeps what is the
//! torture binary's: its path and its helper subcommands.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use buslock_test_support as support;

/// The binary under test (harnesses and helper subcommands).
pub const BIN: &str = env!("CARGO_BIN_EXE_buslock-torture");

/// Run `cmd` to completion, killing it and failing the test after `limit`.
pub fn run_with_watchdog(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the torture binary");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("poll child").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "watchdog: {cmd:?} still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run harness `subcommand` of the torture binary with `args` in a fresh
/// temporary lock directory under the watchdog `limit`; print its output
/// (shown when a test fails) and return its status and standard output.
pub fn harness(subcommand: &str, args: &[&str], limit: Duration) -> (Output, String) {
    let dir = tempfile::tempdir().expect("temporary lock directory");
    let out = run_with_watchdog(
        Command::new(BIN)
            .arg(subcommand)
            .args(args)
            .arg("--dir")
            .arg(dir.path()),
        limit,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (out, stdout)
}

/// Poll `cond` every few ms; `false` if it never held within `limit`.
pub fn wait_until(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    support::poll_until(limit, Duration::from_millis(5), cond)
}

/// A helper process (a hidden subcommand of the torture binary) whose
/// stdout lines arrive on a channel. Killed and reaped on drop.
pub struct Helper(support::Helper);

impl Helper {
    /// Start `buslock-torture <cmd> --dir <dir> --name <name> <extra...>`.
    pub fn start(cmd: &str, dir: &Path, name: &str, extra: &[&str]) -> Helper {
        let mut command = Command::new(BIN);
        command
            .arg(cmd)
            .arg("--dir")
            .arg(dir)
            .arg("--name")
            .arg(name)
            .args(extra);
        Helper(support::Helper::start(&mut command))
    }

    /// The helper's pid.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// The next line, failing the test if none comes within `limit`.
    pub fn line(&self, limit: Duration) -> String {
        self.0.line(limit)
    }

    /// Send `sig`.
    pub fn signal(&self, sig: rustix::process::Signal) {
        self.0.signal(sig);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.0.kill_in_place();
    }
}

/// Whether we run as root (some fault tests need it and skip otherwise).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
