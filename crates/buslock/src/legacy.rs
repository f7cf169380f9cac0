//! Legacy companion locks, for migrating programs that still use an older
//! convention on the same bus.
//!
//! Dexter Industries' `DI_Mutex(name)` (GoPiGo3, BrickPi3, ...) takes a
//! classic POSIX record lock (`fcntl.lockf`) on `/run/lock/DI_Mutex_<name>`.
//! A buslock [`Mutex`](crate::Mutex) opened with
//! [`Builder::legacy_record_lock`](crate::Builder::legacy_record_lock) also
//! takes an exclusive open-file-description record lock on that file, which
//! conflicts with `lockf`, so old and migrated programs exclude each other.
//!
//! # Order, and why it cannot deadlock
//!
//! A buslock user takes the buslock mutex first and the legacy lock second,
//! and releases the legacy lock first. Legacy programs take only the legacy
//! lock. Every buslock user therefore holds the buslock mutex while it waits
//! for the legacy lock, so at most one buslock user waits for it at a time,
//! and it waits only for legacy programs, which wait for nothing buslock
//! holds: there is no cycle. (A legacy program waiting for the file never
//! blocks a buslock user that already holds the file, and vice versa.)
//!
//! Programs that use `global_lock` (a posix_ipc named semaphore `/NAME`
//! with value 1 used as a lock) are met with
//! [`Builder::legacy_semaphore`](crate::Builder::legacy_semaphore): the
//! semaphore is the companion, taken and released in the same order. A
//! semaphore is not released when its holder dies; buslock knows when a
//! holder died, and a marker file beside the lock file (`<name>.legacy-sem`,
//! one byte: whether the buslock holder holds the semaphore, written under
//! the buslock mutex) tells the next holder whether the dead one held the
//! semaphore too: then it posts it back, so old programs are not locked out
//! until reboot. (A holder that dies in the instant between taking the
//! semaphore and writing the marker, or between clearing the marker and
//! posting, leaves the semaphore as a plain `global_lock` would.)
//!
//! Legacy programs are not fair: Dexter's algorithm polls every 0.1 ms, so
//! when it competes with buslock users, FIFO order holds only among the
//! buslock users. A wait for the legacy lock blocks in the kernel
//! (`F_OFD_SETLKW`; a wait with a deadline through a waiter thread, see
//! `waiter`) and then leaves each unmigrated program seen recently one turn
//! between two buslock turns (see [`FAIR_WINDOW`] and [`DEFAULT_POLL`]).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::fs::{CWD, Mode, OFlags, fchmod, openat};
use rustix::io::Errno;

use crate::clock;
use crate::error::{Error, Result};
use crate::raw::semaphore::{NamedSemaphore, SemWait};
use crate::raw::sys::{RecordLock, ofd_lock, ofd_unlock};
use crate::wait::Until;

mod waiter;

use waiter::{Outcome, Waiter};

/// How long an unmigrated program counts as active after it was last seen
/// holding the legacy lock file.
pub const FAIR_WINDOW: Duration = Duration::from_secs(1);

/// The polling interval assumed for unmigrated programs unless
/// [`Builder::legacy_poll_interval`](crate::Builder::legacy_poll_interval)
/// says otherwise: Dexter's `I2C_mutex` polls every 1 ms (`DI_Mutex`
/// every 0.1 ms).
pub const DEFAULT_POLL: Duration = Duration::from_millis(1);

/// While no unmigrated program was seen within [`FAIR_WINDOW`], a buslock
/// user leaves the pollers a window after its release only this often, so
/// that a tight loop of buslock users pays for the window rarely and an
/// unmigrated program that starts polling is seen within this time.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);

/// How often a buslock user looks (`F_OFD_GETLK`) during a pause that
/// leaves unmigrated programs their turn.
const FAIR_STEP: Duration = Duration::from_micros(100);

