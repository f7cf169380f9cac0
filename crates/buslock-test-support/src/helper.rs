//! Helper processes: the test binary re-executed with a role, or any
//! command, whose stdout lines the test awaits.
//!
//! A helper announces what it did with lines `@tag rest...` on stdout; the
//! test waits for them with [`Helper::expect`]. Every wait is bounded by
//! [`WATCHDOG`], so a broken lock fails the test instead of hanging it.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::child::{kill_and_reap, read_lines, signal, wait_with_watchdog};
use crate::watchdog::WATCHDOG;

/// Environment variable that turns a test binary into a helper process.
pub const ROLE_ENV: &str = "BUSLOCK_TEST_ROLE";

/// If this process was started as a helper, run `roles(role)` and exit with
/// its status; otherwise return.
///
/// Call it first in a test named `helper_entry`, which [`Helper::spawn`]
/// runs alone.
pub fn run_helper_if_requested(roles: fn(&str) -> i32) {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let code = roles(&role);
        std::process::exit(code);
    }
}

/// A helper process with its stdout lines arriving on a channel. Killed
/// and reaped on drop if still running.
pub struct Helper {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
}

impl Helper {
    /// Start this test binary as helper `role` (its test `helper_entry`
    /// alone) with lock directory `dir` (`BUSLOCK_DIR`) and the extra
    /// environment `env`. Its stderr goes to the test's.
    pub fn spawn(role: &str, dir: &Path, env: &[(&str, String)]) -> Helper {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
        cmd.args([
            "--exact",
            "helper_entry",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE_ENV, role)
        .env("BUSLOCK_DIR", dir)
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Helper::start(&mut cmd)
    }

    /// Start `cmd` with stdin from `/dev/null` and stdout piped to the
    /// line channel (stderr as `cmd` says).
    pub fn start(cmd: &mut Command) -> Helper {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn helper {cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let (lines, _reader) = read_lines(out);
        Helper { child, lines }
    }

    /// The helper's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, failing the test if none comes within `limit`.
    ///
    /// # Panics
    ///
    /// If no line comes within `limit` or the helper closed its stdout.
    pub fn line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("watchdog: no line from helper {} ({e})", self.pid()))
    }

    /// Wait for a line starting with `@tag`, skipping others; returns the
    /// rest of it, trimmed.
    ///
    /// # Panics
    ///
    /// If no such line comes within [`WATCHDOG`] (the helper is killed) or
    /// the helper exits first.
    pub fn expect(&mut self, tag: &str) -> String {
        let deadline = Instant::now() + WATCHDOG;
        let prefix = format!("@{tag}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(&prefix) => {
                    return line[prefix.len()..].trim().to_owned();
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("helper {} sent no @{tag} within {WATCHDOG:?}", self.pid());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!("helper {} exited ({status:?}) before @{tag}", self.pid());
                }
            }
        }
    }

    /// Send `sig` to the helper.
    pub fn signal(&self, sig: Signal) {
        signal(&self.child, sig);
    }

    /// Wait for the helper to exit (killing it and failing the test after
    /// [`WATCHDOG`]).
    pub fn wait(mut self) -> ExitStatus {
        wait_with_watchdog(&mut self.child, WATCHDOG)
    }

    /// Wait for the helper to exit and fail the test unless it succeeded.
    pub fn wait_ok(self) {
        let pid = self.pid();
        let status = self.wait();
        assert!(status.success(), "helper {pid} failed: {status}");
    }

    /// SIGKILL the helper and reap it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill helper");
        let _ = self.child.wait();
    }

    /// SIGKILL the helper if it still runs, and reap it, keeping the
    /// handle.
    pub fn kill_in_place(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Helper {
        Helper::start(Command::new("sh").args(["-c", script]))
    }

    #[test]
    fn expect_returns_the_rest_of_the_tagged_line() {
        let mut h = sh("echo noise; echo '@ready 42 x'");
        assert_eq!(h.expect("ready"), "42 x");
        assert!(h.wait().success());
    }

    #[test]
    #[should_panic(expected = "before @ready")]
    fn expect_fails_when_the_helper_exits_without_the_tag() {
        sh("echo '@other'; exit 3").expect("ready");
    }

    #[test]
    #[should_panic(expected = "failed")]
    fn wait_ok_fails_on_a_failed_helper() {
        sh("exit 3").wait_ok();
    }

    #[test]
    fn kill_ends_a_helper_that_would_run_forever() {
        let mut h = sh("echo '@up'; exec sleep 600");
        let pid = h.pid();
        h.expect("up");
        h.kill();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
