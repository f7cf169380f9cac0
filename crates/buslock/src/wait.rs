//! Waiting, written once for every primitive: how long a [`Wait`] may
//! wait, the slices of an interruptible wait and the interrupt check, and
//! the step-aside that keeps a sliced waiter from starving (see
//! [`crate::starvation`]).
//!
//! A primitive that waits for a lock word implements [`Contender`] (which
//! word, how to name its errors, what to do before queueing and how to
//! step aside) and calls [`queue`] to wait and [`make_way`] after each
//! take. The legacy companions, which wait for other kinds of locks, use
//! [`Until`] alone.

use std::time::Duration;

use crate::clock;
use crate::error::{Error, Result};
use crate::raw::layout::Header;
use crate::raw::{Acquire, RawError, RawLock};
use crate::starvation;

/// How often an interruptible wait wakes to ask whether to give up.
///
/// `FUTEX_LOCK_PI` waits are not interrupted by signals, so interruptible
/// waits wait in slices of this length. Each new slice queues again behind
/// waiters that arrived meanwhile; so that such a waiter cannot starve
/// behind a queue longer than a slice, once it has waited 100 ms it asks
/// newer acquirers to step aside until it has been served (an older waiter
/// first: FIFO holds up to the slices' granularity). This holds for
/// [`crate::Mutex`] and for both sides of [`crate::RwLock`]. Plain waits
/// ([`crate::Mutex::lock`], [`crate::Mutex::lock_timeout`] and their
/// `RwLock` counterparts) keep their place in the kernel's queue.
pub const INTERRUPT_SLICE: Duration = Duration::from_millis(50);

/// How often an acquirer that stepped aside looks whether the older waiter
/// was served.
const YIELD_POLL: Duration = Duration::from_millis(1);

/// How long [`Mutex::acquire`](crate::Mutex::acquire) (and the
/// [`RwLock`](crate::RwLock)'s `acquire_read`/`acquire_write`) may wait.
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

/// `CLOCK_MONOTONIC` ns as the kernel's `timespec`.
pub(crate) fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// One wait in progress, made from a [`Wait`]: whether it may block, its
/// deadline, its interrupt check, and when it began (for the step-aside:
/// older waiters first).
pub(crate) struct Until<'a> {
    try_only: bool,
    /// `CLOCK_MONOTONIC` ns.
    end: Option<u64>,
    interrupted: Option<&'a mut dyn FnMut() -> bool>,
    /// When polling loops ([`Until::poll_check`]) ask next.
    next_ask: u64,
    /// The thread waiting, and since when (`CLOCK_MONOTONIC` ns): its rank
    /// among starving waiters.
    tid: u32,
    since: u64,
    /// Whether this wait blocked or stepped aside at all.
    waited: bool,
}

impl<'a> Until<'a> {
    /// The wait `wait` of thread `tid`, begun at `since` (`CLOCK_MONOTONIC`
    /// ns, its rank among waiters) and at `now` (`CLOCK_MONOTONIC` ns, the
    /// origin of its timeout). No system call.
    #[inline]
    pub(crate) fn new(wait: Wait<'a>, tid: u32, since: u64, now: u64) -> Self {
        let (try_only, end, interrupted) = match wait {
            Wait::Try => (true, None, None),
            Wait::Forever => (false, None, None),
            Wait::Timeout(t) => (false, Some(now.saturating_add(ns(t))), None),
            Wait::Interruptible {
                timeout,
                interrupted,
            } => (
                false,
                timeout.map(|t| now.saturating_add(ns(t))),
                Some(interrupted),
            ),
        };
        Until {
            try_only,
            end,
            interrupted,
            next_ask: now.saturating_add(ns(INTERRUPT_SLICE)),
            tid,
            since,
            waited: false,
        }
    }

    /// A try: never blocks.
    #[inline]
    pub(crate) fn is_try(&self) -> bool {
        self.try_only
    }

    /// The deadline, `CLOCK_MONOTONIC` ns.
    pub(crate) fn end(&self) -> Option<u64> {
        self.end
    }

    /// Whether an interrupt check is asked.
    pub(crate) fn interruptible(&self) -> bool {
        self.interrupted.is_some()
    }

    /// Whether neither a deadline nor a check limits the wait.
    pub(crate) fn forever(&self) -> bool {
        !self.try_only && self.end.is_none() && self.interrupted.is_none()
    }

    /// Whether the deadline passed at `now`.
    #[inline]
    pub(crate) fn passed(&self, now: u64) -> bool {
        self.end.is_some_and(|e| now >= e)
    }

    /// Whether the deadline passed now.
    pub(crate) fn passed_now(&self) -> bool {
        self.end.is_some() && self.passed(clock::monotonic_ns_syscall())
    }