/// Unmigrated programs seen holding the legacy lock file (see
/// [`LegacyLock::lock_record_fairly`]).
#[derive(Debug, Default)]
struct Fairness {
    /// Pid and when it was last seen holding the file.
    seen: Vec<(u32, u64)>,
    /// Pids seen holding the file since the last buslock turn.
    turns_since_ours: Vec<u32>,
    /// When a window was last opened with no unmigrated program seen.
    last_probe: u64,
}

impl Fairness {
    fn saw(&mut self, pid: u32, now: u64) {
        match self.seen.iter_mut().find(|(p, _)| *p == pid) {
            Some(entry) => entry.1 = now,
            None => self.seen.push((pid, now)),
        }
        if !self.turns_since_ours.contains(&pid) {
            self.turns_since_ours.push(pid);
        }
    }

    /// How many were seen within the window; forgets older ones.
    fn active(&mut self, now: u64) -> usize {
        let window = FAIR_WINDOW.as_nanos() as u64;
        self.seen.retain(|&(_, t)| now.saturating_sub(t) < window);
        self.seen.len()
    }

    /// How many of the active ones held the file since the last buslock
    /// turn.
    fn turns(&self) -> usize {
        self.turns_since_ours
            .iter()
            .filter(|p| self.seen.iter().any(|(s, _)| s == *p))
            .count()
    }
}

/// An open legacy companion lock.
#[derive(Debug)]
pub(crate) struct LegacyLock {
    /// The record-lock file, or the semaphore's marker file.
    path: PathBuf,
    /// The record-lock file, or the marker file.
    fd: OwnedFd,
    /// The semaphore, for a `global_lock` companion.
    sem: Option<NamedSemaphore>,
    /// Turn-taking with unmigrated programs (record locks only); used by
    /// the holder of the buslock mutex only.
    fair: std::sync::Mutex<Fairness>,
    /// The unmigrated programs' polling interval; a pause that leaves them
    /// a turn lasts at most 1.5 times as long.
    poll: Duration,
    /// `CLOCK_MONOTONIC` ns until which the window after this handle's
    /// last release of the record lock lasts (0: none).
    window_until: std::sync::atomic::AtomicU64,
    /// The descriptor holding the record lock when a waiter thread took it
    /// (None: held through `fd`, or not held).
    granted: std::sync::Mutex<Option<OwnedFd>>,
    /// A waiter thread abandoned by a wait that gave up, still in the
    /// kernel's queue: the next wait takes it up again.
    pending: std::sync::Mutex<Option<Arc<Waiter>>>,
}

/// Through which descriptor a wait got the record lock.
enum Grant {
    /// The handle's own (`LegacyLock::fd`).
    Own,
    /// A waiter thread's.
    Waiter(OwnedFd),
}

/// Why the legacy lock was not taken.
pub(crate) enum LegacyFailure {
    Busy,
    Interrupted,
    Error(Error),
}

impl LegacyLock {
    /// Open (creating 0666 if missing, never through a link) the legacy
    /// lock file.
    pub(crate) fn open(path: &Path) -> Result<LegacyLock> {
        Ok(LegacyLock {
            path: path.into(),
            fd: Self::open_file(path)?,
            sem: None,
            fair: Default::default(),
            poll: DEFAULT_POLL,
            window_until: Default::default(),
            granted: Default::default(),
            pending: Default::default(),
        })
    }

