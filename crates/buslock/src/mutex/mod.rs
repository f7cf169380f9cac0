//! [`Mutex`], its [`Builder`] and its [`MutexGuard`].

mod acquire;
mod builder;
mod follow;
mod guard;
mod holder;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use builder::Builder;
pub use guard::{Held, MutexGuard};

use crate::clock;
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::identity;
use crate::legacy::LegacyLock;
use crate::lockfile::{Handle, IntoLockName, LockDir, LockFile, LockName, OpenMode, lock_name};
use crate::owner::{self, Owner};
use crate::raw::layout::TEXT_BYTES;
use crate::raw::{LockPage, RawError};
use crate::stats::{self, Stats};
use crate::wait::Wait;
use crate::waiters::{self, Waiter};

pub use crate::lockfile::CHECK_INTERVAL;

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
///   Interruptible waits ([`Mutex::lock_interruptible`]) keep their turn
///   only to within one [`INTERRUPT_SLICE`](crate::INTERRUPT_SLICE), and cannot starve.
/// - **Discipline**: locking again from the holding thread is
///   [`Error::Recursive`], never a hang; only the holding thread can
///   release, because the guard is `!Send`. A wait that would close a
///   deadlock cycle across threads or processes is [`Error::Deadlock`],
///   naming the cycle.
/// - **Panics**: a guard dropped while its thread panics releases the lock
///   as a death: the next holder is told (like `std` mutex poisoning).
/// - **Speed**: an uncontended lock and unlock is a few atomic instructions
///   and no system call.
/// - **A replaced lock file**: if the lock file is unlinked or replaced
///   while in use, each process notices at its first wait or release
///   [`CHECK_INTERVAL`] after its last check, moves to the file now at the
///   path (creating it if it is gone), and marks the old file retired so
///   that every other user of it moves at its next acquisition. Until then,
///   a holder on the old file and one on the new file are not excluded from
///   each other (see RELIABILITY.md).
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
    /// The lock file and those that replaced it at the path.
    chain: Handle<LockPage>,
    legacy: Option<LegacyLock>,
    /// Shown instead of the program name in the owner record, waiters and
    /// events.
    label: Option<&'static [u8; TEXT_BYTES]>,
    /// Set while a thread holds the lock through this handle (written only
    /// under the lock), so that dropping the handle while a guard was leaked
    /// keeps the memory mapped for the kernel's robust list.
    held: AtomicBool,
    /// Lock-order checking for this lock (see [`crate::lockdep`]).
    lockdep: crate::lockdep::Class,
}

impl Mutex {
    /// Open lock `name` in the default lock directory (`$BUSLOCK_DIR`, else
    /// `/run/lock/buslock`; see [`lockfile::dir`](crate::lockfile::dir) for
    /// who creates that), creating the lock file if needed.
    ///
    /// # Errors
    ///
    /// See [`Builder::open`].
    pub fn open(name: impl IntoLockName) -> Result<Mutex> {
        Mutex::builder(name).open()
    }

    /// Start configuring how to open lock `name` (checked when the
    /// builder opens the lock).
    pub fn builder(name: impl IntoLockName) -> Builder {
        Builder::new(name)
    }

    /// Open lock `name` in an already resolved directory.
    ///
    /// # Errors
    ///
    /// See [`Builder::open`].
    pub fn open_in(dir: &LockDir, name: impl IntoLockName, mode: OpenMode) -> Result<Mutex> {
        let name = lock_name(name)?;
        Mutex::open_with(dir.try_clone()?, &name, mode, None, None)
    }

    fn open_with(
        dir: LockDir,
        name: &LockName,
        mode: OpenMode,
        legacy: Option<LegacyLock>,
        lockdep: Option<crate::lockdep::Mode>,
    ) -> Result<Mutex> {
        identity::warm_up();
        clock::refine();
        let chain = Handle::open(dir, name.as_str(), mode)?;
        let lockdep =
            crate::lockdep::Class::open(chain.dir(), name, lockdep, mode == OpenMode::Create);
        Ok(Mutex {
            name: name.to_string(),
            chain,
            legacy,
            label: None,
            held: AtomicBool::new(false),
            lockdep,
        })
    }

    /// The calling thread's identity as this handle records it.
    #[inline]
    fn me(&self) -> identity::Me {
        let mut me = identity::me();
        if let Some(label) = self.label {
            me.program = label;
        }
        me
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        self.chain.path()
    }

