//! Test support: re-executing the test binary as helper processes, and a
//! shared "bus" file that checks exclusion across processes and threads.

#![allow(dead_code)] // each test binary uses a different part

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Environment variable that turns a test binary into a helper process.
pub const ROLE_ENV: &str = "BUSLOCK_TEST_ROLE";

/// Longest any step of a test may wait before the test fails (a watchdog,
/// not a timing claim).
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// If this process was started as a helper, run `roles(role)` and exit with
/// its status; otherwise return.
pub fn run_helper_if_requested(roles: fn(&str) -> i32) {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let code = roles(&role);
        std::process::exit(code);
    }
}

/// A helper process with its stdout lines arriving on a channel.
pub struct Helper {
    pub child: Child,
    lines: Receiver<String>,
}

impl Helper {
    /// Start this test binary as helper `role` with lock directory `dir`.
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn helper");
        let out = child.stdout.take().expect("piped stdout");
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for a line starting with `@tag`; returns the rest of it.
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

    /// Wait for the helper to exit (killing it after the watchdog).
    pub fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("helper {} did not exit within {WATCHDOG:?}", self.pid());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL the helper and reap it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill helper");
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `cond` until it holds, failing the test after the watchdog.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A "bus" shared by every process through a small file: the holder checks
/// and sets an inside flag and increments a counter, so overlapping holders
/// and lost updates show.
pub struct Bus {
    file: File,
}

const INSIDE: u64 = 0;
const COUNTER: u64 = 8;
const VIOLATIONS: u64 = 16;

impl Bus {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("bus.dat")
    }

    pub fn create(dir: &Path) -> Bus {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(Self::path(dir))
            .expect("create bus file");
        file.write_all_at(&[0u8; 24], 0).expect("init bus file");
        Bus { file }
    }

    pub fn open(dir: &Path) -> Bus {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(Self::path(dir))
            .expect("open bus file");
        Bus { file }
    }

    fn get(&self, at: u64) -> u64 {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, at).expect("read bus");
        u64::from_le_bytes(b)
    }

    fn set(&self, at: u64, v: u64) {
        self.file
            .write_all_at(&v.to_le_bytes(), at)
            .expect("write bus");
    }

    /// One transaction; call only while holding the lock.
    pub fn transaction(&self, me: u64) {
        if self.get(INSIDE) != 0 {
            self.set(VIOLATIONS, self.get(VIOLATIONS) + 1);
        }
        self.set(INSIDE, me);
        let c = self.get(COUNTER);
        std::hint::black_box(c);
        if self.get(INSIDE) != me {
            self.set(VIOLATIONS, self.get(VIOLATIONS) + 1);
        }
        self.set(COUNTER, c + 1);
        self.set(INSIDE, 0);
    }

    pub fn counter(&self) -> u64 {
        self.get(COUNTER)
    }

    pub fn violations(&self) -> u64 {
        self.get(VIOLATIONS)
    }
}
