//! Taking and releasing: the fast path, waiting, following a replaced lock
//! file, the legacy companion lock, and the bookkeeping around them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::holder::{self, Verdict};
use super::{Held, Mutex, Wait, timespec};
use crate::clock;
use crate::error::{Error, Result};
use crate::events::{self, HoldRecord};
use crate::identity::{self, Me};
use crate::legacy::{LegacyFailure, LegacyWait};
use crate::lockfile::LockFile;
use crate::owner;
use crate::raw::mutex::{FUTEX_TID_MASK, FUTEX_WAITERS};
use crate::raw::{Acquire, RawError};
use crate::starvation;
use crate::stats;
use crate::waiters::WaiterEntry;

/// How often an acquirer that stepped aside looks whether the older waiter
/// was served.
const YIELD_POLL: Duration = Duration::from_millis(1);

/// How long a waiter refused because it queued behind other threads'
/// deadlock waits before it asks again.
const DEADLOCK_RETRY: Duration = Duration::from_millis(1);

/// What [`Mutex::confirm_holder`] found.
enum Confirmed {
    /// The word names the real holder (or the kernel decides): queue.
    Queue,
    /// This thread took the lock while polling an unconfirmed holder.
    Got(Acquire),
    /// The deadline passed while polling.
    TimedOut,
}

/// A mutex taken on the fast path that needs the slow path's care.
struct Taken {
    generation: usize,
    got: Acquire,
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

