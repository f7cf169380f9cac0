//! Following a replaced lock file when reading (inspection), without
//! taking the lock, creating a file, or writing to either file.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{MAX_GENERATIONS, Mutex};
use crate::error::{Error, Result};
use crate::lockfile::{LockFile, OpenMode};
use crate::raw::LockPage;

impl Mutex {
    /// If the lock file in use was unlinked and another file now sits at
    /// the lock path, move this handle to that file; `Ok(true)` if it
    /// moved. Nothing moves while no file is at the path (the old file is
    /// still what its users lock).
    ///
    /// The inspection methods ([`Mutex::owner`], [`Mutex::is_locked`],
    /// [`Mutex::stats`], [`Mutex::waiters`]) call it, so a long-lived
    /// monitoring handle reports the lock that programs take now, not a
    /// file that was replaced. The event ring is per file: a caller that
    /// follows events with [`Mutex::events_since`] calls this first and
    /// starts again from 0 when it returns `true`.
    ///
    /// # Errors
    ///
    /// The errors of opening the new file ([`Error::NotFound`] excepted),
    /// or [`Error::ReplacedTooOften`].
    pub fn follow(&self) -> Result<bool> {
        let generation = self.current.load(Ordering::Acquire);
        if self.file(generation).is_current(&self.dir) {
            return Ok(false);
        }
        let _serial = self.moving.lock().unwrap_or_else(PoisonError::into_inner);
        if self.current.load(Ordering::Acquire) != generation {
            return Ok(true); // another thread moved on meanwhile
        }
        let next = generation + 1;
        if next >= MAX_GENERATIONS {
            return Err(Error::ReplacedTooOften {
                path: self.path.clone(),
            });
        }
        let new = match LockFile::open(&self.dir, &self.name, OpenMode::Existing) {
            Ok(f) => f,
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let _ = self.later[next - 1].set(new);
        self.current.store(next, Ordering::Release);
        Ok(true)
    }

    /// The page inspection reads: that of the file now at the lock path.
    pub(super) fn page_to_read(&self) -> Result<&LockPage> {
        self.follow()?;
        Ok(self.page())
    }
}
