//! Taking and releasing: the fast path, and the slow path's concerns each
//! in a function of its own: waiting (through [`crate::wait`], which also
//! steps aside for starving interruptible waiters), following a replaced
//! lock file, the legacy companion lock, and the bookkeeping around them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::holder::{self, Verdict};
use super::{Held, Mutex, Wait};
use crate::clock;
use crate::error::{Error, Result};
use crate::events::{self, HoldRecord};
use crate::identity::{self, Me};
use crate::legacy::{LegacyFailure, LegacyLock};
use crate::lockfile::LockFile;
use crate::owner;
use crate::raw::layout::Header;
use crate::raw::mutex::{FUTEX_TID_MASK, FUTEX_WAITERS};
use crate::raw::{Acquire, RawError, RawMutex};
use crate::starvation;
use crate::stats;
use crate::wait::{self, Before, Contender, Until, Way};
use crate::waiters::WaiterEntry;

/// How long a waiter refused because it queued behind other threads'
/// deadlock waits before it asks again.
const DEADLOCK_RETRY: Duration = Duration::from_millis(1);

/// A mutex taken on the fast path that needs the slow path's care.
struct Taken {
    generation: usize,
    got: Acquire,
}

/// The lock word of one lock file generation of a [`Mutex`], as the wait
/// loop sees it.
struct Word<'m> {
    mutex: &'m Mutex,
    generation: usize,
}

impl Contender for Word<'_> {
    type Lock = RawMutex;

    fn lock_word(&self) -> &RawMutex {
        self.mutex.file(self.generation).map.mutex()
    }

    fn header(&self) -> &Header {
        &self.mutex.file(self.generation).map.page().header
    }

    fn name(&self) -> &str {
        &self.mutex.name
    }

    fn raw_error(&self, e: RawError) -> Error {
        self.mutex.raw_error(e)
    }

    fn deadlock(&self) -> Result<()> {
        self.mutex.deadlock_or_retry()
    }

    fn before_queue(&self, until: &mut Until<'_>) -> Result<Before> {
        self.mutex.confirm_holder(self.generation, until)
    }

    fn step_aside(&self, owner_died: bool) -> Result<()> {
        self.mutex.step_aside(self.generation, owner_died)
    }
}