    /// The deadline of the next blocking call begun at `now`: the wait's
    /// own, cut to one [`INTERRUPT_SLICE`] when interruptible; `None`:
    /// block without one.
    pub(crate) fn slice_end(&self, now: u64) -> Option<u64> {
        match self.interrupted {
            None => self.end,
            Some(_) => {
                let slice = now.saturating_add(ns(INTERRUPT_SLICE));
                Some(self.end.map_or(slice, |e| e.min(slice)))
            }
        }
    }

    /// Ask the interrupt check now: `true` when it says to stop.
    pub(crate) fn ask(&mut self) -> bool {
        self.interrupted.as_mut().is_some_and(|check| check())
    }

    /// [`Until::ask`] as an error naming lock `name`.
    pub(crate) fn check(&mut self, name: &str) -> Result<()> {
        if self.ask() {
            return Err(interrupted(name));
        }
        Ok(())
    }

    /// In a polling loop: ask the check if a slice passed since it was last
    /// asked.
    pub(crate) fn poll_check(&mut self, now: u64, name: &str) -> Result<()> {
        if self.interrupted.is_none() || now < self.next_ask {
            return Ok(());
        }
        self.next_ask = now.saturating_add(ns(INTERRUPT_SLICE));
        self.check(name)
    }

    /// When the wait began (`CLOCK_MONOTONIC` ns, as given to
    /// [`Until::new`]).
    pub(crate) fn since(&self) -> u64 {
        self.since
    }

    /// Whether the wait blocked (or stepped aside) at all.
    pub(crate) fn waited(&self) -> bool {
        self.waited
    }

    /// Note that the wait blocked.
    pub(crate) fn set_waited(&mut self) {
        self.waited = true;
    }
}

/// [`Error::Interrupted`] for lock `name`.
#[cold]
fn interrupted(name: &str) -> Error {
    Error::Interrupted {
        name: name.to_owned(),
    }
}

/// What a [`Contender`] found before queueing in the kernel.
pub(crate) enum Before {
    /// Queue.
    Queue,
    /// It took the lock meanwhile.
    Got(Acquire),
    /// The deadline passed meanwhile.
    TimedOut,
}

/// A primitive's side of waiting for its lock word.
pub(crate) trait Contender {
    /// The lock word.
    type Lock: RawLock + ?Sized;

    /// The lock word waited for.
    fn lock_word(&self) -> &Self::Lock;

    /// The lock file's header (the step-aside requests live there).
    fn header(&self) -> &Header;

    /// The lock's name, for errors.
    fn name(&self) -> &str;

    /// The lock word's refusal as this primitive reports it.
    fn raw_error(&self, e: RawError) -> Error;

    /// The kernel refused a wait with `EDEADLK`: `Ok` to wait again, or
    /// the error to report.
    fn deadlock(&self) -> Result<()> {
        Err(self.raw_error(RawError::Deadlock))
    }

    /// Before each time in the kernel's queue (a mutex confirms there that
    /// the word names its real holder).
    fn before_queue(&self, _until: &mut Until<'_>) -> Result<Before> {
        Ok(Before::Queue)
    }

    /// Release the lock word, just taken and unused, for an older waiter;
    /// `owner_died`: its previous holder died, a notice to pass on to the
    /// next holder.
    fn step_aside(&self, owner_died: bool) -> Result<()>;
}

/// Wait in the kernel's queue for `c`'s lock word as `until` says, in
/// slices when interruptible (then, past
/// [`STARVING_AFTER`](starvation::STARVING_AFTER), asking newer acquirers
/// to step aside). `None` when the deadline passed. The caller tried
/// already and lists the thread as a waiter.
pub(crate) fn queue<C: Contender + ?Sized>(
    c: &C,
    until: &mut Until<'_>,
) -> Result<Option<Acquire>> {
    until.set_waited();
    let word = c.lock_word();
    let header = c.header();
    let outcome = loop {
        match c.before_queue(until) {
            Ok(Before::Queue) => {}
            Ok(Before::Got(got)) => break Ok(got),
            Ok(Before::TimedOut) => break Ok(Acquire::Busy),
            Err(e) => break Err(e),
        }
        let now = if until.interruptible() {
            clock::monotonic_ns_syscall()
        } else {
            0
        };
        let got = match until.slice_end(now) {
            None => word.lock(),
            Some(end) => word.lock_until(timespec(end)),
        };
        match got {
            Err(RawError::Deadlock) => match c.deadlock() {
                Ok(()) => continue,
                Err(e) => break Err(e),
            },
            Ok(Acquire::Busy) if until.interruptible() => {
                if until.ask() {
                    break Err(interrupted(c.name()));
                }
                if until.passed_now() {
                    break Ok(Acquire::Busy);
                }
                // Queued again at the back: past STARVING_AFTER, ask
                // newer acquirers to let the lock pass.
                starvation::request(header, until.tid, until.since, clock::now_ns());
            }
            other => break other.map_err(|e| c.raw_error(e)),
        }
    };
    starvation::withdraw(header, until.tid);
    match outcome? {
        Acquire::Busy => Ok(None),
        got => Ok(Some(got)),
    }
}