    /// Everything but the uncontended path: waiting, checking the file is
    /// still the one at the path, the legacy lock.
    #[cold]
    fn acquire_slow(&self, wait: Wait<'_>, mut taken: Option<Taken>) -> Result<Option<Held>> {
        clock::refine();
        let me = self.me();
        let start = clock::now_ns();
        let start_sys = clock::monotonic_ns_syscall();
        let deadline =
            |t: Duration| start_sys.saturating_add(t.as_nanos().min(u64::MAX as u128) as u64);
        let (try_only, end, mut interrupted) = match wait {
            Wait::Try => (true, None, None),
            Wait::Forever => (false, None, None),
            Wait::Timeout(t) => (false, Some(deadline(t)), None),
            Wait::Interruptible {
                timeout,
                interrupted,
            } => (false, timeout.map(deadline), Some(interrupted)),
        };
        let mut waited = false;
        loop {
            let (generation, got) = match taken.take() {
                Some(t) => (t.generation, t.got),
                None => {
                    let mut generation = self.chain.generation();
                    if self.chain.check_due(generation) {
                        generation = self.chain.follow_replacement(generation)?;
                    }
                    let raw = self.file(generation).map.mutex();
                    // A try asks the kernel when the word names a thread
                    // that no longer exists, so that it is taken over
                    // (ESRCH). Not for a live holder: a kernel try leaves
                    // FUTEX_WAITERS set, which costs the holder a system
                    // call at its release.
                    let tried = match raw.try_lock() {
                        Ok(Acquire::Busy)
                            if try_only
                                && !identity::thread_exists(raw.word() & FUTEX_TID_MASK) =>
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
                        Acquire::Busy if try_only => return Ok(None),
                        Acquire::Busy => {
                            waited = true;
                            let got = self.wait_raw(
                                generation,
                                &me,
                                start,
                                end,
                                interrupted.as_deref_mut(),
                            )?;
                            match got {
                                Some(got) => (generation, got),
                                None => {
                                    let page = self.file(generation).map.page();
                                    stats::on_timeout(&page.stats);
                                    return Ok(None);
                                }
                            }
                        }
                        got => (generation, got),
                    }
                }
            };
            // This thread now holds generation `generation`'s mutex.
            let owner_died = got == Acquire::OwnerDied;
            let header = &self.file(generation).map.page().header;
            if starvation::must_yield(header, me.tid, start) {
                // An older interruptible waiter lost its place in the queue:
                // let the lock pass down the queue to it.
                self.step_aside(generation, owner_died)?;
                if try_only {
                    return Ok(None);
                }
                waited = true;
                let mut next_ask = clock::monotonic_ns_syscall();
                while starvation::must_yield(header, me.tid, start) {
                    let now = clock::monotonic_ns_syscall();
                    if end.is_some_and(|e| now >= e) {
                        stats::on_timeout(&self.file(generation).map.page().stats);
                        return Ok(None);
                    }
                    if let Some(check) = interrupted.as_mut() {
                        if now >= next_ask {
                            if check() {
                                return Err(Error::Interrupted {
                                    name: self.name.clone(),
                                });
                            }
                            next_ask = now + super::INTERRUPT_SLICE.as_nanos() as u64;
                        }
                    }
                    std::thread::sleep(YIELD_POLL);
                }
                continue;
            }
            if owner_died {
                // Tell this holder about the death here; check the file at
                // the release.
                self.chain.check_soon();
            } else if self.chain.check_due(generation) {
                // Not on every contended acquisition: the check makes two
                // system calls, and here they would lengthen the hold.
                match self.chain.follow_replacement(generation) {
                    Ok(g) if g == generation => {}
                    moved => {
                        let _ = self.file(generation).map.mutex().unlock();
                        moved?;
                        continue;
                    }
                }
            }
            let file = self.file(generation);
            let wait_start = waited.then_some(start);
            let Some(legacy) = &self.legacy else {
                return Ok(Some(self.enter(
                    generation,
                    file,
                    clock::now_ns(),
                    wait_start,
                    owner_died,
                )?));
            };
            // Show this thread as the holder while it waits for the
            // legacy lock: it does hold the buslock mutex.
            let page = file.map.page();
            if owner_died {
                self.recover(generation)?;
            }
            let owner_died = owner_died || owner::death_pending(&page.owner);
            owner::write(
                &page.owner,
                &me,
                clock::now_ns(),
                owner_died,
                self.label.is_some(),
            );
            let legacy_wait = if try_only {
                LegacyWait::Try
            } else if end.is_none() && interrupted.is_none() {
                LegacyWait::Forever
            } else {
                LegacyWait::Until {
                    deadline_mono_ns: end,
                    interrupted: interrupted.as_deref_mut(),
                }
            };
            if let Err(failure) = legacy.lock(legacy_wait, owner_died) {
                return self.legacy_failed(generation, owner_died, failure, try_only);
            }
            // Recovered above: enter must not call consistent again.
            return Ok(Some(self.enter_recovered(
                generation,
                file,
                clock::now_ns(),
                wait_start,
                owner_died,
            )));
        }
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

    /// Wait for generation `generation`'s mutex, listed in the waiters
    /// table. `None` when the deadline passed.
    fn wait_raw<'f>(
        &self,
        generation: usize,
        me: &Me,
        start: u64,
        end: Option<u64>,
        mut interrupted: Option<&mut (dyn FnMut() -> bool + 'f)>,
    ) -> Result<Option<Acquire>> {
        let file = self.file(generation);
        let raw = file.map.mutex();
        let header = &file.map.page().header;
        let _listed = WaiterEntry::enter(&file.map.page().waiters, me, start);
        let outcome = loop {
            match self.confirm_holder(generation, end, interrupted.as_deref_mut())? {
                Confirmed::Queue => {}
                Confirmed::Got(got) => break Ok(got),
                Confirmed::TimedOut => break Ok(Acquire::Busy),
            }
            let Some(check) = interrupted.as_mut() else {
                let got = match end {
                    None => raw.lock(),
                    Some(end) => raw.lock_until(timespec(end)),
                };
                match got {
                    Err(RawError::Deadlock) => {
                        self.deadlock_or_retry()?;
                        continue;
                    }
                    other => break other,
                }
            };
            let slice_end =
                clock::monotonic_ns_syscall() + super::INTERRUPT_SLICE.as_nanos() as u64;
            let until = end.map_or(slice_end, |e| e.min(slice_end));
            match raw.lock_until(timespec(until)) {
                Err(RawError::Deadlock) => self.deadlock_or_retry()?,
                Ok(Acquire::Busy) => {
                    if check() {
                        starvation::withdraw(header, me.tid);
                        return Err(Error::Interrupted {
                            name: self.name.clone(),
                        });
                    }
                    if end.is_some_and(|e| clock::monotonic_ns_syscall() >= e) {
                        break Ok(Acquire::Busy);
                    }
                    // Queued again at the back: past STARVING_AFTER, ask
                    // newer acquirers to let the lock pass.
                    starvation::request(header, me.tid, start, clock::now_ns());
                }
                other => break other,
            }
        };
        starvation::withdraw(header, me.tid);
        match outcome.map_err(|e| self.raw_error(e))? {
            Acquire::Busy => Ok(None),
            got => Ok(Some(got)),
        }
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
    fn confirm_holder<'f>(
        &self,
        generation: usize,
        end: Option<u64>,
        mut interrupted: Option<&mut (dyn FnMut() -> bool + 'f)>,
    ) -> Result<Confirmed> {
        let file = self.file(generation);
        let raw = file.map.mutex();
        let rec = &file.map.page().owner;
        let mut seen = raw.word();
        if holder::judge(rec, seen, || raw.word()) == Verdict::Kernel {
            return Ok(Confirmed::Queue);
        }
        self.confirm_slow(
            file,
            end,
            &mut interrupted,
            seen & !FUTEX_WAITERS,
            &mut seen,
        )
    }

    #[cold]
    fn confirm_slow<'f>(
        &self,
        file: &LockFile,
        end: Option<u64>,
        interrupted: &mut Option<&mut (dyn FnMut() -> bool + 'f)>,
        mut same: u32,
        seen: &mut u32,
    ) -> Result<Confirmed> {
        let raw = file.map.mutex();
        let rec = &file.map.page().owner;
        let mut since = clock::monotonic_ns_syscall();
        let mut looked = false;
        let mut polls = 0;
        let mut next_ask = since + super::INTERRUPT_SLICE.as_nanos() as u64;
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
                            return Ok(Confirmed::Got(got));
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
                    return Ok(Confirmed::Got(got));
                }
            }
            if end.is_some_and(|e| now >= e) {
                return Ok(Confirmed::TimedOut);
            }
            if let Some(check) = interrupted.as_mut() {
                if now >= next_ask {
                    if check() {
                        return Err(Error::Interrupted {
                            name: self.name.clone(),
                        });
                    }
                    next_ask = now + super::INTERRUPT_SLICE.as_nanos() as u64;
                }
            }
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
                Ok(got) => return Ok(Confirmed::Got(got)),
                Err(e) => return Err(self.raw_error(e)),
            }
            *seen = raw.word();
            if holder::judge(rec, *seen, || raw.word()) == Verdict::Kernel {
                return Ok(Confirmed::Queue);
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
