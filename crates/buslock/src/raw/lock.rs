//! [`RawLock`]: what the primitives and the wait loop need of a lock word.

use rustix::time::Timespec;

use super::mutex::{Acquire, RawError, RawMutex};

/// A lock word: the raw lock that a primitive ([`crate::Mutex`],
/// [`crate::RwLock`]'s writers' word) and the shared wait loop are
/// written against, in the spirit of `lock_api::RawMutex`, with two
/// differences that a lock shared across processes needs:
///
/// - taking it reports how: [`Acquire::Taken`], [`Acquire::OwnerDied`]
///   (the previous holder died holding it; the word is consistent again
///   and the caller repairs what it protects) or, for a try or a wait
///   whose deadline passed, [`Acquire::Busy`];
/// - every operation can be refused ([`RawError`]): recursion, a deadlock
///   cycle found by the kernel, a release by a thread that does not hold
///   it, or an error from the kernel.
///
/// The contract (what an implementation must ensure): while one thread
/// holds the lock (it got `Taken` or `OwnerDied` and has not unlocked), no
/// other thread gets `Taken` or `OwnerDied`; [`RawLock::unlock`] by a
/// thread that does not hold it changes nothing and is
/// [`RawError::NotOwner`]. The trait is safe, unlike `lock_api`'s: the
/// locks built on it guard no Rust data (they guard a device or a bus), so
/// a broken implementation breaks exclusion but not memory safety.
///
/// Implemented by [`RawMutex`], buslock's robust PI futex word.
pub trait RawLock {
    /// Block until the calling thread holds the lock.
    ///
    /// # Errors
    ///
    /// [`RawError::WouldDeadlock`] when the calling thread holds it,
    /// [`RawError::Deadlock`] when waiting would close a cycle.
    fn lock(&self) -> Result<Acquire, RawError>;

    /// Block until the calling thread holds the lock or the
    /// `CLOCK_MONOTONIC` `deadline` passes ([`Acquire::Busy`]).
    ///
    /// # Errors
    ///
    /// As [`RawLock::lock`].
    fn lock_until(&self, deadline: Timespec) -> Result<Acquire, RawError>;

    /// Take the lock if it is free ([`Acquire::Busy`] otherwise); never
    /// blocks.
    ///
    /// # Errors
    ///
    /// [`RawError::WouldDeadlock`] when the calling thread holds it.
    fn try_lock(&self) -> Result<Acquire, RawError>;

    /// Release the lock held by the calling thread.
    ///
    /// # Errors
    ///
    /// [`RawError::NotOwner`] when the calling thread does not hold it.
    fn unlock(&self) -> Result<(), RawError>;

    /// Whether some thread holds the lock now (a snapshot).
    fn is_locked(&self) -> bool;
}

impl RawLock for RawMutex {
    #[inline]
    fn lock(&self) -> Result<Acquire, RawError> {
        RawMutex::lock(self)
    }

    #[inline]
    fn lock_until(&self, deadline: Timespec) -> Result<Acquire, RawError> {
        RawMutex::lock_until(self, deadline)
    }

    #[inline]
    fn try_lock(&self) -> Result<Acquire, RawError> {
        RawMutex::try_lock(self)
    }

    #[inline]
    fn unlock(&self) -> Result<(), RawError> {
        RawMutex::unlock(self)
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.word() & super::mutex::FUTEX_TID_MASK != 0
    }
}
