//! [`MutexGuard`] and [`Held`]: proof that a thread holds a lock.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use super::Mutex;
use crate::identity;

/// Proof that the calling thread took a lock, for bindings that cannot keep
/// a [`MutexGuard`] (Python's `acquire()`/`release()`). Give it back to
/// [`Mutex::release`] from the same thread. Most code uses the guard.
#[derive(Debug)]
#[must_use = "the lock stays held until the Held is passed to Mutex::release"]
pub struct Held {
    // Two aligned words: copies of it then forward from the stores that
    // made it (odd-sized fields cost a store-forwarding stall per lock).
    // When the hold began is in the owner record, which the holder owns
    // until it releases.
    /// How long the acquisition waited, ns.
    waited_ns: u64,
    /// Thread id (bits 0..32), lock file generation (32..48; see
    /// [`Mutex`]'s notes on replaced lock files), previous owner died (48).
    bits: u64,
}

const DIED_BIT: u64 = 1 << 48;

impl Held {
    pub(super) fn new(waited_ns: u64, tid: u32, generation: usize, owner_died: bool) -> Held {
        let died = if owner_died { DIED_BIT } else { 0 };
        Held {
            waited_ns,
            bits: u64::from(tid) | ((generation as u64 & 0xffff) << 32) | died,
        }
    }

    /// The thread that took the lock.
    pub(super) fn tid(&self) -> u32 {
        self.bits as u32
    }

    /// The lock file generation it was taken in.
    pub(super) fn generation(&self) -> usize {
        ((self.bits >> 32) & 0xffff) as usize
    }

    /// Whether the previous holder died while holding the lock.
    pub fn previous_owner_died(&self) -> bool {
        self.bits & DIED_BIT != 0
    }

    /// How long the acquisition waited.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns)
    }
}

/// Holds a [`Mutex`] until dropped.
///
/// Dropped while its thread panics (unwinding), it releases the lock but
/// leaves the next holder told that the previous owner died
/// ([`MutexGuard::previous_owner_died`]), like `std::sync::Mutex`
/// poisoning: a panic in the middle of a bus transaction leaves the device
/// in the same unknown state as a crash.
///
/// `!Send`: only the thread that took the lock can release it. In a child
/// made by `fork()` an inherited guard does nothing when dropped: the child
/// does not own the parent's lock.
#[must_use = "if unused the lock is released at once"]
pub struct MutexGuard<'a> {
    mutex: &'a Mutex,
    held: Held,
    _not_send: PhantomData<*const ()>,
}

impl<'a> MutexGuard<'a> {
    pub(super) fn new(mutex: &'a Mutex, held: Held) -> Self {
        MutexGuard {
            mutex,
            held,
            _not_send: PhantomData,
        }
    }
}

impl MutexGuard<'_> {
    /// Whether the previous holder died while holding the lock.
    ///
    /// If it did, it may have left the bus or device mid-transaction:
    /// reset it (for SPI, deselect and re-initialise the device; for I2C,
    /// clock out a stuck slave and re-configure) before using it. buslock
    /// has already made the lock itself consistent again.
    pub fn previous_owner_died(&self) -> bool {
        self.held.previous_owner_died()
    }

    /// How long this acquisition waited for other holders.
    pub fn waited(&self) -> Duration {
        self.held.waited()
    }

    /// Zero the lock's statistics while holding it (see
    /// [`Mutex::reset_stats`], which takes the lock itself). This hold is
    /// the first one the new statistics count: 1 acquisition, and its hold
    /// time once it ends.
    pub fn reset_stats(&self) {
        let page = self.mutex.file(self.held.generation()).map.page();
        crate::stats::reset(&page.stats, crate::clock::realtime_ns_syscall());
    }

    /// The mutex this guard holds.
    pub fn mutex(guard: &Self) -> &Mutex {
        guard.mutex
    }
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("name", &self.mutex.name)
            .field("previous_owner_died", &self.held.previous_owner_died())
            .finish()
    }
}

impl Drop for MutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if identity::tid() != self.held.tid() {
            // A fork()ed child dropping its copy: the parent holds the lock.
            return;
        }
        // A guard dropped by unwinding: the holder was interrupted in the
        // middle of its work, like a holder that died; the next holder must
        // be told (as std's Mutex is poisoned), so it can reset the bus.
        // Unlock cannot fail for the holding thread; there is nothing useful
        // to do in drop if it did.
        let _ = self.mutex.exit(&self.held, std::thread::panicking());
    }
}