    /// Open (creating it with value 1 if missing) the named semaphore
    /// `name`, with its marker file at `marker`.
    pub(crate) fn open_semaphore(name: &str, marker: &Path) -> Result<LegacyLock> {
        let shm = PathBuf::from(format!("/dev/shm/sem.{}", name.trim_start_matches('/')));
        let sem = NamedSemaphore::open(name).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Error::Permission {
                path: shm.clone(),
                action: "open legacy semaphore",
                fix: "global_lock creates its semaphore readable by its user only (mode 0600); \
                      run the programs sharing it as one user, or chmod it"
                    .into(),
            },
            _ => Error::Io {
                path: shm.clone(),
                action: "open legacy semaphore",
                source: e,
            },
        })?;
        Ok(LegacyLock {
            path: marker.into(),
            fd: Self::open_file(marker)?,
            sem: Some(sem),
            fair: Default::default(),
            poll: DEFAULT_POLL,
            window_until: Default::default(),
            granted: Default::default(),
            pending: Default::default(),
        })
    }

    /// Assume unmigrated programs poll every `poll`.
    pub(crate) fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The polling interval assumed for unmigrated programs.
    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// The semaphore's name, for a semaphore companion.
    pub(crate) fn semaphore(&self) -> Option<&str> {
        self.sem.as_ref().map(NamedSemaphore::name)
    }

    /// The record-lock file, for a record-lock companion.
    pub(crate) fn record_path(&self) -> Option<&Path> {
        self.sem.is_none().then_some(self.path.as_path())
    }

    fn open_file(path: &Path) -> Result<OwnedFd> {
        let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let err = |action, e: Errno| match e {
            Errno::LOOP => Error::Symlink { path: path.into() },
            Errno::NOENT => Error::DirMissing {
                path: path.parent().unwrap_or(Path::new("/")).into(),
            },
            Errno::ACCESS | Errno::PERM => Error::Permission {
                path: path.into(),
                action,
                fix: "the legacy lock file must be writable by every program sharing the bus"
                    .into(),
            },
            e => Error::Io {
                path: path.into(),
                action,
                source: e.into(),
            },
        };
        let fd = match openat(CWD, path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match openat(
                    CWD,
                    path,
                    flags | OFlags::CREATE | OFlags::EXCL,
                    Mode::from_raw_mode(0o666),
                ) {
                    Ok(fd) => {
                        fchmod(&fd, Mode::from_raw_mode(0o666))
                            .map_err(|e| err("set the mode of", e))?;
                        fd
                    }
                    Err(Errno::EXIST) => openat(CWD, path, flags, Mode::empty())
                        .map_err(|e| err("open legacy lock file", e))?,
                    Err(e) => return Err(err("create legacy lock file", e)),
                }
            }
            Err(e) => return Err(err("open legacy lock file", e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| err("inspect legacy lock file", e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(Error::NotRegularFile {
                path: path.into(),
                kind: "non-regular file",
            });
        }
        Ok(fd)
    }

    fn io_error(&self, e: std::io::Error) -> LegacyFailure {
        LegacyFailure::Error(Error::Io {
            path: self.path.clone(),
            action: "lock legacy lock file",
            source: e,
        })
    }

    /// Take the legacy lock, waiting as `until` says (the rest of the
    /// buslock mutex's wait). Called while holding the buslock mutex;
    /// `owner_died`: the previous holder of the mutex died holding it.
    pub(crate) fn lock(
        &self,
        until: &mut Until<'_>,
        owner_died: bool,
    ) -> std::result::Result<(), LegacyFailure> {
        if let Some(sem) = &self.sem {
            return self.lock_semaphore(sem, until, owner_died);
        }
        if !until.is_try() {
            return self.lock_record_fairly(until);
        }
        // Within the window after this handle's own release, a try
        // declines: the pollers get their chance first (a blocking wait
        // then waits out the window, see lock_record_fairly).
        if self.coming_back() {
            return Err(LegacyFailure::Busy);
        }
        match ofd_lock(self.fd.as_fd(), false) {
            Ok(RecordLock::Taken) => Ok(()),
            Ok(RecordLock::Busy) => Err(LegacyFailure::Busy),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// The window after this handle's own release that leaves pollers
    /// their chance: 1.5 polling intervals.
    fn window(&self) -> Duration {
        self.poll + self.poll / 2
    }

    /// Whether the window after this handle's last release is still open.
    fn coming_back(&self) -> bool {
        let until = self.window_until.load(std::sync::atomic::Ordering::Relaxed);
        until != 0 && clock::monotonic_ns_syscall() < until
    }

    /// Take the record lock, waiting in the kernel's queue (no polling),
    /// and leave unmigrated programs their turns.
    ///
    /// Pollers cannot be seen until one holds the file, so a handle that
    /// comes back within 1.5 polling intervals of its own release first
    /// waits out the rest of that window (looking every 0.1 ms, and ending
    /// it as soon as a poller took the file), as Dexter's programs pause
    /// after each release. The window opens after every release while
    /// unmigrated programs were seen within [`FAIR_WINDOW`], and otherwise
    /// once per [`PROBE_EVERY`].
    ///
    /// A waiter in the kernel's queue is woken at once when an unmigrated
    /// program releases, before any poller notices; so with two or more
    /// unmigrated programs contending, buslock users would take every other
    /// turn. So each holder of the buslock mutex counts the unmigrated
    /// programs it saw holding the file (by pid, `F_OFD_GETLK`) in the last
    /// [`FAIR_WINDOW`], and keeps a grant only once each of them held the
    /// file since the last buslock turn; otherwise it releases at once and
    /// looks every 0.1 ms until one of them takes the file (then waits for
    /// it in the kernel again), at most 1.5 polling intervals. It stops deferring
    /// when nobody took the file during a pause, and after `2k + 1`
    /// deferrals. (Looking is polling, but only in these short pauses, which
    /// end as soon as a poller took its turn.)
    ///
    /// Without a deadline, signals (Ctrl-C in Python, whose handlers do
    /// not restart system calls) end the kernel wait with `EINTR`; then
    /// the interrupt check is asked. A signal that lands just before the
    /// call is seen at the next release of the legacy lock, which its
    /// holders keep short. With a deadline, a waiter thread blocks in the
    /// kernel instead (see `waiter`), and the check is asked every
    /// [`INTERRUPT_SLICE`](crate::INTERRUPT_SLICE) and during pauses.
    fn lock_record_fairly(&self, until: &mut Until<'_>) -> std::result::Result<(), LegacyFailure> {
        use crate::raw::recordlock::{Conflict, ofd_getlk};
        let mut fair = self
            .fair
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = self.window();
        // Coming straight back after this handle's own release: first leave
        // the pollers the window they leave each other (they cannot be
        // counted before one of them was seen holding the file).
        let window_until = self.window_until.load(std::sync::atomic::Ordering::Relaxed);
        if window_until != 0 {
            loop {
                let now = clock::monotonic_ns_syscall();
                if now >= window_until {
                    break;
                }
                if let Ok(Conflict::Process(pid)) = ofd_getlk(self.fd.as_fd()) {
                    fair.saw(pid, now);
                    break;
                }
                if until.passed(now) {
                    return Err(LegacyFailure::Busy);
                }
                std::thread::sleep(FAIR_STEP.min(Duration::from_nanos(window_until - now)));
                if until.ask() {
                    return Err(LegacyFailure::Interrupted);
                }
            }
        }
        let mut deferrals = 0;
        let mut idle_after_pause = false;
        loop {
            if let Ok(Conflict::Process(pid)) = ofd_getlk(self.fd.as_fd()) {
                fair.saw(pid, clock::monotonic_ns_syscall());
            }
            let grant = self.block(until)?;
            let active = fair.active(clock::monotonic_ns_syscall());
            if idle_after_pause || fair.turns() >= active || deferrals > 2 * active {
                fair.turns_since_ours.clear();
                if let Grant::Waiter(fd) = grant {
                    *self
                        .granted
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fd);
                }
                return Ok(());
            }
            match grant {
                Grant::Own => drop(ofd_unlock(self.fd.as_fd())),
                Grant::Waiter(fd) => waiter::release(fd),
            }
            deferrals += 1;
            // Give the pollers time to notice: until one takes the file,
            // or `window` passed with nobody taking it.
            let mut paused = Duration::ZERO;
            loop {
                std::thread::sleep(FAIR_STEP);
                paused += FAIR_STEP;
                if until.ask() {
                    return Err(LegacyFailure::Interrupted);
                }
                if until.passed_now() {
                    return Err(LegacyFailure::Busy);
                }
                match ofd_getlk(self.fd.as_fd()) {
                    Ok(Conflict::Process(pid)) => {
                        fair.saw(pid, clock::monotonic_ns_syscall());
                        break;
                    }
                    Ok(Conflict::None) if paused < window => {}
                    _ => {
                        idle_after_pause = true;
                        break;
                    }
                }
            }
        }
    }

    /// Wait in the kernel's queue for the record lock: on the handle's own
    /// descriptor without a deadline (asking the interrupt check after a
    /// signal), else through a waiter thread, giving up at the deadline or
    /// when the check (asked every
    /// [`INTERRUPT_SLICE`](crate::INTERRUPT_SLICE)) says so.
    fn block(&self, until: &mut Until<'_>) -> std::result::Result<Grant, LegacyFailure> {
        let Some(deadline) = until.end() else {
            loop {
                match ofd_lock(self.fd.as_fd(), true) {
                    Ok(_) => return Ok(Grant::Own),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        if until.ask() {
                            return Err(LegacyFailure::Interrupted);
                        }
                    }
                    Err(e) => return Err(self.io_error(e)),
                }
            }
        };
        match ofd_lock(self.fd.as_fd(), false) {
            Ok(RecordLock::Taken) => return Ok(Grant::Own),
            Ok(RecordLock::Busy) => {}
            Err(e) => return Err(self.io_error(e)),
        }
        let adopted = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .filter(|w| w.adopt());
        let waiter = match adopted {
            Some(w) => w,
            None => Waiter::start(&self.fd, &self.path).map_err(|e| self.io_error(e))?,
        };
        let failure = loop {
            let now = clock::monotonic_ns_syscall();
            if now >= deadline {
                break LegacyFailure::Busy;
            }
            let slice_end = until.slice_end(now).unwrap_or(deadline);
            match waiter.wait_for(Duration::from_nanos(slice_end - now)) {
                Outcome::Granted(fd) => return Ok(Grant::Waiter(fd)),
                Outcome::Failed(e) => break self.io_error(e),
                Outcome::TimedOut => {
                    if until.ask() {
                        break LegacyFailure::Interrupted;
                    }
                }
            }
        };
        if waiter.abandon() {
            *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(waiter);
        }
        Err(failure)
    }

    /// Whether the marker says the buslock holder holds the semaphore.
    fn marker(&self) -> bool {
        let mut byte = [0u8];
        matches!(rustix::io::pread(&self.fd, &mut byte, 0), Ok(1) if byte[0] == 1)
    }

    fn set_marker(&self, held: bool) -> std::result::Result<(), LegacyFailure> {
        rustix::io::pwrite(&self.fd, &[u8::from(held)], 0)
            .map(drop)
            .map_err(|e| {
                LegacyFailure::Error(Error::Io {
                    path: self.path.clone(),
                    action: "write legacy semaphore marker",
                    source: e.into(),
                })
            })
    }

    fn sem_error(&self, sem: &NamedSemaphore, e: std::io::Error) -> LegacyFailure {
        LegacyFailure::Error(Error::Io {
            path: PathBuf::from(format!(
                "/dev/shm/sem.{}",
                sem.name().trim_start_matches('/')
            )),
            action: "wait for legacy semaphore",
            source: e,
        })
    }

    fn lock_semaphore(
        &self,
        sem: &NamedSemaphore,
        until: &mut Until<'_>,
        owner_died: bool,
    ) -> std::result::Result<(), LegacyFailure> {
        if owner_died && self.marker() {
            // The dead holder held the semaphore too: give it back.
            sem.post().map_err(|e| self.sem_error(sem, e))?;
            self.set_marker(false)?;
        }
        let taken = if until.is_try() {
            sem.try_wait()
        } else if until.forever() {
            loop {
                match sem.wait() {
                    Ok(SemWait::Interrupted) => continue,
                    other => break other,
                }
            }
        } else {
            loop {
                // Wait in the kernel's queue, in slices so that the interrupt
                // check is asked at least every INTERRUPT_SLICE (and at once
                // after a signal handler ran).
                let now = clock::monotonic_ns_syscall();
                if until.passed(now) {
                    break Ok(SemWait::Busy);
                }
                let slice_end = until
                    .slice_end(now)
                    .expect("a wait that is not forever has an end or a check");
                let real_end = clock::realtime_ns_syscall() + (slice_end - now);
                match sem.wait_until(Duration::from_nanos(real_end)) {
                    Ok(SemWait::Taken) => break Ok(SemWait::Taken),
                    Ok(_) => {
                        if until.ask() {
                            return Err(LegacyFailure::Interrupted);
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        };
        match taken {
            Ok(SemWait::Taken) => {
                if let Err(e) = self.set_marker(true) {
                    let _ = sem.post();
                    return Err(e);
                }
                Ok(())
            }
            Ok(_) => Err(LegacyFailure::Busy),
            Err(e) => Err(self.sem_error(sem, e)),
        }
    }

    /// Release the legacy lock.
    pub(crate) fn unlock(&self) {
        if let Some(sem) = &self.sem {
            // Marker first: a death between the two leaves the semaphore
            // taken (as global_lock would), never posted twice.
            let _ = self.set_marker(false);
            let _ = sem.post();
            return;
        }
        // Release through the descriptor that holds the lock: a waiter
        // thread's, if one took it. Unlocking a lock we hold does not fail
        // for a valid descriptor; closing the descriptor would drop it
        // anyway.
        let granted = self
            .granted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match granted {
            Some(fd) => waiter::release(fd),
            None => drop(ofd_unlock(self.fd.as_fd())),
        }
        // Open a window for pollers after this release when unmigrated
        // programs were seen lately, and otherwise once per PROBE_EVERY, so
        // that one that started polling is seen within that time.
        let now = clock::monotonic_ns_syscall();
        let mut fair = self
            .fair
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = if fair.active(now) > 0 {
            now + self.window().as_nanos() as u64
        } else if now.saturating_sub(fair.last_probe) >= PROBE_EVERY.as_nanos() as u64 {
            fair.last_probe = now;
            now + self.window().as_nanos() as u64
        } else {
            0
        };
        self.window_until
            .store(until, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A lock's legacy companion, as recorded beside its lock file (in
/// `<name>.legacy`) by every handle opened with one, so that inspection
/// tools (`buslock state`) can show who holds it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Companion {
    /// An exclusive record lock on this file (Dexter's `DI_Mutex`,
    /// `I2C_mutex`).
    RecordLock(PathBuf),
    /// This POSIX named semaphore (`global_lock`).
    Semaphore(String),
}

/// Who holds a legacy companion, as far as the kernel tells.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyHolder {
    /// Nobody.
    Free,
    /// A buslock user: the holder of the buslock mutex.
    Buslock,
    /// A program that does not use buslock: its pid and, if still known,
    /// its name (from `/proc/<pid>/comm`, escaped for printing).
    Program {
        /// Process id.
        pid: u32,
        /// Process name.
        name: Option<String>,
    },
    /// A program that does not use buslock; which one cannot be known (a
    /// semaphore records no holder).
    Unknown,
}

fn record_path(lock_dir: &Path, name: &str) -> PathBuf {
    lock_dir.join(format!("{name}.legacy"))
}

fn marker_path(lock_dir: &Path, name: &str) -> PathBuf {
    lock_dir.join(format!("{name}.legacy-sem"))
}

impl Companion {
    fn encode(&self) -> String {
        match self {
            Companion::RecordLock(p) => format!("record {}\n", p.display()),
            Companion::Semaphore(s) => format!("semaphore {s}\n"),
        }
    }

    /// Record `self` as lock `name`'s companion in `lock_dir` (only if the
    /// record differs). Best effort: a record that cannot be written only
    /// makes `buslock state` say less.
    pub(crate) fn record(&self, lock_dir: &Path, name: &str) {
        let path = record_path(lock_dir, name);
        let absolute = match self {
            Companion::RecordLock(p) => {
                Companion::RecordLock(std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            }
            other => other.clone(),
        };
        let text = absolute.encode();
        if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
            return;
        }
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if let Ok(fd) = openat(CWD, &path, flags, Mode::from_raw_mode(0o666)) {
            let _ = fchmod(&fd, Mode::from_raw_mode(0o666));
            let _ = rustix::io::write(&fd, text.as_bytes());
        }
    }

    /// The companion recorded for lock `name` in `lock_dir`, if any.
    pub fn recorded(lock_dir: &Path, name: &str) -> Option<Companion> {
        let text = std::fs::read_to_string(record_path(lock_dir, name)).ok()?;
        let line = text.strip_suffix('\n')?;
        if let Some(p) = line.strip_prefix("record ") {
            return Some(Companion::RecordLock(p.into()));
        }
        line.strip_prefix("semaphore ")
            .map(|s| Companion::Semaphore(s.to_owned()))
    }

    /// Who holds this companion of lock `name` in `lock_dir` now, without
    /// taking or creating anything.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file or semaphore when it cannot be read.
    pub fn holder(&self, lock_dir: &Path, name: &str) -> Result<LegacyHolder> {
        match self {
            Companion::RecordLock(path) => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
                let io = |e: Errno| Error::Io {
                    path: path.clone(),
                    action: "inspect legacy lock file",
                    source: e.into(),
                };
                let fd = match openat(CWD, path, flags, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(LegacyHolder::Free),
                    Err(e) => return Err(io(e)),
                };
                use crate::raw::recordlock::{Conflict, ofd_getlk};
                Ok(
                    match ofd_getlk(fd.as_fd()).map_err(|e| Error::Io {
                        path: path.clone(),
                        action: "inspect legacy lock file",
                        source: e,
                    })? {
                        Conflict::None => LegacyHolder::Free,
                        Conflict::OpenFileDescription => LegacyHolder::Buslock,
                        Conflict::Process(pid) => LegacyHolder::Program {
                            pid,
                            name: std::fs::read_to_string(format!("/proc/{pid}/comm"))
                                .ok()
                                .map(|c| crate::escape(c.trim_end()).into_owned()),
                        },
                    },
                )
            }
            Companion::Semaphore(sem) => {
                let shm = PathBuf::from(format!("/dev/shm/sem.{}", sem.trim_start_matches('/')));
                let io = |e: std::io::Error| Error::Io {
                    path: shm.clone(),
                    action: "inspect legacy semaphore",
                    source: e,
                };
                let s = match NamedSemaphore::open_existing(sem) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(LegacyHolder::Free);
                    }
                    Err(e) => return Err(io(e)),
                };
                if s.value().map_err(io)? > 0 {
                    return Ok(LegacyHolder::Free);
                }
                let mut byte = [0u8];
                let held = std::fs::File::open(marker_path(lock_dir, name))
                    .ok()
                    .is_some_and(|f| {
                        use std::os::unix::fs::FileExt;
                        matches!(f.read_at(&mut byte, 0), Ok(1) if byte[0] == 1)
                    });
                Ok(if held {
                    LegacyHolder::Buslock
                } else {
                    LegacyHolder::Unknown
                })
            }
        }
    }
}
