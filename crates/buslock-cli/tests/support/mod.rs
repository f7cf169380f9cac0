//! Running the real `buslock` binary under watchdogs.
//!
//! Line channels, watchdog waits and signals live once in the unpublished
//! `buslock-test-support` crate; this module keeps what is the CLI's: the
//! binary, its environment, and commands whose stdout and stderr are both
//! collected.

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use buslock_test_support as shared;
use rustix::process::Signal;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_buslock");

/// Every wait in these tests gives up (and fails) after this long.
pub use buslock_test_support::WATCHDOG;

/// A `buslock` command using lock directory `dir` through `BUSLOCK_DIR`.
pub fn buslock(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("BUSLOCK_DIR", dir).env("NO_COLOR", "1");
    c
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// The exit code (panics if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A running command whose output lines can be awaited.
pub struct Proc {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Proc {
    /// Start `cmd` with piped output.
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn buslock");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (lines, reader) = shared::read_lines(stdout);
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for an output line satisfying `pred`; fail after [`WATCHDOG`].
    pub fn expect_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + WATCHDOG;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    // Its stdout closed: it exited. Say how and what it said.
                    let status = wait_with_watchdog(&mut self.child);
                    let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
                    panic!(
                        "no expected line: it ended ({status}); saw {:?}; stderr: {:?}",
                        self.seen,
                        stderr.unwrap_or_default()
                    )
                }
                Err(e) => panic!("no expected line ({e}); saw {:?}", self.seen),
            }
        }
    }

    /// Send `sig`.
    pub fn signal(&self, sig: Signal) {
        shared::signal(&self.child, sig);
    }

    /// Wait for the end (killing it and failing after [`WATCHDOG`]) and
    /// collect all output.
    pub fn finish(mut self) -> Output {
        let status = wait_with_watchdog(&mut self.child);
        self.reader.take().unwrap().join().unwrap();
        let mut stdout: Vec<String> = std::mem::take(&mut self.seen);
        stdout.extend(self.lines.try_iter());
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Output {
            status,
            stdout: stdout.iter().map(|l| format!("{l}\n")).collect(),
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        shared::child::kill_and_reap(&mut self.child);
    }
}

/// Wait for `child`, killing it and failing the test after [`WATCHDOG`].
pub fn wait_with_watchdog(child: &mut Child) -> ExitStatus {
    shared::wait_with_watchdog(child, WATCHDOG)
}

/// Run `cmd` to completion under the watchdog.
pub fn run(cmd: Command) -> Output {
    Proc::spawn(cmd).finish()
}

/// Poll `f` every 10 ms until it returns `Some`; fail after [`WATCHDOG`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + WATCHDOG;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Why root cannot run the `buslock` binary as `nobody` (uid 65534) here,
/// if it cannot: not root, or a user namespace that maps only uid 0 (the
/// ARM tests under qemu run in one), where setresuid fails and root may
/// still write the files it owns.
pub fn cannot_run_as_nobody() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root".into());
    }
    cannot_run_as(65534).map(|why| format!("root cannot switch to uid 65534 here ({why})"))
}

/// Why the `buslock` binary cannot run as user and group `id` (`setpriv`,
/// as root), if it cannot: the error `setpriv` or the binary printed.
pub fn cannot_run_as(id: u32) -> Option<String> {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            BIN,
            "--version",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        Err(e) => Some(format!("setpriv: {e}")),
    }
}
