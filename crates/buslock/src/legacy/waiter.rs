//! A waiter thread that blocks in the kernel (`F_OFD_SETLKW`) for the
//! legacy record lock on behalf of a wait with a deadline or an interrupt
//! check, so that such a wait does not poll either.
//!
//! The kernel cannot bound an `F_OFD_SETLKW` with a deadline; ending it
//! early takes a signal (`EINTR`), which a library cannot send to its
//! caller's thread without installing a handler of its own (a
//! `timer_create(SIGEV_THREAD_ID)` timer would need one, and would fight
//! the application's, e.g. Python's, use of that signal). So the blocking
//! call runs in a short-lived thread of its own, on its own open file
//! description of the same file (record locks taken with `F_OFD_*` belong
//! to the open file description), and the caller waits on a condition
//! variable with its deadline, asking its interrupt check between slices.
//!
//! When the lock is granted in time, the waiter hands its descriptor (now
//! holding the lock) to the caller, which keeps it until it releases the
//! legacy lock. When the caller gives up, the waiter is marked abandoned:
//! once the kernel grants it the lock, it releases it at once (explicitly,
//! so that a descriptor duplicated by a `fork` elsewhere cannot keep it)
//! and closes its descriptor. A grant that arrives just as the caller gives
//! up is released by the caller. An abandoned waiter still in the kernel's
//! queue is taken up again by the next wait of the same handle, so a loop of
//! short timed waits keeps at most one waiter thread per handle.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use rustix::fs::{CWD, Mode, OFlags, openat};

use crate::raw::sys::{ofd_lock, ofd_unlock};

/// Where a waiter is.
#[derive(Debug)]
enum Phase {
    /// Blocked in the kernel; `abandoned`: nobody wants the lock any more.
    Waiting { abandoned: bool },
    /// The lock is held through this descriptor, for the caller to take.
    Granted(OwnedFd),
    /// Finished: the grant was taken or released.
    Done,
    /// The kernel refused the wait.
    Failed(std::io::Error),
}

/// The state shared by a waiter thread and the caller it waits for.
#[derive(Debug)]
pub(super) struct Waiter {
    phase: Mutex<Phase>,
    changed: Condvar,
}

/// What [`Waiter::wait_until`] saw.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The lock, held through this descriptor.
    Granted(OwnedFd),
    /// The time given passed first.
    TimedOut,
    /// The kernel refused the wait.
    Failed(std::io::Error),
}

/// Release the lock held through `fd` and close it.
pub(super) fn release(fd: OwnedFd) {
    // Unlocking a lock held through a valid descriptor does not fail;
    // closing the last descriptor of the description would drop it anyway.
    let _ = ofd_unlock(fd.as_fd());
    drop(fd);
}

/// A new open file description of the file open as `fd` (at `path`):
/// through `/proc/self/fd` (the very file, even if it was renamed), else by
/// path, never through a symbolic link; either way checked to be the same
/// file.
fn reopen(fd: &OwnedFd, path: &std::path::Path) -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let new = match openat(CWD, proc_path.as_str(), flags, Mode::empty()) {
        Ok(new) => new,
        Err(_) => openat(CWD, path, flags | OFlags::NOFOLLOW, Mode::empty())?,
    };
    let (a, b) = (rustix::fs::fstat(fd)?, rustix::fs::fstat(&new)?);
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        return Err(std::io::Error::other(
            "the legacy lock file was replaced at its path while open; reopen the lock",
        ));
    }
    Ok(new)
}

impl Waiter {
    /// Start a waiter thread for the lock on the file open as `fd` (at
    /// `path`).
    pub(super) fn start(fd: &OwnedFd, path: &std::path::Path) -> std::io::Result<Arc<Waiter>> {
        let own = reopen(fd, path)?;
        let waiter = Arc::new(Waiter {
            phase: Mutex::new(Phase::Waiting { abandoned: false }),
            changed: Condvar::new(),
        });
        let shared = Arc::clone(&waiter);
        std::thread::Builder::new()
            .name("buslock-legacy".into())
            .spawn(move || shared.run(own))?;
        Ok(waiter)
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The waiter thread: block in the kernel, then hand the lock over, or
    /// release it at once when nobody wants it any more.
    fn run(&self, fd: OwnedFd) {
        let result = loop {
            match ofd_lock(fd.as_fd(), true) {
                Ok(_) => break Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        let mut phase = self.phase();
        *phase = match (result, &*phase) {
            (Ok(()), Phase::Waiting { abandoned: false }) => Phase::Granted(fd),
            (Ok(()), _) => {
                release(fd);
                Phase::Done
            }
            (Err(e), _) => Phase::Failed(e),
        };
        drop(phase);
        self.changed.notify_all();
    }

    /// Take up an abandoned waiter again; false when it already finished.
    pub(super) fn adopt(&self) -> bool {
        let mut phase = self.phase();
        match &mut *phase {
            Phase::Waiting { abandoned } => {
                *abandoned = false;
                true
            }
            _ => false,
        }
    }

    /// Wait at most `timeout` for the grant.
    pub(super) fn wait_for(&self, timeout: Duration) -> Outcome {
        let phase = self.phase();
        let (mut phase, _) = self
            .changed
            .wait_timeout_while(phase, timeout, |p| matches!(p, Phase::Waiting { .. }))
            .unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *phase, Phase::Done) {
            Phase::Granted(fd) => Outcome::Granted(fd),
            Phase::Failed(e) => Outcome::Failed(e),
            waiting @ Phase::Waiting { .. } => {
                *phase = waiting;
                Outcome::TimedOut
            }
            Phase::Done => Outcome::Failed(std::io::Error::other("legacy lock waiter finished")),
        }
    }

    /// The caller gives up: release a grant that arrived meanwhile, or
    /// have the waiter release the lock as soon as it gets it. Whether the
    /// waiter is still in the kernel's queue (and can be adopted again).
    pub(super) fn abandon(&self) -> bool {
        let mut phase = self.phase();
        match std::mem::replace(&mut *phase, Phase::Done) {
            Phase::Granted(fd) => {
                release(fd);
                false
            }
            Phase::Waiting { .. } => {
                *phase = Phase::Waiting { abandoned: true };
                true
            }
            Phase::Done | Phase::Failed(_) => false,
        }
    }
}
