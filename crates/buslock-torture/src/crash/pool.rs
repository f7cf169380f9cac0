//! The worker processes of a crash run: started by re-running this binary
//! with the hidden `__crash-worker` subcommand, replaced when killed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// One running worker.
pub struct Worker {
    /// The process.
    pub child: Child,
    /// Its pid (and the tid that takes the lock: workers are single-threaded).
    pub pid: u32,
    /// Its log.
    pub log: PathBuf,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

/// The set of live workers.
pub struct Pool {
    exe: PathBuf,
    dir: PathBuf,
    logs: PathBuf,
    hold_us: u64,
    pause_us: u64,
    next_id: u64,
    /// The live workers.
    pub workers: Vec<Worker>,
    /// Odd-numbered workers wait in interruptible slices.
    pub sliced: bool,
    /// Workers mix in ABBA pairs on a second lock.
    pub abba: bool,
}

impl Pool {
    /// An empty pool whose workers use run directory `dir` and write their
    /// logs to `logs`.
    pub fn new(dir: &Path, logs: &Path, hold_us: u64, pause_us: u64) -> Result<Pool, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to start workers: {e}"))?;
        Ok(Pool {
            exe,
            dir: dir.to_path_buf(),
            logs: logs.to_path_buf(),
            hold_us,
            pause_us,
            next_id: 0,
            workers: Vec::new(),
            sliced: false,
            abba: false,
        })
    }

    /// Start one more worker.
    pub fn spawn(&mut self) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        let log = self.logs.join(format!("w{id:06}.log"));
        let stderr = self.logs.join(format!("w{id:06}.err"));
        let err_file = File::create(&stderr)
            .map_err(|e| format!("cannot create '{}': {e}", stderr.display()))?;
        let mut cmd = Command::new(&self.exe);
        if self.sliced && id % 2 == 1 {
            cmd.arg("__crash-worker").arg("--sliced");
        } else {
            cmd.arg("__crash-worker");
        }
        if self.abba {
            cmd.arg("--abba");
        }
        let child = cmd
            .arg("--dir")
            .arg(&self.dir)
            .arg("--log")
            .arg(&log)
            .arg("--hold-us")
            .arg(self.hold_us.to_string())
            .arg("--pause-us")
            .arg(self.pause_us.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot start worker '{}': {e}", self.exe.display()))?;
        self.workers.push(Worker {
            pid: child.id(),
            child,
            log,
            stderr,
        });
        Ok(())
    }

    /// Remove and return the workers that exited by themselves.
    pub fn take_exited(&mut self) -> Vec<(Worker, ExitStatus)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.workers.len() {
            match self.workers[i].child.try_wait() {
                Ok(Some(status)) => out.push((self.workers.swap_remove(i), status)),
                _ => i += 1,
            }
        }
        out
    }

    /// Index of the worker with this pid.
    pub fn find(&self, pid: u32) -> Option<usize> {
        self.workers.iter().position(|w| w.pid == pid)
    }
}

impl Drop for Pool {
    /// A harness that returns early (an error) must not leave workers
    /// running: kill and reap whatever is left.
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}

/// What a worker wrote to stderr, for error reports.
pub fn stderr_of(worker: &Worker) -> String {
    std::fs::read_to_string(&worker.stderr)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
