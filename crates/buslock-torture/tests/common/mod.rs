//! Shared pieces of the integration tests: the torture binary, helper
//! processes that report what they do line by line, and watchdogs so that
//! a broken lock fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

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

/// Poll `cond` every few ms; `false` if it never held within `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// A helper process (a hidden subcommand of the torture binary) whose
/// stdout lines arrive on a channel. Killed and reaped on drop.
pub struct Helper {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
}

impl Helper {
    /// Start `buslock-torture <cmd> --dir <dir> --name <name> <extra...>`.
    pub fn start(cmd: &str, dir: &Path, name: &str, extra: &[&str]) -> Helper {
        let mut child = Command::new(BIN)
            .arg(cmd)
            .arg("--dir")
            .arg(dir)
            .arg("--name")
            .arg(name)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start helper");
        let out = child.stdout.take().expect("helper stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Helper { child, lines }
    }

    /// The helper's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, failing the test if none comes within `limit`.
    pub fn line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("watchdog: no line from helper {} ({e})", self.pid()))
    }

    /// Send `sig`.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("signal helper");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether we run as root (some fault tests need it and skip otherwise).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
