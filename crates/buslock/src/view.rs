//! [`LockView`]: a read-only view of a lock, for users who may read its
//! lock file but not write it (monitoring tools, `buslock state` and
//! `list` run by someone outside the bus users' group).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::lockfile::{IntoLockName, LockDir, LockFile, lock_name};
use crate::owner::{self, Owner};
use crate::stats::{self, Stats};
use crate::waiters::{self, Waiter};

/// A read-only view of lock `name`: who holds it, who waits, statistics
/// and recent holds, read with read access to the lock file only.
///
/// It opens the file `O_RDONLY` and maps it read-only, so it can neither
/// take the lock nor change anything in the file: unlike a [`crate::Mutex`]
/// opened to inspect, it does not clear the waiters table's entries of
/// dead waiters (it just does not list them), and it never creates or
/// initialises a lock file. Like the `Mutex` inspection methods, it
/// follows a lock file that was replaced at the lock path.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let spi = buslock::Mutex::builder("SPI").dir(dir.path()).open()?;
/// let _guard = spi.lock()?;
/// let dir = buslock::LockDir::resolve(Some(dir.path()))?;
/// let view = buslock::LockView::open(&dir, "SPI")?;
/// assert_eq!(view.owner()?.map(|o| o.pid), Some(std::process::id()));
/// # Ok::<(), buslock::Error>(())
/// ```
pub struct LockView {
    name: String,
    dir: LockDir,
    file: RefCell<LockFile>,
    /// An inspection method moved the view to a new file since the last
    /// [`LockView::follow`], which reports it.
    moved: Cell<bool>,
}

impl LockView {
    /// Open a view of the existing lock `name` in `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::NotFound`] when the lock was never
    /// created, and every problem with the file, as [`crate::Mutex`]
    /// reports them; read permission is enough. A file that another
    /// process is creating right now is waited for (at most 2 s), not
    /// reported as half made.
    pub fn open(dir: &LockDir, name: impl IntoLockName) -> Result<LockView> {
        let name = lock_name(name)?;
        let file = LockFile::open_read_only(dir, name.as_str())?;
        Ok(LockView {
            name: name.into(),
            dir: dir.try_clone()?,
            file: RefCell::new(file),
            moved: Cell::new(false),
        })
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock file's path.
    pub fn path(&self) -> PathBuf {
        self.file.borrow().path.clone()
    }

    /// If the file in view was unlinked and another file now sits at the
    /// lock path, view that one instead; `Ok(true)` if it moved, now or in
    /// an inspection method ([`LockView::owner`], ...) called since the
    /// last `follow`. The event ring is per file: follow events again from
    /// 0 after a move.
    ///
    /// # Errors
    ///
    /// Those of opening the new file ([`Error::NotFound`] excepted: with no
    /// file at the path, the view stays on the old one).
    pub fn follow(&self) -> Result<bool> {
        let now = self.switch()?;
        Ok(self.moved.replace(false) || now)
    }

    /// Move to the file now at the lock path if it is another; whether it
    /// moved.
    fn switch(&self) -> Result<bool> {
        if self.file.borrow().is_current(&self.dir) {
            return Ok(false);
        }
        match LockFile::open_read_only(&self.dir, &self.name) {
            Ok(new) => {
                *self.file.borrow_mut() = new;
                Ok(true)
            }
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Read the file now at the lock path with `read`.
    fn read<T>(&self, read: impl FnOnce(&LockFile) -> T) -> Result<T> {
        if self.switch()? {
            self.moved.set(true);
        }
        Ok(read(&self.file.borrow()))
    }

    /// Who holds the lock, `None` when free (see [`crate::Mutex::owner`]).
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn owner(&self) -> Result<Option<Owner>> {
        self.read(|f| {
            let page = f.map.page();
            owner::read_with_word(&page.owner, Some(page.mutex.mutex.word()))
        })
    }

    /// Whether some live thread holds the lock (a snapshot).
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn is_locked(&self) -> Result<bool> {
        Ok(self.owner()?.is_some_and(|o| o.is_alive()))
    }

    /// The lock's statistics.
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn stats(&self) -> Result<Stats> {
        self.read(|f| stats::snapshot(&f.map.page().stats))
    }

    /// Live waiters, longest waiting first; entries of dead waiters are
    /// skipped (and left for the next holder to clear).
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn waiters(&self) -> Result<Vec<Waiter>> {
        self.read(|f| waiters::scan(&f.map.page().waiters, waiters::Scan::LiveReadOnly))
    }

    /// Entries of the waiters table left by waiters that died.
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn stale_waiters(&self) -> Result<Vec<Waiter>> {
        self.read(|f| waiters::scan(&f.map.page().waiters, waiters::Scan::Stale))
    }

    /// Completed holds numbered `from` and later still in the ring of the
    /// file in view, and the number to pass next time (see
    /// [`crate::Mutex::events_since`]; for a readers-writer lock, reads,
    /// writes and deaths found: [`crate::RwLock::events_since`]). Does not
    /// follow a replaced file: call [`LockView::follow`] first.
    pub fn events_since(&self, from: u64) -> (Vec<Event>, u64) {
        let file = self.file.borrow();
        events::read_from(ring_of(&file), from)
    }

    /// Number of events recorded in the ring of the file in view.
    pub fn event_head(&self) -> u64 {
        let file = self.file.borrow();
        events::head(ring_of(&file))
    }

    /// What the lock is: `"mutex"` or `"rwlock"` (a readers-writer lock,
    /// whose [`LockView::owner`] is its writer).
    pub fn kind(&self) -> &'static str {
        crate::raw::layout::kind_name(self.file.borrow().kind())
    }

    fn is_rwlock(&self) -> bool {
        self.file.borrow().kind() == crate::raw::layout::KIND_RWLOCK
    }

    /// A readers-writer lock's statistics, both sides (`None` for a
    /// mutex: see [`LockView::stats`]).
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn rw_stats(&self) -> Result<Option<crate::RwStats>> {
        if !self.is_rwlock() {
            return Ok(None);
        }
        self.read(|f| Some(crate::rwlock::stats_of(f)))
    }

    /// The readers holding a readers-writer lock now (none for a mutex).
    ///
    /// # Errors
    ///
    /// Those of [`LockView::follow`].
    pub fn readers(&self) -> Result<Vec<crate::Reader>> {
        if !self.is_rwlock() {
            return Ok(Vec::new());
        }
        self.read(crate::rwlock::readers_of)
    }

    /// The directory the lock lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The event ring of `file`, where its kind keeps it.
fn ring_of(file: &LockFile) -> &crate::raw::layout::EventRing {
    if file.kind() == crate::raw::layout::KIND_RWLOCK {
        &file.map.rw_page().events
    } else {
        &file.map.page().events
    }
}

impl fmt::Debug for LockView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockView")
            .field("name", &self.name)
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}
