//! Following a replaced lock file when reading (inspection), without
//! taking the lock, creating a file, or writing to either file: the lock
//! file handle ([`crate::lockfile::Handle`]) does it.

use super::Mutex;
use crate::error::Result;
use crate::raw::LockPage;

impl Mutex {
    /// If the lock file in use was unlinked and another file now sits at
    /// the lock path, move this handle to that file; `Ok(true)` if it
    /// moved since the last `follow` (now, or in an inspection or an
    /// acquisition meanwhile). Nothing moves while no file is at the path
    /// (the old file is still what its users lock).
    ///
    /// The inspection methods ([`Mutex::owner`], [`Mutex::is_locked`],
    /// [`Mutex::stats`], [`Mutex::waiters`]) move the same way, so a long-lived
    /// monitoring handle reports the lock that programs take now, not a
    /// file that was replaced. The event ring is per file: a caller that
    /// follows events with [`Mutex::events_since`] calls this first and
    /// starts again from 0 when it returns `true`.
    ///
    /// # Errors
    ///
    /// The errors of opening the new file ([`Error::NotFound`] excepted),
    /// or [`Error::ReplacedTooOften`].
    ///
    /// [`Error::NotFound`]: crate::Error::NotFound
    /// [`Error::ReplacedTooOften`]: crate::Error::ReplacedTooOften
    pub fn follow(&self) -> Result<bool> {
        self.chain.follow()
    }

    /// The page inspection reads: that of the file now at the lock path.
    pub(super) fn page_to_read(&self) -> Result<&LockPage> {
        self.chain.page_to_read()
    }
}
