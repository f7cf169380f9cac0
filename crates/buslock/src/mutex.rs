//! [`Mutex`], its [`Builder`] and its [`MutexGuard`].

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::time::Timespec;

use crate::clock;
use crate::error::{Error, Result};
use crate::events::{self, Event, HoldRecord};
use crate::identity::{self, Me};
use crate::legacy::{LegacyFailure, LegacyLock, LegacyWait};
use crate::lockfile::{LockDir, LockFile, OpenMode, validate_name};
use crate::owner::{self, Owner};
use crate::raw::{Acquire, Mapping, RawError};
use crate::stats::{self, Stats};
use crate::waiters::{self, Waiter, WaiterEntry};

/// How often an interruptible wait wakes to ask whether to give up.
///
/// `FUTEX_LOCK_PI` waits are not interrupted by signals, so interruptible
/// waits wait in slices of this length. Each new slice queues again behind
/// waiters that arrived meanwhile, so under heavy contention an
/// interruptible waiter can be overtaken; plain [`Mutex::lock`] and
/// [`Mutex::lock_timeout`] keep their place in the queue.
pub const INTERRUPT_SLICE: Duration = Duration::from_millis(50);

/// A named lock shared by every process and thread on this machine that
/// opens the same name in the same lock directory.
///
/// Unlike [`std::sync::Mutex`], it excludes other *processes* too; unlike
/// `flock`, it also excludes other *threads* of one process, and it knows
/// who holds it. Unlike a POSIX semaphore, it is released when its holder
/// dies, and the next holder is told ([`MutexGuard::previous_owner_died`]).
///
/// # Semantics
///
/// - **Exclusion**: at most one thread on the machine holds it.
/// - **Crash safety**: if a holder dies in any way (panic, `SIGKILL`,
///   segfault, OOM kill), the lock is released and the next acquisition
///   reports [`MutexGuard::previous_owner_died`]: reset the bus or device.
/// - **Fairness**: waiters are served in priority order, first come first
///   served among equal priorities; the lock is handed to the first waiter
///   at release (no barging), and a holder's priority is raised to that of
///   its highest-priority waiter (priority inheritance).
/// - **Discipline**: locking again from the holding thread is
///   [`Error::Recursive`], never a hang; only the holding thread can
///   release, because the guard is `!Send`.
/// - **Speed**: an uncontended lock and unlock is a few atomic instructions
///   and no system call.
///
/// # Which lock should I use?
///
/// - Data shared by threads of one program: [`std::sync::Mutex`].
/// - A device, bus or file shared by several programs, possibly in several
///   languages, that must survive crashes: `buslock::Mutex`.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let spi = buslock::Mutex::builder("SPI").dir(dir.path()).open()?;
/// {
///     let guard = spi.lock()?;
///     if guard.previous_owner_died() {
///         // The last holder died mid-transfer: reset the bus here.
///     }
///     spi.assert_held();
///     // ... talk to the bus ...
/// } // released here
/// assert!(spi.owner()?.is_none());
/// # Ok::<(), buslock::Error>(())
/// ```
pub struct Mutex {
    name: String,
    path: PathBuf,
    map: Option<Mapping>,
    legacy: Option<LegacyLock>,
    /// Set while a thread holds the lock through this handle (written only
    /// under the lock), so that dropping the handle while a guard was leaked
    /// keeps the memory mapped for the kernel's robust list.
    held: AtomicBool,
}

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
    /// not a valid buslock file for this program; see [`Error`].
    pub fn open(self) -> Result<Mutex> {
        validate_name(&self.name)?;
        let dir = LockDir::resolve(self.dir.as_deref())?;
        let mut mutex = Mutex::open_in(&dir, &self.name, self.mode)?;
        if let Some(path) = &self.legacy {
            mutex.legacy = Some(LegacyLock::open(path)?);
        }
        Ok(mutex)
    }
}

/// How long [`Mutex::acquire`] may wait.
pub enum Wait<'a> {
    /// Do not wait.
    Try,
    /// Wait as long as it takes.
    Forever,
    /// Wait at most this long.
    Timeout(Duration),
    /// Wait at most `timeout` (`None`: forever), asking `interrupted` every
    /// [`INTERRUPT_SLICE`]; give up with [`Error::Interrupted`] when it
    /// says `true`.
    Interruptible {
        /// Longest wait.
        timeout: Option<Duration>,
        /// Asked between slices; `true` stops the wait.
        interrupted: &'a mut dyn FnMut() -> bool,
    },
}

