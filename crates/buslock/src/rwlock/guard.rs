//! [`ReadGuard`] and [`WriteGuard`]: a read or write hold of an
//! [`RwLock`], released on drop.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use super::{RwLock, held, readers};
use crate::events::{self, HoldRecord, RwEvent, Who};
use crate::identity::{self, Me};
use crate::raw::layout::ident;

/// A read (shared) hold of an [`RwLock`]; released when dropped. `!Send`:
/// the thread that took it releases it.
#[must_use = "if unused the lock is released at once"]
pub struct ReadGuard<'a> {
    lock: &'a RwLock,
    share: Share,
    _not_send: PhantomData<*const ()>,
}

/// A read hold: which slot, whose, and what its release event says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    /// The lock file generation it was taken on (small: a kept hold is
    /// returned inside errors).
    pub generation: u32,
    pub slot: u32,
    pub id: u64,
    pub died: bool,
    /// `CLOCK_MONOTONIC` ns when the share was taken.
    pub acquired_ns: u64,
    pub waited_ns: u64,
}

impl<'a> ReadGuard<'a> {
    pub(super) fn new(
        lock: &'a RwLock,
        generation: usize,
        slot: usize,
        me: &Me,
        died: bool,
        acquired_ns: u64,
        waited_ns: u64,
    ) -> Self {
        ReadGuard {
            lock,
            share: Share {
                generation: generation as u32,
                slot: slot as u32,
                id: ident(me.pid, me.tid),
                died,
                acquired_ns,
                waited_ns,
            },
            _not_send: PhantomData,
        }
    }

    /// The lock file generation this hold is on.
    pub(super) fn generation(&self) -> usize {
        self.share.generation as usize
    }

    /// Whether a writer died holding the lock (or ended abandoned) before
    /// this hold, and this holder is the one told: what it reads may be
    /// half written. Tell whoever can repair it.
    pub fn previous_owner_died(&self) -> bool {
        self.share.died
    }

    /// How long the acquisition waited.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.share.waited_ns)
    }

    /// The lock this guard holds.
    pub fn rwlock(guard: &Self) -> &'a RwLock {
        guard.lock
    }

    /// Keep the hold without the guard (for bindings that cannot keep a
    /// borrowing guard, as Python's `acquire_read()`/`release_read()`):
    /// release it with [`RwLock::release_read`] from the same thread.
    pub fn into_held(self) -> ReadHeld {
        let held = ReadHeld { share: self.share };
        core::mem::forget(self);
        held
    }

    /// Record the hold in the event ring, then give the share back (in
    /// that order: while a writer holds the lock no reader is recording,
    /// so the writer records its own events without a locked instruction).
    #[inline]
    pub(super) fn release(lock: &RwLock, share: &Share) {
        let g = share.generation as usize;
        let page = lock.page_at(g);
        if readers::holds(page, share.slot as usize, share.id) {
            let now = crate::clock::now_ns();
            events::push_shared(
                &page.events,
                &Who {
                    ident: share.id,
                    program: lock.me().program,
                },
                &HoldRecord {
                    acquired_mono_ns: share.acquired_ns,
                    waited_ns: share.waited_ns,
                    held_ns: now.saturating_sub(share.acquired_ns),
                    owner_died: share.died,
                },
                RwEvent {
                    read: true,
                    died: false,
                },
            );
            readers::release(page, share.slot as usize, share.id);
            if lock.chain.release_check_due(g, now) {
                lock.chain.check_after_release(g);
            }
        }
        held::clear(lock.key(g));
        lock.lockdep.released();
    }
}

/// A read hold kept without its guard ([`ReadGuard::into_held`]).
#[derive(Debug)]
pub struct ReadHeld {
    share: Share,
}

impl ReadHeld {
    /// As [`ReadGuard::previous_owner_died`].
    pub fn previous_owner_died(&self) -> bool {
        self.share.died
    }

    /// As [`ReadGuard::waited`].
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.share.waited_ns)
    }

    /// Whether the calling thread took it.
    pub fn is_mine(&self) -> bool {
        let me = identity::me();
        ident(me.pid, me.tid) == self.share.id
    }
}

/// A write hold kept without its guard ([`WriteGuard::into_held`]).
#[derive(Debug)]
pub struct WriteHeld {
    generation: usize,
    tid: u32,
    died: bool,
    waited_ns: u64,
}

impl WriteHeld {
    /// As [`WriteGuard::previous_owner_died`].
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }

    /// As [`WriteGuard::waited`].
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns)
    }

    /// Whether the calling thread took it.
    pub fn is_mine(&self) -> bool {
        identity::tid() == self.tid
    }
}