impl Mutex {
    /// Take the lock without a guard (for language bindings). Returns
    /// `Ok(None)` when `wait` gave up at its timeout or was [`Wait::Try`].
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`] and [`Mutex::lock_interruptible`].
    #[inline(always)]
    pub fn acquire(&self, wait: Wait<'_>) -> Result<Option<Held>> {
        // Lock order: checked before anything may block, recorded once held.
        let order = self.lockdep.before(matches!(wait, Wait::Try))?;
        let got = self.acquire_unchecked(wait);
        if let Ok(Some(_)) = got {
            self.lockdep.acquired(order);
        }
        got
    }

    /// [`Mutex::acquire`] without the lock-order hooks.
    #[inline(always)]
    fn acquire_unchecked(&self, wait: Wait<'_>) -> Result<Option<Held>> {
        let generation = self.chain.generation();
        let file = self.file(generation);
        let got = match file.map.mutex().try_lock() {
            // A try looks further in the slow path, so that a word naming
            // a vanished thread is taken over.
            Ok(Acquire::Busy) => return self.acquire_slow(wait, None),
            Ok(got) => got,
            Err(RawError::WouldDeadlock) => return self.acquire_slow(wait, None),
            Err(e) => return Err(self.raw_error(e)),
        };
        let header = &file.map.page().header;
        if self.legacy.is_some()
            || self.chain.needs_attention()
            || header.retired.load(Ordering::Relaxed) != 0
            || starvation::posted(header)
        {
            return self.acquire_slow(wait, Some(Taken { generation, got }));
        }
        Ok(Some(self.enter(
            generation,
            file,
            clock::now_ns(),
            None,
            got == Acquire::OwnerDied,
        )?))
    }

    /// Everything but the uncontended path, one concern per step: take
    /// (waiting), step aside for an older starving waiter, check that the
    /// file is still the one at the path, take the legacy lock, and the
    /// bookkeeping.
    #[cold]
    fn acquire_slow(&self, wait: Wait<'_>, mut taken: Option<Taken>) -> Result<Option<Held>> {
        clock::refine();
        let me = self.me();
        let start = clock::now_ns();
        let mut until = Until::new(wait, me.tid, start, clock::monotonic_ns_syscall());
        loop {
            let (generation, got) = match taken.take() {
                Some(t) => (t.generation, t.got),
                None => {
                    let generation = self.generation_to_lock()?;
                    match self.take(generation, &mut until, &me)? {
                        Some(got) => (generation, got),
                        None => return Ok(None),
                    }
                }
            };
            // This thread now holds generation `generation`'s mutex.
            let owner_died = got == Acquire::OwnerDied;
            match wait::make_way(&self.word(generation), &mut until, owner_died)? {
                Way::Clear => {}
                Way::Again => continue,
                Way::GaveUp => return Ok(self.gave_up(generation, &until)),
            }
            if !self.still_current(generation, owner_died)? {
                continue;
            }
            let wait_start = until.waited().then_some(start);
            return match &self.legacy {
                None => {
                    let file = self.file(generation);
                    let now = clock::now_ns();
                    Ok(Some(
                        self.enter(generation, file, now, wait_start, owner_died)?,
                    ))
                }
                Some(legacy) => {
                    self.enter_with_legacy(legacy, generation, &mut until, wait_start, owner_died)
                }
            };
        }
    }

    /// Generation `generation`'s lock word, for the wait loop.
    fn word(&self, generation: usize) -> Word<'_> {
        Word {
            mutex: self,
            generation,
        }
    }

    /// Take generation `generation`'s mutex: try, then wait as `until`
    /// says, listed in the waiters table. `None` when it is busy (a try)
    /// or the deadline passed.
    fn take(&self, generation: usize, until: &mut Until<'_>, me: &Me) -> Result<Option<Acquire>> {
        let file = self.file(generation);
        let raw = file.map.mutex();
        // A try asks the kernel when the word names a thread that no
        // longer exists, so that it is taken over (ESRCH). Not for a live
        // holder: a kernel try leaves FUTEX_WAITERS set, which costs the
        // holder a system call at its release.
        let tried = match raw.try_lock() {
            Ok(Acquire::Busy)
                if until.is_try() && !identity::thread_exists(raw.word() & FUTEX_TID_MASK) =>
            {
                raw.try_lock_kernel()
            }
            other => other,
        };
        let tried = match tried {
            Err(RawError::WouldDeadlock) => self.own_word(generation),
            other => other.map_err(|e| self.raw_error(e)),
        };
        match tried? {
            Acquire::Busy if until.is_try() => Ok(None),
            Acquire::Busy => {
                let got = {
                    let page = file.map.page();
                    let _listed = WaiterEntry::enter(&page.waiters, me, until.since());
                    wait::queue(&self.word(generation), until)?
                };
                if got.is_none() {
                    stats::on_timeout(&file.map.page().stats);
                }
                Ok(got)
            }
            got => Ok(Some(got)),
        }
    }

    /// The wait ended without the lock after stepping aside: count a
    /// timeout (not a try).
    #[cold]
    fn gave_up(&self, generation: usize, until: &Until<'_>) -> Option<Held> {
        if !until.is_try() {
            stats::on_timeout(&self.file(generation).map.page().stats);
        }
        None
    }

    /// The generation to lock: the one in use, or the file that replaced
    /// it at the path when a check is due.
    fn generation_to_lock(&self) -> Result<usize> {
        let generation = self.chain.generation();
        if self.chain.check_due(generation) {
            return self.chain.follow_replacement(generation);
        }
        Ok(generation)
    }

    /// Holding generation `generation`'s mutex: whether to keep it. `false`
    /// when the file was replaced at its path (the mutex was released
    /// again: take the new file's).
    fn still_current(&self, generation: usize, owner_died: bool) -> Result<bool> {
        if owner_died {
            // Tell this holder about the death here; check the file at
            // the release.
            self.chain.check_soon();
            return Ok(true);
        }
        if !self.chain.check_due(generation) {
            // Not on every contended acquisition: the check makes two
            // system calls, and here they would lengthen the hold.
            return Ok(true);
        }
        match self.chain.follow_replacement(generation) {
            Ok(g) if g == generation => Ok(true),
            moved => {
                let _ = self.file(generation).map.mutex().unlock();
                moved?;
                Ok(false)
            }
        }
    }

    /// Holding generation `generation`'s mutex: take the legacy companion
    /// lock as the rest of `until` says, then the bookkeeping; on failure
    /// release the mutex again.
    fn enter_with_legacy(
        &self,
        legacy: &LegacyLock,
        generation: usize,
        until: &mut Until<'_>,
        wait_start: Option<u64>,
        owner_died: bool,
    ) -> Result<Option<Held>> {
        // Show this thread as the holder while it waits for the legacy
        // lock: it does hold the buslock mutex.
        let file = self.file(generation);
        let page = file.map.page();
        if owner_died {
            self.recover(generation)?;
        }
        let owner_died = owner_died || owner::death_pending(&page.owner);
        owner::write(
            &page.owner,
            &self.me(),
            clock::now_ns(),
            owner_died,
            self.label.is_some(),
        );
        if let Err(failure) = legacy.lock(until, owner_died) {
            return self.legacy_failed(generation, owner_died, failure, until.is_try());
        }
        // Recovered above: enter must not call consistent again.
        Ok(Some(self.enter_recovered(
            generation,
            file,
            clock::now_ns(),
            wait_start,
            owner_died,
        )))
    }

    /// The lock word names this thread: recursion if the owner record says
    /// this thread holds the lock; otherwise the word is stale (a lock file
    /// saved while held, whose holder's TID is this thread's now) and is
    /// taken over as from a dead holder.
    #[cold]
    fn own_word(&self, generation: usize) -> std::result::Result<Acquire, Error> {
        let file = self.file(generation);
        if owner::is_me(&file.map.page().owner, &identity::me()) {
            return Err(Error::Recursive {
                name: self.name.clone(),
            });
        }
        let raw = file.map.mutex();
        raw.take_over_stale(raw.word())
            .ok_or_else(|| self.raw_error(RawError::Other(libc::EAGAIN)))
    }

    /// The kernel refused the wait with `EDEADLK`. Its chain walk also
    /// refuses a waiter that is not part of a cycle but queues behind one
    /// (a cycle of other threads, about to be broken by one of them): only
    /// a cycle that comes back to this thread is this thread's deadlock.
    /// `Ok` means: wait again (after a moment, for the others' victim to
    /// let go).
    #[cold]
    fn deadlock_or_retry(&self) -> Result<()> {
        match crate::deadlock::find(self.chain.dir(), &self.name) {
            crate::deadlock::Cycle::Others => {
                std::thread::sleep(DEADLOCK_RETRY);
                Ok(())
            }
            crate::deadlock::Cycle::Mine(cycle) => Err(Error::Deadlock {
                name: self.name.clone(),
                cycle,
            }),
        }
    }

    /// Before queueing in the kernel: make sure the word names the real
    /// holder (see `holder.rs`); poll while it is unconfirmed, and take a
    /// stale word over.
    fn confirm_holder(&self, generation: usize, until: &mut Until<'_>) -> Result<Before> {
        let file = self.file(generation);
        let raw = file.map.mutex();
        let rec = &file.map.page().owner;
        let mut seen = raw.word();
        if holder::judge(rec, seen, || raw.word()) == Verdict::Kernel {
            return Ok(Before::Queue);
        }
        self.confirm_slow(file, until, seen & !FUTEX_WAITERS, &mut seen)
    }

    #[cold]
    fn confirm_slow(
        &self,
        file: &LockFile,
        until: &mut Until<'_>,
        mut same: u32,
        seen: &mut u32,
    ) -> Result<Before> {
        let raw = file.map.mutex();
        let rec = &file.map.page().owner;
        let mut since = clock::monotonic_ns_syscall();
        let mut looked = false;
        let mut polls = 0;
        loop {
            let now = clock::monotonic_ns_syscall();
            if *seen & !FUTEX_WAITERS != same {
                same = *seen & !FUTEX_WAITERS;
                since = now;
                looked = false;
            }
            let unconfirmed_ns = now.saturating_sub(since);
            if !looked && unconfirmed_ns >= holder::LOOK_AFTER.as_nanos() as u64 {
                looked = true;
                match holder::cannot_hold(file, *seen) {
                    Some(true) => {
                        if let Some(got) = raw.take_over_stale(*seen) {
                            return Ok(Before::Got(got));
                        }
                    }
                    // It maps the file: a holder between its word and its
                    // record. Wait as long as it takes.
                    Some(false) => since = u64::MAX,
                    None => {}
                }
            } else if looked
                && since != u64::MAX
                && unconfirmed_ns >= holder::STALE_AFTER.as_nanos() as u64
            {
                if let Some(got) = raw.take_over_stale(*seen) {
                    return Ok(Before::Got(got));
                }
            }
            if until.passed(now) {
                return Ok(Before::TimedOut);
            }
            until.poll_check(now, &self.name)?;
            // A new holder between its word and its record is done in
            // microseconds: look again at once a few times (keeping this
            // waiter's place close to where it arrived), then poll.
            polls += 1;
            if polls <= holder::QUICK_LOOKS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(holder::POLL);
            }
            match raw.try_lock() {
                Ok(Acquire::Busy) => {}
                Ok(got) => return Ok(Before::Got(got)),
                Err(e) => return Err(self.raw_error(e)),
            }
            *seen = raw.word();
            if holder::judge(rec, *seen, || raw.word()) == Verdict::Kernel {
                return Ok(Before::Queue);
            }
        }
    }

    /// Release a mutex just taken, unused, for an older waiter; a death
    /// found on the way is passed on to the next holder.
    #[cold]
    fn step_aside(&self, generation: usize, owner_died: bool) -> Result<()> {
        let page = self.file(generation).map.page();
        if owner_died {
            self.recover(generation)?;
            owner::set_death_pending(&page.owner);
        }
        let _ = self.file(generation).map.mutex().unlock();
        Ok(())
    }

    /// The legacy companion lock was not taken: release the mutex again,
    /// keeping a death notice for the next holder.
    #[cold]
    fn legacy_failed(
        &self,
        generation: usize,
        owner_died: bool,
        failure: LegacyFailure,
        try_only: bool,
    ) -> Result<Option<Held>> {
        let page = self.file(generation).map.page();
        // The mutex was made consistent before the legacy wait.
        owner::clear(&page.owner);
        if owner_died || owner::death_pending(&page.owner) {
            owner::set_death_pending(&page.owner);
        }
        let _ = self.file(generation).map.mutex().unlock();
        match failure {
            LegacyFailure::Busy => {
                if !try_only {
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
    #[inline(always)]
    fn enter(
        &self,
        generation: usize,
        file: &LockFile,
        now: u64,
        wait_start: Option<u64>,
        owner_died: bool,
    ) -> Result<Held> {
        if owner_died {
            self.recover(generation)?;
        }
        Ok(self.enter_recovered(generation, file, now, wait_start, owner_died))
    }

    /// [`Mutex::enter`] once the mutex is consistent.
    #[inline(always)]
    fn enter_recovered(
        &self,
        generation: usize,
        file: &LockFile,
        now: u64,
        wait_start: Option<u64>,
        owner_died: bool,
    ) -> Held {
        let me = self.me();
        let page = file.map.page();
        // A holder that died before a legacy-lock failure handed the lock
        // on: report its death now.
        let owner_died = owner_died || owner::death_pending(&page.owner);
        let waited = wait_start.map(|s| now.saturating_sub(s));
        owner::write(&page.owner, &me, now, owner_died, self.label.is_some());
        stats::on_acquire(&page.stats, waited, owner_died);
        self.held.store(true, Ordering::Relaxed);
        Held::new(waited.unwrap_or(0), me.tid, generation, owner_died)
    }

    /// After taking over from a dead holder (the lock word is already
    /// consistent again): repair what it may have left half-written.
    #[cold]
    fn recover(&self, generation: usize) -> Result<()> {
        let file = self.file(generation);
        owner::repair(&file.map.page().owner);
        crate::waiters::reap(&file.map.page().waiters);
        Ok(())
    }

    /// Bookkeeping and unlock. The caller checked that it holds the lock.
    #[inline(always)]
    pub(super) fn exit(&self, held: &Held, abandoned: bool) -> std::result::Result<(), RawError> {
        self.lockdep.released();
        let generation = held.generation();
        let file = self.file(generation);
        let page = file.map.page();
        let me = &self.me();
        let now = clock::now_ns();
        let acquired_ns = owner::acquired_ns(&page.owner);
        let held_ns = now.saturating_sub(acquired_ns);
        stats::on_release(&page.stats, me, held_ns, acquired_ns);
        events::push(
            &page.events,
            me,
            &HoldRecord {
                acquired_mono_ns: acquired_ns,
                waited_ns: held.waited().as_nanos() as u64,
                held_ns,
                owner_died: held.previous_owner_died(),
            },
        );
        if let Some(legacy) = &self.legacy {
            legacy.unlock();
        }
        owner::clear(&page.owner);
        if abandoned {
            owner::set_death_pending(&page.owner);
        }
        self.held.store(false, Ordering::Relaxed);
        let unlocked = file.map.mutex().unlock();
        if self.chain.release_check_due(generation, now) {
            self.chain.check_after_release(generation);
        }
        unlocked
    }
}
