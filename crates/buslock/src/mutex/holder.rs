//! Whether the thread named by a lock word is really the lock's holder.
//!
//! The kernel trusts the word: `FUTEX_LOCK_PI` on a word naming a live
//! thread queues the caller behind that thread, whoever it is, until it
//! releases. A word can name a live thread that does not hold the lock when
//! the file was saved or copied while held (a backup restored, a lock
//! directory on persistent storage) and the recorded holder's TID now
//! belongs to an unrelated thread, or when someone wrote the word. Such a
//! lock would be stuck forever: its "holder" never releases it.
//!
//! So before queueing in the kernel, a waiter checks the word against the
//! owner record (which the holder writes right after taking the word):
//!
//! - the word's TID is free, or names no existing thread: the kernel
//!   decides (it hands a free word over, and refuses a vanished owner with
//!   `ESRCH`, which the lock word takes over as an owner death);
//! - the word's TID is the recorded holder, and that thread exists in the
//!   recorded process, or the record is free (the last holder released and
//!   the new one has not written its record yet): queue in the kernel;
//! - otherwise the holder is *unconfirmed*: either a new holder is between
//!   taking the word and writing its record (microseconds, unless it is
//!   stopped right there), or the word is stale. The waiter then looks
//!   again [`QUICK_LOOKS`] times at once and then polls every [`POLL`],
//!   without queueing in the kernel (so that no kernel state is attached
//!   to the wrong thread). Once the same word has been
//!   unconfirmed for [`LOOK_AFTER`], it looks at the named thread's
//!   process: if that process does not map this lock file, it cannot have
//!   taken the word, and the word is taken over at once as from a dead
//!   holder. If it maps it, the waiter keeps waiting (a holder stopped
//!   between taking the word and writing its record does hold it). If its
//!   maps cannot be read (another user's process), the word is taken over
//!   once it has been unconfirmed for [`STALE_AFTER`].
//!
//! The last rule is the one judgement call: a holder of another user,
//! stopped (or starved of CPU) for [`STALE_AFTER`] exactly between its
//! compare-and-swap and its owner-record write, would lose the lock. That
//! window is a handful of instructions; the rule is documented in
//! RELIABILITY.md.

use std::time::Duration;

use crate::identity;
use crate::lockfile::LockFile;
use crate::raw::layout::OwnerRecord;
use crate::raw::mutex::FUTEX_TID_MASK;

/// How many times a waiter looks again at once (yielding the CPU) before
/// it polls an unconfirmed holder every [`POLL`].
pub(super) const QUICK_LOOKS: u32 = 20;
/// How often a waiter polls an unconfirmed holder.
pub(super) const POLL: Duration = Duration::from_millis(2);
/// How long a word stays unconfirmed before the waiter reads its thread's
/// memory map.
pub(super) const LOOK_AFTER: Duration = Duration::from_millis(20);
/// How long a word stays unconfirmed, with a memory map that cannot be
/// read, before it is taken over.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(1);

/// What a waiter concludes about the word's holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Let the kernel decide (queue, take a free word, or `ESRCH`).
    Kernel,
    /// The word names a live thread that is not (yet) the recorded holder.
    Unconfirmed,
}

/// Judge `word` against the owner record (`now` reads the word again). No allocation, at most two
/// `stat`s of `/proc` (this runs before every contended wait).
///
/// A holder writes its record right after it takes the word, and clears
/// the record's TID right before it releases, so a legitimate word and
/// record disagree only in a short window: the record is free (the last
/// holder released) or names a holder that died (the kernel handed the
/// word on), while the new holder has not written its record yet. The first
/// window is the common one under contention and goes to the kernel; the
/// second only follows a death and is polled briefly.
pub(super) fn judge(rec: &OwnerRecord, word: u32, now: impl Fn() -> u32) -> Verdict {
    use std::sync::atomic::Ordering;
    let tid = word & FUTEX_TID_MASK;
    if tid == 0 {
        return Verdict::Kernel;
    }
    let rec_tid = rec.tid.load(Ordering::Acquire);
    let rec_pid = rec.pid.load(Ordering::Relaxed);
    if now() & FUTEX_TID_MASK != tid {
        // The word moved on while the record was read: a handover, not a
        // stale word. Let the kernel decide (it queues behind the new one).
        return Verdict::Kernel;
    }
    if rec_tid == 0 {
        // Released, then taken by a holder not yet recorded.
        return Verdict::Kernel;
    }
    if rec_tid == tid && identity::thread_of(rec_pid, tid) {
        return Verdict::Kernel;
    }
    if !identity::thread_exists(tid) {
        return Verdict::Kernel; // ESRCH: taken over by the lock word
    }
    // A live thread that is not the recorded holder: the recorded holder's
    // TID now names another process's thread, or the recorded holder died
    // and the word was handed on (a window), or the word was written.
    Verdict::Unconfirmed
}

/// For a word unconfirmed for [`LOOK_AFTER`]: `Some(true)` if the named
/// thread's process cannot have taken it (it does not map `file`),
/// `Some(false)` if it might have, `None` if that cannot be told.
pub(super) fn cannot_hold(file: &LockFile, word: u32) -> Option<bool> {
    let st = rustix::fs::fstat(file.map.fd()).ok()?;
    let tgid = identity::thread_group(word & FUTEX_TID_MASK)?;
    let maps = identity::maps_file(tgid, st.st_dev, st.st_ino)?;
    Some(!maps)
}
