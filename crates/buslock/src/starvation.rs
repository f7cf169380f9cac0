//! Keeping interruptible waiters from starving.
//!
//! `FUTEX_LOCK_PI` cannot be interrupted by a signal, so an interruptible
//! wait (Ctrl-C in the command and in Python) waits in slices of
//! [`INTERRUPT_SLICE`](crate::INTERRUPT_SLICE) and queues again after each.
//! Queueing again puts it behind every waiter that arrived meanwhile: when
//! the waiters ahead of it need longer than a slice, it never reaches the
//! front.
//!
//! So a sliced waiter that has waited [`STARVING_AFTER`] asks, in the lock
//! file's header, for newer acquirers to step aside: an acquirer that took
//! the lock but arrived after the request's waiter releases it at once,
//! without using it, and waits until the request is gone. The kernel hands
//! the lock down its queue until the starving waiter gets it, then the
//! request is withdrawn. One request at a time; a request whose waiter
//! stopped renewing it (it died) for [`STALE_AFTER`] is cleared by whoever
//! sees it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clock;
use crate::raw::layout::Header;

/// How long a sliced waiter waits before asking others to step aside.
pub const STARVING_AFTER: Duration = Duration::from_millis(100);

/// How long a request lives without renewal (renewed every slice).
pub const STALE_AFTER: Duration = Duration::from_millis(150);

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// A sliced waiter of thread `tid`, waiting since `since_ns`, at `now_ns`:
/// ask for (or renew) the right of way once it has waited long enough.
pub(crate) fn request(hdr: &Header, tid: u32, since_ns: u64, now_ns: u64) {
    if now_ns.saturating_sub(since_ns) < ns(STARVING_AFTER) {
        return;
    }
    let holder = hdr.starving_tid.load(Ordering::Acquire);
    if holder == tid {
        hdr.starving_beat_ns.store(now_ns, Ordering::Release);
        return;
    }
    if holder != 0 {
        return; // someone else's turn first
    }
    // Fill in the request before publishing it, so that nobody sees a new
    // tid with an old (stale-looking) beat.
    hdr.starving_since_ns.store(since_ns, Ordering::Relaxed);
    hdr.starving_beat_ns.store(now_ns, Ordering::Relaxed);
    let _ = hdr
        .starving_tid
        .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Relaxed);
}

/// Withdraw thread `tid`'s request, if it has one.
pub(crate) fn withdraw(hdr: &Header, tid: u32) {
    let _ = hdr
        .starving_tid
        .compare_exchange(tid, 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// Whether a live request by an older waiter than thread `tid` (waiting
/// since `since_ns`) asks it to step aside. Clears a stale request.
pub(crate) fn must_yield(hdr: &Header, tid: u32, since_ns: u64) -> bool {
    let holder = hdr.starving_tid.load(Ordering::Acquire);
    if holder == 0 || holder == tid {
        return false;
    }
    let beat = hdr.starving_beat_ns.load(Ordering::Acquire);
    if clock::monotonic_ns_syscall().saturating_sub(beat) > ns(STALE_AFTER) {
        let _ = hdr
            .starving_tid
            .compare_exchange(holder, 0, Ordering::AcqRel, Ordering::Relaxed);
        return false;
    }
    hdr.starving_since_ns.load(Ordering::Relaxed) < since_ns
}

/// Whether any request is posted (one load, for the uncontended path).
#[inline]
pub(crate) fn posted(hdr: &Header) -> bool {
    hdr.starving_tid.load(Ordering::Relaxed) != 0
}