/// Proof that the calling thread took a lock, for bindings that cannot keep
/// a [`MutexGuard`] (Python's `acquire()`/`release()`). Give it back to
/// [`Mutex::release`] from the same thread. Most code uses the guard.
#[derive(Debug)]
#[must_use = "the lock stays held until the Held is passed to Mutex::release"]
pub struct Held {
    me: Me,
    acquired_ns: u64,
    waited_ns: u64,
    owner_died: bool,
}

impl Held {
    /// Whether the previous holder died while holding the lock.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// How long the acquisition waited.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns)
    }
}

fn timespec(ns: u64) -> Timespec {
    Timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

impl Mutex {
    /// Open lock `name` in the default lock directory (`$BUSLOCK_DIR`, else
    /// `/run/lock/buslock`, `$XDG_RUNTIME_DIR/buslock`, `/dev/shm/buslock`),
    /// creating it if needed.
    ///
    /// # Errors
    ///
    /// See [`Builder::open`].
    pub fn open(name: &str) -> Result<Mutex> {
        Mutex::builder(name).open()
    }

    /// Start configuring how to open lock `name`.
    pub fn builder(name: &str) -> Builder {
        Builder {
            name: name.to_owned(),
            dir: None,
            mode: OpenMode::Create,
            legacy: None,
        }
    }

    /// Open lock `name` in an already resolved directory.
    ///
    /// # Errors
    ///
    /// See [`Builder::open`].
    pub fn open_in(dir: &LockDir, name: &str, mode: OpenMode) -> Result<Mutex> {
        validate_name(name)?;
        identity::warm_up();
        clock::refine();
        let LockFile { path, map } = LockFile::open(dir, name, mode)?;
        Ok(Mutex {
            name: name.to_owned(),
            path,
            map: Some(map),
            legacy: None,
            held: AtomicBool::new(false),
        })
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The legacy companion lock file, if one was configured.
    pub fn legacy_path(&self) -> Option<&Path> {
        self.legacy.as_ref().map(|l| l.path())
    }

    #[inline]
    fn map(&self) -> &Mapping {
        // Only `Drop` takes the mapping out.
        self.map.as_ref().expect("mapping present until drop")
    }

    /// Block until this thread holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Recursive`] if this thread already holds it;
    /// [`Error::NotRecoverable`] if the lock file was damaged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spi = buslock::Mutex::builder("SPI").dir(dir.path()).open()?;
    /// let guard = spi.lock()?;
    /// assert!(matches!(spi.lock(), Err(buslock::Error::Recursive { .. })));
    /// drop(guard);
    /// # Ok::<(), buslock::Error>(())
    /// ```
    pub fn lock(&self) -> Result<MutexGuard<'_>> {
        match self.acquire(Wait::Forever)? {
            Some(held) => Ok(self.guard(held)),
            // An endless wait ends only with the lock or an error.
            None => unreachable!("Wait::Forever returned without the lock"),
        }
    }

    /// Take the lock if nobody holds it; never blocks.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`]; a lock held elsewhere is `Ok(None)`.
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_>>> {
        Ok(self.acquire(Wait::Try)?.map(|h| self.guard(h)))
    }

    /// Wait at most `timeout` for the lock; `Ok(None)` when it expires.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spi = buslock::Mutex::builder("SPI").dir(dir.path()).open()?;
    /// match spi.lock_timeout(Duration::from_millis(50))? {
    ///     Some(guard) => { /* use the bus */ }
    ///     None => eprintln!("bus busy, held by {:?}", spi.owner()?),
    /// }
    /// # Ok::<(), buslock::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<MutexGuard<'_>>> {
        Ok(self.acquire(Wait::Timeout(timeout))?.map(|h| self.guard(h)))
    }

    /// Wait at most `timeout` (`None`: forever), calling `interrupted` every
    /// [`INTERRUPT_SLICE`] and giving up when it returns `true` (for Ctrl-C
    /// handling). `Ok(None)` when the timeout expires.
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`], or as [`Mutex::lock`].
    pub fn lock_interruptible(
        &self,
        timeout: Option<Duration>,
        mut interrupted: impl FnMut() -> bool,
    ) -> Result<Option<MutexGuard<'_>>> {
        let wait = Wait::Interruptible {
            timeout,
            interrupted: &mut interrupted,
        };
        Ok(self.acquire(wait)?.map(|h| self.guard(h)))
    }

    fn guard(&self, held: Held) -> MutexGuard<'_> {
        MutexGuard {
            mutex: self,
            held,
            _not_send: PhantomData,
        }
    }

    fn raw_error(&self, e: RawError) -> Error {
        match e {
            RawError::WouldDeadlock => Error::Recursive {
                name: self.name.clone(),
            },
            RawError::NotRecoverable => Error::NotRecoverable {
                name: self.name.clone(),
                path: self.path.clone(),
            },
            RawError::NotOwner => Error::NotOwner {
                name: self.name.clone(),
            },
            RawError::Other(code) => Error::Io {
                path: self.path.clone(),
                action: "lock",
                source: std::io::Error::from_raw_os_error(code),
            },
        }
    }

    /// Take the lock without a guard (for language bindings). Returns
    /// `Ok(None)` when `wait` gave up at its timeout or was [`Wait::Try`].
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`] and [`Mutex::lock_interruptible`].
    #[inline]
    pub fn acquire(&self, wait: Wait<'_>) -> Result<Option<Held>> {
        let got = match self.map().mutex().try_lock() {
            Ok(Acquire::Busy) if matches!(wait, Wait::Try) => return Ok(None),
            Ok(Acquire::Busy) => return self.wait_slow(wait),
            Ok(got) => got,
            Err(e) => return Err(self.raw_error(e)),
        };
        if self.legacy.is_some() {
            return self.with_legacy(got, None, wait);
        }
        Ok(Some(self.enter(None, got == Acquire::OwnerDied)?))
    }

    #[cold]
    fn wait_slow(&self, wait: Wait<'_>) -> Result<Option<Held>> {
        clock::refine();
        let me = identity::me();
        let page = self.map().page();
        let raw = self.map().mutex();
        let start = clock::now_ns();
        let start_sys = clock::monotonic_ns_syscall();
        let entry = WaiterEntry::enter(&page.waiters, &me, start);
        let deadline =
            |t: Duration| start_sys.saturating_add(t.as_nanos().min(u64::MAX as u128) as u64);
        let (end, mut interrupted) = match wait {
            Wait::Try | Wait::Forever => (None, None),
            Wait::Timeout(t) => (Some(deadline(t)), None),
            Wait::Interruptible {
                timeout,
                interrupted,
            } => (timeout.map(deadline), Some(interrupted)),
        };
        let outcome = loop {
            let Some(check) = interrupted.as_mut() else {
                break match end {
                    None => raw.lock(),
                    Some(end) => raw.lock_until(timespec(end)),
                };
            };
            let slice_end = clock::monotonic_ns_syscall() + INTERRUPT_SLICE.as_nanos() as u64;
            let until = end.map_or(slice_end, |e| e.min(slice_end));
            match raw.lock_until(timespec(until)) {
                Ok(Acquire::Busy) => {
                    if check() {
                        drop(entry);
                        return Err(Error::Interrupted {
                            name: self.name.clone(),
                        });
                    }
                    if end.is_some_and(|e| clock::monotonic_ns_syscall() >= e) {
                        break Ok(Acquire::Busy);
                    }
                }
                other => break other,
            }
        };
        drop(entry);
        match outcome {
            Ok(Acquire::Busy) => {
                stats::on_timeout(&page.stats);
                Ok(None)
            }
            Ok(got) if self.legacy.is_some() => {
                let mut never = || false;
                let wait = match (end, interrupted) {
                    (None, None) => Wait::Forever,
                    (end, interrupted) => Wait::Interruptible {
                        timeout: end.map(|e| {
                            Duration::from_nanos(e.saturating_sub(clock::monotonic_ns_syscall()))
                        }),
                        interrupted: interrupted.unwrap_or(&mut never),
                    },
                };
                self.with_legacy(got, Some(start), wait)
            }
            Ok(got) => Ok(Some(self.enter(Some(start), got == Acquire::OwnerDied)?)),
            Err(e) => Err(self.raw_error(e)),
        }
    }

    /// Holding the buslock mutex, take the legacy companion lock too; on
    /// failure release the mutex again (keeping a death notice for the
    /// next holder).
    #[cold]
    fn with_legacy(
        &self,
        got: Acquire,
        wait_start: Option<u64>,
        wait: Wait<'_>,
    ) -> Result<Option<Held>> {
        let Some(legacy) = self.legacy.as_ref() else {
            return Ok(Some(self.enter(wait_start, got == Acquire::OwnerDied)?));
        };
        let owner_died = got == Acquire::OwnerDied;
        let now = clock::monotonic_ns_syscall();
        let legacy_wait = match wait {
            Wait::Try => LegacyWait::Try,
            Wait::Forever => LegacyWait::Forever,
            Wait::Timeout(t) => LegacyWait::Until {
                deadline_mono_ns: Some(now.saturating_add(t.as_nanos() as u64)),
                interrupted: None,
            },
            Wait::Interruptible {
                timeout,
                interrupted,
            } => LegacyWait::Until {
                deadline_mono_ns: timeout.map(|t| now.saturating_add(t.as_nanos() as u64)),
                interrupted: Some(interrupted),
            },
        };
        let is_try = matches!(legacy_wait, LegacyWait::Try);
        let failure = match legacy.lock(legacy_wait) {
            Ok(()) => return Ok(Some(self.enter(wait_start, owner_died)?)),
            Err(failure) => failure,
        };
        let page = self.map().page();
        if owner_died {
            self.recover()?;
        }
        if owner_died || owner::death_pending(&page.owner) {
            owner::set_death_pending(&page.owner);
        }
        let _ = self.map().mutex().unlock();
        match failure {
            LegacyFailure::Busy => {
                if !is_try {
                    stats::on_timeout(&page.stats);
                }
                Ok(None)
            }
            LegacyFailure::Interrupted => Err(Error::Interrupted {
                name: self.name.clone(),
            }),
            LegacyFailure::Error(e) => Err(e),
        }
    }

    /// Bookkeeping right after taking the mutex: repair after a dead
    /// holder, write the owner record, count.
    #[inline]
    fn enter(&self, wait_start: Option<u64>, owner_died: bool) -> Result<Held> {
        let me = identity::me();
        let page = self.map().page();
        if owner_died {
            self.recover()?;
        }
        // A holder that died before a legacy-lock failure handed the lock
        // on: report its death now.
        let owner_died = owner_died || owner::death_pending(&page.owner);
        let now = clock::now_ns();
        let waited = wait_start.map(|s| now.saturating_sub(s));
        owner::write(&page.owner, &me, now, owner_died);
        stats::on_acquire(&page.stats, waited, owner_died);
        self.held.store(true, Ordering::Relaxed);
        Ok(Held {
            me,
            acquired_ns: now,
            waited_ns: waited.unwrap_or(0),
            owner_died,
        })
    }

    #[cold]
    fn recover(&self) -> Result<()> {
        let page = self.map().page();
        if let Err(e) = self.map().mutex().consistent() {
            let err = self.raw_error(e);
            let _ = self.map().mutex().unlock();
            return Err(err);
        }
        owner::repair(&page.owner);
        waiters::reap(&page.waiters);
        Ok(())
    }

    /// Release a lock taken with [`Mutex::acquire`]. The proof is taken out
    /// of `held` only when the release succeeds.
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`] when `held` is empty or belongs to another thread
    /// (the lock stays held, `held` keeps its proof).
    pub fn release(&self, held: &mut Option<Held>) -> Result<()> {
        let me = identity::me();
        let mine = held
            .as_ref()
            .is_some_and(|h| h.me.tid == me.tid && owner::is_me(&self.map().page().owner, &me));
        if !mine {
            return Err(Error::NotOwner {
                name: self.name.clone(),
            });
        }
        let Some(proof) = held.take() else {
            return Err(Error::NotOwner {
                name: self.name.clone(),
            });
        };
        self.exit(&me, &proof).map_err(|e| self.raw_error(e))
    }

    /// Bookkeeping and unlock. The caller checked that it holds the lock.
    #[inline]
    fn exit(&self, me: &Me, held: &Held) -> std::result::Result<(), RawError> {
        let page = self.map().page();
        let now = clock::now_ns();
        let held_ns = now.saturating_sub(held.acquired_ns);
        stats::on_release(&page.stats, me, held_ns, held.acquired_ns);
        events::push(
            &page.events,
            me,
            &HoldRecord {
                acquired_mono_ns: held.acquired_ns,
                waited_ns: held.waited_ns,
                held_ns,
                owner_died: held.owner_died,
            },
        );
        if let Some(legacy) = &self.legacy {
            legacy.unlock();
        }
        owner::clear(&page.owner);
        self.held.store(false, Ordering::Relaxed);
        self.map().mutex().unlock()
    }

    /// Panic unless the calling thread holds this lock. Like an RTOS
    /// `configASSERT(xSemaphoreGetMutexHolder(m) == self)`.
    ///
    /// # Panics
    ///
    /// When the calling thread does not hold the lock; the message names the
    /// actual holder.
    #[track_caller]
    pub fn assert_held(&self) {
        if !self.is_held_by_current_thread() {
            let holder = match owner::read(&self.map().page().owner) {
                Some(o) => format!("held by pid {} tid {} ({})", o.pid, o.tid, o.program),
                None => "free".to_owned(),
            };
            panic!(
                "lock '{}' is not held by this thread (pid {} tid {}); it is {holder}",
                self.name,
                identity::me().pid,
                identity::me().tid
            );
        }
    }

    /// Whether the calling thread holds this lock.
    pub fn is_held_by_current_thread(&self) -> bool {
        owner::is_me(&self.map().page().owner, &identity::me())
    }

    /// Whether some live thread holds the lock (a snapshot: it may change
    /// at once).
    pub fn is_locked(&self) -> bool {
        owner::read(&self.map().page().owner).is_some_and(|o| o.is_alive())
    }

    /// Who holds the lock, read without taking it and without blocking on
    /// the holder. `None` when free.
    ///
    /// A holder that died while holding is still returned, with
    /// [`Owner::state`] `Gone` or `Zombie`, until the next acquisition.
    ///
    /// # Errors
    ///
    /// None at present; reserved for checks of the file.
    pub fn owner(&self) -> Result<Option<Owner>> {
        Ok(owner::read(&self.map().page().owner))
    }

    /// A snapshot of the lock's statistics, shared by all its users.
    ///
    /// # Errors
    ///
    /// None at present; reserved for checks of the file.
    pub fn stats(&self) -> Result<Stats> {
        Ok(stats::snapshot(&self.map().page().stats))
    }

    /// Threads waiting for the lock now, longest waiting first. Entries of
    /// waiters that died are removed, not listed.
    ///
    /// # Errors
    ///
    /// None at present; reserved for checks of the file.
    pub fn waiters(&self) -> Result<Vec<Waiter>> {
        Ok(waiters::list(&self.map().page().waiters))
    }

    /// Completed holds numbered `from` and later that are still in the
    /// ring, and the number to pass next time. Start with
    /// [`Mutex::event_head`] to see only new events.
    pub fn events_since(&self, from: u64) -> (Vec<Event>, u64) {
        events::read_from(&self.map().page().events, from)
    }

    /// Number of holds recorded in the event ring so far.
    pub fn event_head(&self) -> u64 {
        events::head(&self.map().page().events)
    }

    /// Zero the statistics (takes the lock briefly).
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`].
    pub fn reset_stats(&self) -> Result<()> {
        let guard = self.lock()?;
        stats::reset(&self.map().page().stats, clock::realtime_ns_syscall());
        drop(guard);
        Ok(())
    }
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for Mutex {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            if self.held.load(Ordering::Relaxed) {
                // A guard was leaked (mem::forget) and the lock may still be
                // held: the thread's robust list points into this mapping.
                map.leak();
            }
        }
    }
}

/// Holds a [`Mutex`] until dropped.
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

impl MutexGuard<'_> {
    /// Whether the previous holder died while holding the lock.
    ///
    /// If it did, it may have left the bus or device mid-transaction:
    /// reset it (for SPI, deselect and re-initialise the device; for I2C,
    /// clock out a stuck slave and re-configure) before using it. buslock
    /// has already made the lock itself consistent again.
    pub fn previous_owner_died(&self) -> bool {
        self.held.owner_died
    }

    /// How long this acquisition waited for other holders.
    pub fn waited(&self) -> Duration {
        self.held.waited()
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
            .field("previous_owner_died", &self.held.owner_died)
            .finish()
    }
}

impl Drop for MutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if identity::tid() != self.held.me.tid {
            // A fork()ed child dropping its copy: the parent holds the lock.
            return;
        }
        // Unlock cannot fail for the holding thread of an error-checking
        // mutex; there is nothing useful to do in drop if it did.
        let _ = self.mutex.exit(&self.held.me, &self.held);
    }
}