/// What [`make_way`] decided.
pub(crate) enum Way {
    /// Keep the lock: nobody older asks for it.
    Clear,
    /// The lock was passed on and the older waiter served: take it again.
    Again,
    /// The lock was passed on and the wait ended (a try, or the deadline
    /// passed).
    GaveUp,
}

/// Just after taking `c`'s lock word (`owner_died`: with a death to
/// report): if an older interruptible waiter lost its place in the queue
/// and asks for the right of way, step aside (let the lock pass down the
/// queue to it) and wait until it was served.
#[inline]
pub(crate) fn make_way<C: Contender + ?Sized>(
    c: &C,
    until: &mut Until<'_>,
    owner_died: bool,
) -> Result<Way> {
    let header = c.header();
    if !starvation::posted(header) || !starvation::must_yield(header, until.tid, until.since) {
        return Ok(Way::Clear);
    }
    step_aside(c, until, owner_died)
}

#[cold]
fn step_aside<C: Contender + ?Sized>(
    c: &C,
    until: &mut Until<'_>,
    owner_died: bool,
) -> Result<Way> {
    let header = c.header();
    c.step_aside(owner_died)?;
    if until.is_try() {
        return Ok(Way::GaveUp);
    }
    until.set_waited();
    // Ask the check at once, then every slice.
    until.next_ask = 0;
    while starvation::must_yield(header, until.tid, until.since) {
        let now = clock::monotonic_ns_syscall();
        if until.passed(now) {
            return Ok(Way::GaveUp);
        }
        until.poll_check(now, c.name())?;
        std::thread::sleep(YIELD_POLL);
    }
    Ok(Way::Again)
}

#[cfg(test)]
mod tests {
    //! The wait loop against a plain in-process lock word (a `std` mutex
    //! and condition variable implementing [`RawLock`]), with the
    //! step-aside requests in a real lock file's header.

    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::{Condvar, Mutex as StdMutex, PoisonError};

    use super::*;
    use crate::lockfile::{LockDir, LockFile, OpenMode};
    use crate::raw::robust;

    /// A lock word held by a thread id, in this process only.
    #[derive(Default)]
    struct Plain {
        owner: StdMutex<u32>,
        freed: Condvar,
    }