impl RwLock {
    /// Release a read hold kept with [`ReadGuard::into_held`].
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`](crate::Error::NotOwner) when another thread
    /// took it (nothing is released; `held` is given back).
    pub fn release_read(&self, held: ReadHeld) -> Result<(), (crate::Error, ReadHeld)> {
        if !held.is_mine() {
            return Err((self.not_owner(), held));
        }
        ReadGuard::release(self, &held.share);
        Ok(())
    }

    /// Release a write hold kept with [`WriteGuard::into_held`];
    /// `abandoned` reports it to the next holder as a death (a Python
    /// object finalised while it writes).
    ///
    /// # Errors
    ///
    /// As [`RwLock::release_read`].
    pub fn release_write(
        &self,
        held: WriteHeld,
        abandoned: bool,
    ) -> Result<(), (crate::Error, WriteHeld)> {
        if !held.is_mine() {
            return Err((self.not_owner(), held));
        }
        let me = self.me();
        self.exit_write(held.generation, abandoned, &me, held.died, held.waited_ns);
        self.lockdep.released();
        Ok(())
    }

    /// [`WriteGuard::downgrade`] for a kept write hold.
    ///
    /// # Errors
    ///
    /// As [`RwLock::release_read`].
    pub fn downgrade_held(&self, held: WriteHeld) -> Result<ReadHeld, (crate::Error, WriteHeld)> {
        if !held.is_mine() {
            return Err((self.not_owner(), held));
        }
        let guard = WriteGuard::new(self, held.generation, held.tid, held.died, held.waited_ns);
        Ok(guard.downgrade().into_held())
    }

    fn not_owner(&self) -> crate::Error {
        crate::Error::NotOwner {
            name: self.name.clone(),
        }
    }
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let me = identity::me();
        if ident(me.pid, me.tid) != self.share.id {
            // A fork()ed child dropping its copy: the parent reads.
            return;
        }
        ReadGuard::release(self.lock, &self.share);
    }
}

impl fmt::Debug for ReadGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadGuard")
            .field("lock", &self.lock.name)
            .field("previous_owner_died", &self.share.died)
            .finish()
    }
}

/// A write (exclusive) hold of an [`RwLock`]; released when dropped.
/// `!Send`: the thread that took it releases it.
#[must_use = "if unused the lock is released at once"]
pub struct WriteGuard<'a> {
    lock: &'a RwLock,
    generation: usize,
    tid: u32,
    died: bool,
    waited_ns: u64,
    _not_send: PhantomData<*const ()>,
}

impl<'a> WriteGuard<'a> {
    pub(super) fn new(
        lock: &'a RwLock,
        generation: usize,
        tid: u32,
        died: bool,
        waited_ns: u64,
    ) -> Self {
        WriteGuard {
            lock,
            generation,
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

    /// Zero the lock's statistics, both sides, for every user of the lock
    /// (`buslock stats --reset`). Under the write hold no reader is
    /// counting: a reader counts its read after it is admitted and before
    /// it leaves, and a writer holds only once every reader left. As for a
    /// mutex, this hold counts as the first write of the new period.
    pub fn reset_stats(&self) {
        let page = self.lock.page_at(self.generation);
        crate::stats::reset(&page.stats, crate::clock::realtime_ns_syscall());
        readers::reset_counts(page);
    }

    /// The lock this guard holds.
    pub fn rwlock(guard: &Self) -> &'a RwLock {
        guard.lock
    }

    /// Keep the hold without the guard (for bindings): release it with
    /// [`RwLock::release_write`] from the same thread.
    pub fn into_held(self) -> WriteHeld {
        let held = WriteHeld {
            generation: self.generation,
            tid: self.tid,
            died: self.died,
            waited_ns: self.waited_ns,
        };
        core::mem::forget(self);
        held
    }

    /// Turn this write hold into a read hold with no moment in between
    /// where another writer could get in: the writer takes a reader slot
    /// while it still holds the writers' word, and only then hands the
    /// word on (to queued readers, who read with it, or to a queued writer,
    /// who waits for them).
    pub fn downgrade(self) -> ReadGuard<'a> {
        let lock = self.lock;
        let died = self.died;
        let g = self.generation;
        let me = lock.me();
        let page = lock.page_at(g);
        let slot = loop {
            if let Some(n) = readers::claim(page, &me, crate::clock::now_ns()) {
                break n;
            }
            // Only readers backing out of the fast path (they saw the word
            // held) or dead ones can fill the table now.
            readers::reap(page);
            std::thread::yield_now();
        };
        let waited_ns = self.waited_ns;
        core::mem::forget(self);
        let now = lock.exit_write(g, false, &me, died, waited_ns);
        readers::count_read(page, slot);
        held::set(lock.key(g), held::Hold::Read);
        ReadGuard::new(lock, g, slot, &me, died, now, 0)
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
        self.lock.exit_write(
            self.generation,
            std::thread::panicking(),
            &me,
            self.died,
            self.waited_ns,
        );
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
