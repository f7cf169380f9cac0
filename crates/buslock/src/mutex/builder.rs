//! [`Builder`]: how a [`Mutex`] is opened.

use std::path::PathBuf;

use super::Mutex;
use crate::error::Result;
use crate::legacy::LegacyLock;
use crate::lockfile::{LockDir, OpenMode, validate_name};

/// Configures how a [`Mutex`] is opened.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let i2c = buslock::Mutex::builder("I2C-1").dir(dir.path()).open()?;
/// # Ok::<(), buslock::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .open() is called"]
pub struct Builder {
    name: String,
    dir: Option<PathBuf>,
    mode: OpenMode,
    legacy: Option<PathBuf>,
    label: Option<String>,
}

impl Builder {
    pub(super) fn new(name: &str) -> Self {
        Builder {
            name: name.to_owned(),
            dir: None,
            mode: OpenMode::Create,
            legacy: None,
            label: None,
        }
    }

    /// Show `label` (at most 32 bytes) instead of the program name as the
    /// holder, waiter and in events, e.g. the command that `buslock run`
    /// runs, or a role such as `motor` when one program has several.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spi = buslock::Mutex::builder("SPI").dir(dir.path()).label("motor").open()?;
    /// let guard = spi.lock()?;
    /// assert_eq!(spi.owner()?.unwrap().program, "motor");
    /// # Ok::<(), buslock::Error>(())
    /// ```
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }
}

impl Builder {
    /// Use lock directory `dir` instead of `$BUSLOCK_DIR` or the default.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Whether to create the lock file if it does not exist (default
    /// `true`). Inspection tools pass `false` so that looking does not
    /// create.
    pub fn create(mut self, create: bool) -> Self {
        self.mode = if create {
            OpenMode::Create
        } else {
            OpenMode::Existing
        };
        self
    }

    /// Also take a legacy companion lock: an exclusive open-file-description
    /// record lock on the whole file at `path` (created 0666 if missing,
    /// never through a symbolic link), taken after the buslock mutex and
    /// released before it. It conflicts with `lockf`/`fcntl` locks of
    /// programs not yet migrated, such as Dexter's `DI_Mutex`, which locks
    /// `/run/lock/DI_Mutex_<name>`. See the [`legacy`](crate::legacy) module
    /// for why this order cannot deadlock.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spi = buslock::Mutex::builder("SPI")
    ///     .dir(dir.path())
    ///     .legacy_record_lock(dir.path().join("DI_Mutex_SPI"))
    ///     .open()?;
    /// let guard = spi.lock()?; // holds both
    /// # Ok::<(), buslock::Error>(())
    /// ```
    pub fn legacy_record_lock(mut self, path: impl Into<PathBuf>) -> Self {
        self.legacy = Some(path.into());
        self
    }

    /// Open the lock.
    ///
    /// # Errors
    ///
    /// An invalid name, an unusable lock directory, or a lock file that is
    /// not a valid buslock file for this program; see [`Error`](crate::Error).
    pub fn open(self) -> Result<Mutex> {
        validate_name(&self.name)?;
        // Only a program that may create the lock file may create the
        // system lock directory (as root); see `lockfile::dir`.
        let dir = match self.mode {
            OpenMode::Create => LockDir::resolve_for_locking(self.dir.as_deref())?,
            OpenMode::Existing => LockDir::resolve(self.dir.as_deref())?,
        };
        let legacy = self.legacy.as_deref().map(LegacyLock::open).transpose()?;
        let mut mutex = Mutex::open_with(dir, &self.name, self.mode, legacy)?;
        mutex.label = self.label.as_deref().map(crate::identity::intern_label);
        Ok(mutex)
    }
}