    /// The legacy companion lock file, if one was configured.
    pub fn legacy_path(&self) -> Option<&Path> {
        self.legacy.as_ref().and_then(|l| l.record_path())
    }

    /// The legacy companion semaphore's name, if one was configured.
    pub fn legacy_semaphore(&self) -> Option<&str> {
        self.legacy.as_ref().and_then(|l| l.semaphore())
    }

    /// Lock file generation `generation` (0 is the one opened first).
    #[inline]
    fn file(&self, generation: usize) -> &LockFile {
        self.chain.file(generation)
    }

    /// Every lock file this handle has used, oldest first.
    fn files(&self) -> impl Iterator<Item = &LockFile> {
        self.chain.files()
    }

    /// The lock file in use now.
    #[inline]
    fn page(&self) -> &LockPage {
        self.chain.current_page()
    }

    /// Block until this thread holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Recursive`] if this thread already holds it;
    /// [`Error::Deadlock`] if waiting would close a deadlock cycle (its
    /// holder waits, perhaps through other locks, for a lock this thread
    /// holds): release what this thread holds and take locks in one order;
    /// [`Error::Io`] if the kernel refused the lock word (a damaged file).
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
    #[inline]
    pub fn lock(&self) -> Result<MutexGuard<'_>> {
        match self.acquire(Wait::Forever)? {
            Some(held) => Ok(MutexGuard::new(self, held)),
            // An endless wait ends only with the lock or an error.
            None => unreachable!("Wait::Forever returned without the lock"),
        }
    }

    /// Take the lock if nobody holds it; never blocks.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`]; a lock held elsewhere is `Ok(None)`.
    #[inline]
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_>>> {
        Ok(self.acquire(Wait::Try)?.map(|h| MutexGuard::new(self, h)))
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
        Ok(self
            .acquire(Wait::Timeout(timeout))?
            .map(|h| MutexGuard::new(self, h)))
    }

    /// Wait at most `timeout` (`None`: forever), calling `interrupted` every
    /// [`INTERRUPT_SLICE`](crate::INTERRUPT_SLICE) and giving up when it returns `true` (for Ctrl-C
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
        Ok(self.acquire(wait)?.map(|h| MutexGuard::new(self, h)))
    }

    fn raw_error(&self, e: RawError) -> Error {
        crate::error::from_raw(e, &self.name, self.chain.dir(), self.chain.path())
    }

    /// Release a lock taken with [`Mutex::acquire`]. The proof is taken out
    /// of `held` only when the release succeeds.
    ///
    /// # Errors
    ///
    /// [`Error::NotOwner`] when `held` is empty or belongs to another thread
    /// (the lock stays held, `held` keeps its proof).
    pub fn release(&self, held: &mut Option<Held>) -> Result<()> {
        self.release_as(held, false)
    }

    /// Release a lock taken with [`Mutex::acquire`] whose holder ended
    /// without releasing it deliberately, so that the next holder is told,
    /// as after a death ([`MutexGuard::previous_owner_died`]): for bindings
    /// whose lock object is finalised while held (a Python program ended
    /// by an uncaught exception or `sys.exit()`). A guard dropped while its
    /// thread panics does the same by itself.
    ///
    /// # Errors
    ///
    /// As [`Mutex::release`].
    pub fn release_abandoned(&self, held: &mut Option<Held>) -> Result<()> {
        self.release_as(held, true)
    }

    fn release_as(&self, held: &mut Option<Held>, abandoned: bool) -> Result<()> {
        let me = identity::me();
        let mine = held.as_ref().is_some_and(|h| {
            h.tid() == me.tid && owner::is_me(&self.file(h.generation()).map.page().owner, &me)
        });
        let proof = match held.take() {
            Some(proof) if mine => proof,
            other => {
                *held = other;
                return Err(Error::NotOwner {
                    name: self.name.clone(),
                });
            }
        };
        self.exit(&proof, abandoned).map_err(|e| self.raw_error(e))
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
            let holder = match owner::read(&self.page().owner) {
                Some(o) => format!("held by {o:#}"),
                None => "free".to_owned(),
            };
            let me = identity::me();
            panic!(
                "lock '{}' is not held by this thread (pid {} tid {}); it is {holder}",
                self.name, me.pid, me.tid
            );
        }
    }

    /// Whether the calling thread holds this lock.
    pub fn is_held_by_current_thread(&self) -> bool {
        let me = identity::me();
        self.files().any(|f| owner::is_me(&f.map.page().owner, &me))
    }

    /// Whether some live thread holds the lock (a snapshot: it may change
    /// at once). Follows a replaced lock file ([`Mutex::follow`]); if the
    /// file now at the path cannot be opened, reads the one in use.
    pub fn is_locked(&self) -> bool {
        let page = self.page_to_read().unwrap_or_else(|_| self.page());
        owner::read_with_word(&page.owner, Some(page.mutex.mutex.word()))
            .is_some_and(|o| o.is_alive())
    }

    /// Who holds the lock, read without taking it and without blocking on
    /// the holder. `None` when free.
    ///
    /// A holder that died while holding (or whose thread ended inside a
    /// live process) is still returned, with [`Owner::state`] `Gone` or
    /// `Zombie`, until the next acquisition.
    ///
    /// Follows a replaced lock file ([`Mutex::follow`]).
    ///
    /// # Errors
    ///
    /// Those of [`Mutex::follow`].
    pub fn owner(&self) -> Result<Option<Owner>> {
        let page = self.page_to_read()?;
        Ok(owner::read_with_word(
            &page.owner,
            Some(page.mutex.mutex.word()),
        ))
    }

    /// A snapshot of the lock's statistics, shared by all its users.
    ///
    /// Follows a replaced lock file ([`Mutex::follow`]).
    ///
    /// # Errors
    ///
    /// Those of [`Mutex::follow`].
    pub fn stats(&self) -> Result<Stats> {
        Ok(stats::snapshot(&self.page_to_read()?.stats))
    }

    /// Threads waiting for the lock now, longest waiting first. Entries of
    /// waiters that died are removed, not listed.
    ///
    /// Follows a replaced lock file ([`Mutex::follow`]).
    ///
    /// # Errors
    ///
    /// Those of [`Mutex::follow`].
    pub fn waiters(&self) -> Result<Vec<Waiter>> {
        Ok(waiters::scan(
            &self.page_to_read()?.waiters,
            waiters::Scan::Live,
        ))
    }

    /// Entries of the waiters table left by waiters that died, without
    /// removing them (for diagnostics; [`Mutex::waiters`] removes them).
    ///
    /// Follows a replaced lock file ([`Mutex::follow`]).
    ///
    /// # Errors
    ///
    /// Those of [`Mutex::follow`].
    pub fn stale_waiters(&self) -> Result<Vec<Waiter>> {
        Ok(waiters::scan(
            &self.page_to_read()?.waiters,
            waiters::Scan::Stale,
        ))
    }

    /// Completed holds numbered `from` and later that are still in the
    /// ring, and the number to pass next time. Start with
    /// [`Mutex::event_head`] to see only new events.
    pub fn events_since(&self, from: u64) -> (Vec<Event>, u64) {
        events::read_from(&self.page().events, from)
    }

    /// Number of holds recorded in the event ring so far.
    pub fn event_head(&self) -> u64 {
        events::head(&self.page().events)
    }

    /// Zero the statistics (takes the lock briefly).
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`].
    pub fn reset_stats(&self) -> Result<()> {
        self.lock()?.reset_stats();
        Ok(())
    }

    /// The polling interval assumed for the unmigrated programs behind the
    /// legacy record lock (see
    /// [`Builder::legacy_poll_interval`](crate::Builder::legacy_poll_interval)),
    /// if a record lock was configured.
    pub fn legacy_poll_interval(&self) -> Option<Duration> {
        self.legacy
            .as_ref()
            .filter(|l| l.record_path().is_some())
            .map(|l| l.poll_interval())
    }

    /// The lock-order checking in effect for this handle: as given to
    /// [`Builder::lockdep`](crate::Builder::lockdep), else
    /// `$BUSLOCK_LOCKDEP`; [`Off`](crate::lockdep::Mode::Off) also when the
    /// lock directory's registry could not be used.
    pub fn lockdep_mode(&self) -> crate::lockdep::Mode {
        self.lockdep.mode()
    }
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("name", &self.name)
            .field("path", &self.chain.path())
            .finish_non_exhaustive()
    }
}

impl Drop for Mutex {
    fn drop(&mut self) {
        if self.held.load(Ordering::Relaxed) {
            // A guard was leaked (mem::forget) and the lock may still be
            // held: the thread's robust list points into these mappings.
            self.chain.leak();
        }
    }
}
