//! [`ReadGuard`] and [`WriteGuard`]: a read or write hold of an
//! [`RwLock`], released on drop.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{RwLock, held, readers};
use crate::identity::{self, Me};
use crate::raw::layout::ident;

/// A read (shared) hold of an [`RwLock`]; released when dropped. `!Send`:
/// the thread that took it releases it.
#[must_use = "if unused the lock is released at once"]
pub struct ReadGuard<'a> {
    lock: &'a RwLock,
    slot: usize,
    id: u64,
    died: bool,
    waited_ns: u64,
    _not_send: PhantomData<*const ()>,
}

impl<'a> ReadGuard<'a> {
    pub(super) fn new(lock: &'a RwLock, slot: usize, me: &Me, died: bool, waited_ns: u64) -> Self {
        ReadGuard {
            lock,
            slot,
            id: ident(me.pid, me.tid),
            died,
            waited_ns,
            _not_send: PhantomData,
        }
    }

    /// Whether a writer died holding the lock (or ended abandoned) before
    /// this hold, and this holder is the one told: what it reads may be
    /// half written. Tell whoever can repair it.
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }

    /// How long the acquisition waited.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns)
    }

    /// The lock this guard holds.
    pub fn rwlock(guard: &Self) -> &'a RwLock {
        guard.lock
    }
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let me = identity::me();
        if ident(me.pid, me.tid) != self.id {
            // A fork()ed child dropping its copy: the parent reads.
            return;
        }
        readers::release(self.lock.page(), self.slot, self.id);
        held::clear(self.lock.key);
        self.lock.lockdep.released();
    }
}

impl fmt::Debug for ReadGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadGuard")
            .field("lock", &self.lock.name)
            .field("previous_owner_died", &self.died)
            .finish()
    }
}

/// A write (exclusive) hold of an [`RwLock`]; released when dropped.
/// `!Send`: the thread that took it releases it.
#[must_use = "if unused the lock is released at once"]
pub struct WriteGuard<'a> {
    lock: &'a RwLock,
    tid: u32,
    died: bool,
    waited_ns: u64,
    _not_send: PhantomData<*const ()>,
}

impl<'a> WriteGuard<'a> {
    pub(super) fn new(lock: &'a RwLock, tid: u32, died: bool, waited_ns: u64) -> Self {
        WriteGuard {
            lock,
            tid,
            died,
            waited_ns,
            _not_send: PhantomData,
        }
    }

    /// Whether the previous writer died holding the lock (or ended
    /// abandoned): what it protects may be half written; repair it.
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }

    /// How long the acquisition waited (for the word and for readers to
    /// drain).
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns)
    }

    /// The lock this guard holds.
    pub fn rwlock(guard: &Self) -> &'a RwLock {
        guard.lock
    }

    /// Turn this write hold into a read hold with no moment in between
    /// where another writer could get in: the writer takes a reader slot
    /// while it still holds the writers' word, and only then hands the
    /// word on (to queued readers, who read with it, or to a queued writer,
    /// who waits for them).
    pub fn downgrade(self) -> ReadGuard<'a> {
        let lock = self.lock;
        let died = self.died;
        let me = lock.me();
        let page = lock.page();
        let slot = loop {
            if let Some(n) = readers::claim(page, &me, crate::clock::now_ns()) {
                break n;
            }
            // Only readers backing out of the fast path (they saw the word
            // held) or dead ones can fill the table now.
            readers::reap(page);
            std::thread::yield_now();
        };
        core::mem::forget(self);
        lock.exit_write(false, &me);
        page.rw.read_acquisitions.fetch_add(1, Ordering::Relaxed);
        held::set(lock.key, held::Hold::Read);
        ReadGuard::new(lock, slot, &me, died, 0)
    }
}

impl Drop for WriteGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if identity::tid() != self.tid {
            // A fork()ed child dropping its copy: the parent writes.
            return;
        }
        // A guard dropped by unwinding: the writer stopped in the middle of
        // its work, like one that died; the next holder is told.
        let me = self.lock.me();
        self.lock.exit_write(std::thread::panicking(), &me);
        self.lock.lockdep.released();
    }
}

impl fmt::Debug for WriteGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteGuard")
            .field("lock", &self.lock.name)
            .field("previous_owner_died", &self.died)
            .finish()
    }
}
