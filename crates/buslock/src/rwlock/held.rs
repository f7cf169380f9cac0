//! What the calling thread holds of each readers-writer lock, so that a
//! second read (which, with writers preferred, could deadlock behind a
//! waiting writer) or a read-then-write (a silent upgrade, which deadlocks
//! against itself) is an error, not a hang.

use std::cell::RefCell;

/// How a thread holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    Read,
    Write,
}

/// A lock file's identity: (device, inode).
pub(super) type Key = (u64, u64);

thread_local! {
    /// (lock, thread id when taken, how): the thread id tells a `fork`ed
    /// child's inherited entries (its thread is not the holder) from its
    /// own.
    static HELD: RefCell<Vec<(Key, u32, Hold)>> = const { RefCell::new(Vec::new()) };
}

/// How the calling thread holds lock `key`, if it does.
#[inline]
pub(super) fn get(key: Key) -> Option<Hold> {
    let tid = crate::identity::tid();
    HELD.with(|h| {
        h.borrow()
            .iter()
            .find(|(k, t, _)| *k == key && *t == tid)
            .map(|(_, _, m)| *m)
    })
}

/// Record that the calling thread now holds `key` as `hold`.
#[inline]
pub(super) fn set(key: Key, hold: Hold) {
    let tid = crate::identity::tid();
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.retain(|(k, t, _)| *k != key || *t == tid);
        match h.iter_mut().find(|(k, _, _)| *k == key) {
            Some(entry) => entry.2 = hold,
            None => h.push((key, tid, hold)),
        }
    });
}

/// Record that the calling thread no longer holds `key`.
#[inline]
pub(super) fn clear(key: Key) {
    // During thread teardown the table may be gone already: nothing to do.
    let _ = HELD.try_with(|h| h.borrow_mut().retain(|(k, _, _)| *k != key));
}
