//! [`Builder`]: how a [`Mutex`] is opened.

use std::path::PathBuf;

use super::Mutex;
use crate::error::Result;
use crate::legacy::{Companion, LegacyLock};
use crate::lockfile::{IntoLockName, LockDir, OpenMode};
use crate::options::Options;

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
    options: Options,
    legacy: Option<PathBuf>,
    legacy_semaphore: Option<String>,
    legacy_poll: Option<std::time::Duration>,
}

impl Builder {
    pub(super) fn new(name: impl IntoLockName) -> Self {
        Builder {
            options: Options::new(name),
            legacy: None,
            legacy_semaphore: None,
            legacy_poll: None,
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
        self.options.label(label);
        self
    }
}

impl Builder {
    /// Lock-order checking for this handle, instead of the process's
    /// `$BUSLOCK_LOCKDEP` (default [`Mode::Warn`](crate::lockdep::Mode::Warn));
    /// see [`crate::lockdep`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use buslock::lockdep::Mode;
    /// let spi = buslock::Mutex::builder("SPI").dir(dir.path()).lockdep(Mode::Error).open()?;
    /// # Ok::<(), buslock::Error>(())
    /// ```
    pub fn lockdep(mut self, mode: crate::lockdep::Mode) -> Self {
        self.options.lockdep(mode);
        self
    }

    /// Use lock directory `dir` instead of `$BUSLOCK_DIR` or the default.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.dir(dir.into());
        self
    }

    /// Whether to create the lock file if it does not exist (default
    /// `true`). Inspection tools pass `false` so that looking does not
    /// create.
    pub fn create(mut self, create: bool) -> Self {
        self.options.create(create);
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

    /// Also take a legacy companion semaphore: the POSIX named semaphore
    /// `name` (`/NAME`, created with value 1 if missing), as programs still
    /// using `global_lock` (posix_ipc) take it, after the buslock mutex and
    /// released before it. When a buslock holder dies holding it, the next
    /// holder posts it back (see the [`legacy`](crate::legacy) module).
    /// Replaces [`Builder::legacy_record_lock`] if both are given.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let sem = format!("/buslock-doc-{}", std::process::id());
    /// let spi = buslock::Mutex::builder("NCSPI")
    ///     .dir(dir.path())
    ///     .legacy_semaphore(&sem)
    ///     .open()?;
    /// let guard = spi.lock()?; // holds both
    /// # drop(guard);
    /// # buslock::raw::semaphore::NamedSemaphore::unlink(&sem).unwrap();
    /// # Ok::<(), buslock::Error>(())
    /// ```
    pub fn legacy_semaphore(mut self, name: &str) -> Self {
        self.legacy_semaphore = Some(name.to_owned());
        self
    }

    /// How often the unmigrated programs behind a
    /// [`Builder::legacy_record_lock`] poll it (default
    /// [`legacy::DEFAULT_POLL`](crate::legacy::DEFAULT_POLL), 1 ms, as
    /// Dexter's `I2C_mutex`; `DI_Mutex` polls every 0.1 ms). buslock waits
    /// for the file in the kernel, so it would win every release; it leaves
    /// the pollers a turn by pausing at most 1.5 intervals after its own
    /// release and between turns (see the [`legacy`](crate::legacy)
    /// module). A `try_lock` within 1.5 intervals of this handle's own
    /// release returns `None` for the same reason.
    pub fn legacy_poll_interval(mut self, interval: std::time::Duration) -> Self {
        self.legacy_poll = Some(interval);
        self
    }

    /// Open the lock.
    ///
    /// # Errors
    ///
    /// An invalid name, an unusable lock directory, or a lock file that is
    /// not a valid buslock file for this program; see [`Error`](crate::Error).
    pub fn open(self) -> Result<Mutex> {
        let name = self.options.name.get()?;
        // Only a program that may create the lock file may create the
        // system lock directory (as root); see `lockfile::dir`.
        let dir = match self.options.mode {
            OpenMode::Create => LockDir::resolve_for_locking(self.options.dir.as_deref())?,
            OpenMode::Existing => LockDir::resolve(self.options.dir.as_deref())?,
        };
        let legacy = match &self.legacy_semaphore {
            Some(sem) => {
                let marker = dir.path().join(format!("{name}.legacy-sem"));
                Some(LegacyLock::open_semaphore(sem, &marker)?)
            }
            None => match self.legacy.as_deref() {
                Some(path) => {
                    let lock = LegacyLock::open(path)?;
                    Some(match self.legacy_poll {
                        Some(poll) => lock.with_poll_interval(poll),
                        None => lock,
                    })
                }
                None => None,
            },
        };
        if let Some(legacy) = &legacy {
            let companion = match legacy.semaphore() {
                Some(sem) => Companion::Semaphore(sem.to_owned()),
                None => Companion::RecordLock(self.legacy.clone().unwrap_or_default()),
            };
            companion.record(dir.path(), name.as_str());
        }
        let mut mutex =
            Mutex::open_with(dir, name, self.options.mode, legacy, self.options.lockdep)?;
        mutex.label = self.options.interned_label();
        Ok(mutex)
    }
}
