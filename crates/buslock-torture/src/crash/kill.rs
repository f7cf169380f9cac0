//! Killing a worker with exact bookkeeping: `SIGSTOP` it at a random moment,
//! read (while it cannot move) whether the kernel's futex word names it as
//! the lock owner and what its log says last, then `SIGKILL` it.
//!
//! Stopping first does not make the kill gentler: the process is frozen
//! wherever it was (waiting in the kernel, in the middle of lock or unlock,
//! writing the owner record or the stats) and dies there. It only makes
//! "was it inside?" a fact instead of a guess.

use std::time::Duration;

use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};

use super::log::{Line, read_all};
use super::pool::Worker;
use crate::clock::mono_ns;
use crate::futex::FutexWord;

/// Longest wait for a stopped worker to report itself stopped.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// One kill, as observed while the victim was stopped.
#[derive(Debug, Clone)]
pub struct Kill {
    /// When the victim was inspected (stopped), monotonic ns.
    pub at: u64,
    /// The futex word named the victim as owner: it died holding the lock.
    pub inside: bool,
    /// The owner record was being written when the victim died.
    pub mid_owner_write: bool,
    /// The victim's last complete log line.
    pub last: Option<Line>,
    /// How long the victim was stopped before it died, ns.
    pub stopped_ns: u64,
}

fn pid_of(raw: u32) -> Result<Pid, String> {
    Pid::from_raw(raw as i32).ok_or_else(|| format!("invalid pid {raw}"))
}

/// Stop, inspect and kill `worker`; reap it.
pub fn stop_inspect_kill(mut worker: Worker, futex: &FutexWord) -> Result<Kill, String> {
    let pid = pid_of(worker.pid)?;
    let sent = mono_ns();
    kill_process(pid, Signal::STOP).map_err(|e| format!("SIGSTOP {}: {e}", worker.pid))?;
    let deadline = sent + STOP_DEADLINE.as_nanos() as u64;
    loop {
        match waitpid(Some(pid), WaitOptions::UNTRACED | WaitOptions::NOHANG) {
            Ok(Some((_, status))) if status.stopped() => break,
            Ok(Some((_, status))) => {
                return Err(format!(
                    "worker {} exited by itself ({status:?}) while being stopped: {}",
                    worker.pid,
                    super::pool::stderr_of(&worker)
                ));
            }
            Ok(None) if mono_ns() < deadline => std::thread::yield_now(),
            Ok(None) => {
                let _ = kill_process(pid, Signal::KILL);
                let _ = worker.child.wait();
                return Err(format!(
                    "worker {} did not stop within {STOP_DEADLINE:?} of SIGSTOP",
                    worker.pid
                ));
            }
            Err(e) => return Err(format!("waitpid {}: {e}", worker.pid)),
        }
    }
    let at = mono_ns();
    let owner = futex.owner_tid()?;
    let mid_owner_write = futex.owner_record_mid_write()?;
    let text = std::fs::read_to_string(&worker.log).unwrap_or_default();
    let last = read_all(&text).pop();
    kill_process(pid, Signal::KILL).map_err(|e| format!("SIGKILL {}: {e}", worker.pid))?;
    let stopped_ns = mono_ns().saturating_sub(sent);
    worker
        .child
        .wait()
        .map_err(|e| format!("cannot reap worker {}: {e}", worker.pid))?;
    Ok(Kill {
        at,
        inside: owner == worker.pid,
        mid_owner_write: owner == worker.pid && mid_owner_write,
        last,
        stopped_ns,
    })
}
