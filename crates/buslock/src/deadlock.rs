//! Naming the cycle behind a deadlock.
//!
//! When a wait would close a cycle (this thread waits for a lock whose
//! holder waits, perhaps through more locks, for a lock this thread
//! holds), the kernel's priority-inheritance chain walk refuses the wait
//! with `EDEADLK`. The kernel does not say who is in the cycle; buslock
//! finds out from what every lock file in the same directory records: the
//! holder of each lock (its owner record) and the threads waiting for it
//! (its waiters table). Starting at the lock this thread asked for, it
//! follows "held by thread T" and "T waits for lock L" back to this
//! thread.
//!
//! The records are read without taking any lock, while the other threads
//! of the cycle go on; what they show is a snapshot. A cycle through locks
//! outside the directory (another directory, or glibc PI mutexes of the
//! programs) cannot be followed to its end: the message says so.

use crate::error::Error;
use crate::identity;
use crate::lockfile::{LockDir, LockFile, OpenMode};
use crate::owner;
use crate::waiters::{self, Scan};

/// Longest cycle followed (a cycle is rarely longer than three).
const MAX_STEPS: usize = 64;

/// One lock of the directory, as recorded.
struct Seen {
    name: String,
    holder: Option<(u32, u32, String)>,
    waiters: Vec<(u32, u32)>,
}

/// Text from a lock file, escaped for people.
fn esc(s: &str) -> String {
    crate::escape(s).into_owned()
}

/// What the records say about a wait the kernel refused with `EDEADLK`.
pub(crate) enum Cycle {
    /// The cycle comes back to this thread (or cannot be followed to its
    /// end while this thread holds locks): this thread's deadlock, with
    /// its description.
    Mine(String),
    /// This thread holds no lock, or the chain from the lock leads into a
    /// cycle of other threads: the kernel refused a waiter that queued
    /// behind their deadlock, which one of them is about to break.
    Others,
}

/// Find out whose deadlock the kernel refused, for a wait for lock `name`
/// in `dir`.
pub(crate) fn find(dir: &LockDir, name: &str) -> Cycle {
    if crate::raw::robust::holds_nothing() {
        // A thread that holds no lock cannot be part of a cycle.
        return Cycle::Others;
    }
    match describe(dir, name) {
        (text, Closes::Me | Closes::Unknown) => Cycle::Mine(text),
        (_, Closes::Others) => Cycle::Others,
    }
}

/// The [`Error::Deadlock`] for a wait for lock `name` in `dir` that the
/// kernel refused with `EDEADLK` (also when no waiting is involved).
pub(crate) fn error(dir: &LockDir, name: &str) -> Error {
    Error::Deadlock {
        name: name.to_owned(),
        cycle: describe(dir, name).0,
    }
}

fn snapshot(dir: &LockDir) -> Vec<Seen> {
    let names = dir.lock_names().unwrap_or_default();
    names
        .into_iter()
        .filter_map(|n| {
            let file = LockFile::open(dir, &n, OpenMode::Existing).ok()?;
            let page = file.map.page();
            let holder = owner::read(&page.owner).map(|o| (o.pid, o.tid, o.program));
            let waiters = waiters::scan(&page.waiters, Scan::Live)
                .into_iter()
                .map(|w| (w.pid, w.tid))
                .collect();
            Some(Seen {
                name: n,
                holder,
                waiters,
            })
        })
        .collect()
}

/// Where following the chain ended.
enum Closes {
    /// Back at this thread.
    Me,
    /// In a loop of other threads.
    Others,
    /// It could not be followed.
    Unknown,
}

/// "lock 'B' is held by pid 2 tid 2 (b.py), which waits for lock 'A'; lock
/// 'A' is held by this thread (pid 1 tid 1, a.py)".
fn describe(dir: &LockDir, name: &str) -> (String, Closes) {
    let me = identity::me();
    let locks = snapshot(dir);
    let mut parts = Vec::new();
    let mut visited: Vec<String> = Vec::new();
    let mut current = name.to_owned();
    let mut closes = Closes::Unknown;
    for _ in 0..MAX_STEPS {
        if visited.contains(&current) {
            parts.push(format!(
                "which closes a cycle of other threads at lock '{}'",
                esc(&current)
            ));
            closes = Closes::Others;
            break;
        }
        visited.push(current.clone());
        let Some(lock) = locks.iter().find(|l| l.name == current) else {
            parts.push(format!("lock '{}' could not be read", esc(&current)));
            break;
        };
        let Some((pid, tid, program)) = &lock.holder else {
            parts.push(format!(
                "lock '{}' shows no holder (it changed hands meanwhile)",
                esc(&lock.name)
            ));
            break;
        };
        if *pid == me.pid && *tid == me.tid {
            parts.push(format!(
                "lock '{}' is held by this thread (pid {pid} tid {tid}, {})",
                esc(&lock.name),
                esc(program)
            ));
            closes = Closes::Me;
            break;
        }
        let next = locks
            .iter()
            .find(|l| l.waiters.iter().any(|w| w == &(*pid, *tid)));
        match next {
            Some(next) => {
                parts.push(format!(
                    "lock '{}' is held by {}, which waits for lock '{}'",
                    esc(&lock.name),
                    owner::thread(*pid, *tid, program),
                    esc(&next.name)
                ));
                current = next.name.clone();
            }
            None => {
                parts.push(format!(
                    "lock '{}' is held by {}, which waits for a lock \
                     outside this lock directory (or a lock not listed in its waiters table)",
                    esc(&lock.name),
                    owner::thread(*pid, *tid, program)
                ));
                break;
            }
        }
    }
    (parts.join("; "), closes)
}