    impl Plain {
        fn take(&self, deadline: Option<Timespec>) -> Acquire {
            let tid = robust::tid();
            let mut owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
            while *owner != 0 {
                let left = match deadline {
                    None => Duration::from_secs(3600),
                    Some(d) => {
                        let now = clock::monotonic_ns_syscall();
                        let end = d.tv_sec as u64 * 1_000_000_000 + d.tv_nsec as u64;
                        if now >= end {
                            return Acquire::Busy;
                        }
                        Duration::from_nanos(end - now)
                    }
                };
                owner = self
                    .freed
                    .wait_timeout(owner, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            *owner = tid;
            Acquire::Taken
        }
    }

    type Timespec = rustix::time::Timespec;

    impl RawLock for Plain {
        fn lock(&self) -> std::result::Result<Acquire, RawError> {
            Ok(self.take(None))
        }
        fn lock_until(&self, deadline: Timespec) -> std::result::Result<Acquire, RawError> {
            Ok(self.take(Some(deadline)))
        }
        fn try_lock(&self) -> std::result::Result<Acquire, RawError> {
            let mut owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
            if *owner != 0 {
                return Ok(Acquire::Busy);
            }
            *owner = robust::tid();
            Ok(Acquire::Taken)
        }
        fn unlock(&self) -> std::result::Result<(), RawError> {
            let mut owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
            if *owner != robust::tid() {
                return Err(RawError::NotOwner);
            }
            *owner = 0;
            self.freed.notify_all();
            Ok(())
        }
        fn is_locked(&self) -> bool {
            *self.owner.lock().unwrap_or_else(PoisonError::into_inner) != 0
        }
    }

    /// A primitive made of a [`Plain`] word and a lock file's header.
    struct Lock {
        word: Plain,
        file: LockFile,
        stepped_aside: AtomicU32,
    }

    impl Lock {
        fn new(dir: &std::path::Path) -> Lock {
            let dir = LockDir::resolve(Some(dir)).unwrap();
            Lock {
                word: Plain::default(),
                file: LockFile::open(&dir, "plain", OpenMode::Create).unwrap(),
                stepped_aside: AtomicU32::new(0),
            }
        }
    }

    impl Contender for Lock {
        type Lock = Plain;
        fn lock_word(&self) -> &Plain {
            &self.word
        }
        fn header(&self) -> &Header {
            &self.file.map.page().header
        }
        fn name(&self) -> &str {
            "plain"
        }
        fn raw_error(&self, e: RawError) -> Error {
            Error::NotOwner {
                name: format!("plain: {e:?}"),
            }
        }
        fn step_aside(&self, _owner_died: bool) -> Result<()> {
            self.stepped_aside.fetch_add(1, Ordering::Relaxed);
            self.word.unlock().map_err(|e| self.raw_error(e))
        }
    }

    /// Run `body` while another thread holds `lock`'s word.
    fn while_held(lock: &Lock, body: impl FnOnce()) {
        let release = AtomicBool::new(false);
        let held = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(lock.word.lock(), Ok(Acquire::Taken));
                held.store(true, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                lock.word.unlock().unwrap();
            });
            while !held.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            body();
            release.store(true, Ordering::Release);
        });
    }

    fn until<'a>(wait: Wait<'a>) -> Until<'a> {
        let now = clock::monotonic_ns_syscall();
        Until::new(wait, robust::tid(), clock::now_ns(), now)
    }

    #[test]
    fn an_interruptible_wait_asks_after_each_slice_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::new(dir.path());
        while_held(&lock, || {
            let mut asked = 0;
            {
                let mut check = || {
                    asked += 1;
                    asked == 3
                };
                let mut u = until(Wait::Interruptible {
                    timeout: None,
                    interrupted: &mut check,
                });
                let e = queue(&lock, &mut u).unwrap_err();
                assert!(matches!(e, Error::Interrupted { .. }), "{e}");
                assert!(u.waited());
            }
            assert_eq!(asked, 3);
        });
        // The wait withdrew whatever it asked for.
        assert!(!starvation::posted(lock.header()));
    }

    #[test]
    fn a_timed_wait_ends_without_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::new(dir.path());
        while_held(&lock, || {
            let mut u = until(Wait::Timeout(Duration::from_millis(20)));
            assert_eq!(queue(&lock, &mut u).unwrap(), None);
        });
        let mut u = until(Wait::Timeout(Duration::from_millis(20)));
        assert_eq!(queue(&lock, &mut u).unwrap(), Some(Acquire::Taken));
        lock.word.unlock().unwrap();
    }

    #[test]
    fn a_newer_acquirer_steps_aside_until_the_older_waiter_was_served() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::new(dir.path());
        let header = lock.header();
        // An older waiter (another thread) that has starved long enough
        // asks for the right of way.
        let older = std::thread::scope(|s| {
            s.spawn(|| {
                // Its last renewal dated ahead, so that the request
                // cannot go stale however slowly this test runs.
                let since = clock::now_ns();
                let beat = since + WAITED.as_nanos() as u64;
                starvation::request(header, robust::tid(), since, beat);
                robust::tid()
            })
            .join()
            .unwrap()
        });
        assert!(starvation::posted(header));
        // A try that took the word passes it on and gives up.
        let mut tried = until(Wait::Try);
        assert_eq!(lock.word.try_lock(), Ok(Acquire::Taken));
        assert!(matches!(
            make_way(&lock, &mut tried, false),
            Ok(Way::GaveUp)
        ));
        assert_eq!(lock.stepped_aside.load(Ordering::Relaxed), 1);
        assert!(!lock.word.is_locked());
        // A blocking wait passes it on and waits until the request is
        // withdrawn (the older waiter was served), then takes it again.
        std::thread::scope(|s| {
            let mut u = until(Wait::Forever);
            assert_eq!(lock.word.try_lock(), Ok(Acquire::Taken));
            s.spawn(|| {
                while lock.stepped_aside.load(Ordering::Relaxed) < 2 {
                    std::thread::yield_now();
                }
                starvation::withdraw(header, older);
            });
            assert!(matches!(make_way(&lock, &mut u, false), Ok(Way::Again)));
            assert!(u.waited());
        });
        // With no request, the lock is kept.
        let mut u = until(Wait::Forever);
        assert_eq!(lock.word.try_lock(), Ok(Acquire::Taken));
        assert!(matches!(make_way(&lock, &mut u, false), Ok(Way::Clear)));
        lock.word.unlock().unwrap();
    }

    /// How long the older waiter says it waited (more than
    /// `STARVING_AFTER`).
    const WAITED: Duration = Duration::from_secs(60);
}
