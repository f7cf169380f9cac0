//! [`RwLock`]: a readers-writer lock across processes that survives its
//! readers and writers dying.
//!
//! # How it works (and why)
//!
//! A readers-writer lock file ([`crate::raw::RwPage`]) holds the same lock
//! word as a mutex (buslock's robust PI futex word, [`RawMutex`]) plus a
//! table of [`READER_SLOTS`] reader slots and a drain counter.
//!
//! - **Writers** take the word, exactly as a [`crate::Mutex`] does: the
//!   kernel queues them by priority (FIFO among equals), lends the holder
//!   the priority of its waiters, hands the word over at release and marks
//!   it when its holder dies. Holding the word, a writer waits until no
//!   reader slot is taken ("drain"): it sleeps (`FUTEX_WAIT`) on the drain
//!   counter, which every leaving reader bumps and wakes, in slices of
//!   [`DEAD_READER_CHECK`]: a reader that died cannot wake it, so at each
//!   slice the writer frees and counts the slots of readers that no
//!   longer exist.
//! - **Readers**, when the word is free, claim a slot and check that the
//!   word is still free (a sequentially consistent handshake: the reader
//!   claims and sets its slot's bit in a bitmap, then looks at the word;
//!   the writer takes the word, then looks at the bitmap; one of the two
//!   sees the other). That is the fast path: a compare-and-swap on the
//!   slot, an atomic OR on the bitmap, two loads of the word and no system
//!   call (release: an atomic AND, two stores, one load). When the word is held
//!   (a writer writes, or waits for readers to drain), a reader queues *for
//!   the word* like a writer, takes it, claims its slot and hands the word
//!   on at once. So:
//!   - once a writer waits, new readers queue behind it (writers are not
//!     starved);
//!   - the queue is one FIFO of readers and writers: readers that queued
//!     while a writer held are admitted one after the other as the word is
//!     handed on (each in a few microseconds) and then read together, up
//!     to the next queued writer; with writers back to back, a reader
//!     queued between them gets in between;
//!   - a writer that died in the middle of its work is reported to the
//!     next holder of the word, reader or writer
//!     ([`ReadGuard::previous_owner_died`]), once (see below for which
//!     deaths those are);
//!   - queued readers lend their priority to the writer holding the word
//!     (priority inheritance).
//! - **What a reader does not get**: priority inheritance *towards readers*.
//!   A PI futex word names one owner; the readers that hold the lock are
//!   not in the word, so a writer waiting for readers to drain cannot lend
//!   them its priority (no cross-process readers-writer lock on Linux
//!   can: the kernel's PI needs a single owner). Keep read sections short.
//! - **Dead readers** are found by their slot: (pid, tid, process start
//!   time) of a thread that is gone, or a pid that now names another
//!   process, is dead; its share is freed and counted
//!   ([`RwStats::reader_deaths`]). A writer finds one within one
//!   [`DEAD_READER_CHECK`] of starting to wait for it.
//! - **Which death is told**: the kernel marks the word when its holder
//!   dies, but clears the holder's thread id, so who held it is read from
//!   the writer's record instead: a writer writes it once it has the lock
//!   to itself (the readers drained), just before its guard is returned,
//!   and clears it just before it lets go. A holder of the word that died
//!   while the record names a writer died in the middle of its work: the
//!   next holder is told. Any other holder that died changed nothing: a
//!   writer waiting for readers to leave, one that had finished, or a
//!   reader being admitted, at any point (even before it could mark
//!   itself: the kernel hands the word to a queued reader inside the
//!   release, so it may die holding the word before it runs again); nobody
//!   is told. A holder that was told of a death and dies (or gives up)
//!   before its acquisition returns leaves the notice in `death_pending`
//!   for the next holder, counted once. A reader being admitted still
//!   writes its thread id in the admitting field, so that its death there
//!   is counted as a reader's.
//! - **`downgrade`** claims a reader slot while still holding the word and
//!   only then hands the word on: a writer queued for the word gets it and
//!   then waits for that slot to drain; nobody gets in between.
//! - **Recursion**: a second read from the thread that reads, and a write
//!   from a thread that reads, are [`Error::RecursiveRw`] (with writers
//!   preferred the first could deadlock behind a waiting writer, the second
//!   always deadlocks); a second write is [`Error::Recursive`].
//! - **A guard dropped while its thread panics**: a writer's release is
//!   reported to the next holder of either kind as a death (like std's
//!   poisoning, and as [`crate::Mutex`] does); a reader changed nothing, so
//!   its release is an ordinary one.
//!
//! - **Events**: every read and write hold is recorded at its release in
//!   the page's event ring (the mutex's ring and [`Event`], with
//!   [`Event::read`]), and so are the holders found dead ([`Event::died`]):
//!   a reader whose share a writer (or a reader waiting for a slot) freed,
//!   a writer whose death the next holder was told of. Readers release at
//!   the same time, so each claims its event's number with an atomic add
//!   (see `events.rs`); a read's release records its event before it
//!   gives its share back, so that no reader records while a writer holds
//!   the lock and a writer records its own with plain stores. Reads are
//!   counted in the reader's slot ([`crate::raw::layout::ReaderSlot`]),
//!   which only its holder writes, not in one shared counter: the
//!   uncontended read path has four locked instructions (claim the slot,
//!   set and clear its bit, claim the event's number).
//! - **A replaced lock file** is followed as a mutex follows it, by the
//!   same lock-file handle ([`crate::lockfile::Handle`]): checked before
//!   and after a wait and at release at most every
//!   [`crate::CHECK_INTERVAL`] (at once when another user retired the
//!   file: the fast paths look at the retired flag), and by inspection.
//!   Each hold remembers its file generation, so it is released where it
//!   was taken.
//!
//! - **Interruptible waits** queue for the word in slices of
//!   [`crate::INTERRUPT_SLICE`], as a mutex's do, and through the same wait
//!   loop (`src/wait.rs`): a reader or writer that has waited
//!   100 ms asks newer takers of the word (readers and writers) to step
//!   aside until it is served, so a queue longer than a slice cannot starve
//!   it. A holder that steps aside with a death notice leaves it in
//!   `death_pending` for the next holder.
//!
//! Not (yet) done for readers-writer locks, unlike [`crate::Mutex`]:
//! legacy companions.

mod guard;
mod held;
mod readers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use guard::{ReadGuard, ReadHeld, WriteGuard, WriteHeld};
pub use readers::Reader;

use crate::clock;
use crate::error::{Error, Result};
use crate::events::{self, Event, HoldRecord, RwEvent, Who};
use crate::identity::{self, Me};
use crate::lockfile::{Handle, IntoLockName, LockDir, LockFile, OpenMode};
use crate::options::Options;
use crate::owner::{self, Owner};
use crate::raw::futex::{self, Woken};
use crate::raw::layout::{
    DEATH_ABANDONED, DEATH_CARRIED, FLAG_OWNER_DIED, Header, READER_SLOTS, TEXT_BYTES, WAITER_SLOTS,
};
use crate::raw::{Acquire, RawError, RawMutex, RwPage};
use crate::starvation;
use crate::stats::{self, Stats};
use crate::wait::{self, Contender, Until, Wait, Way};
use crate::waiters::{self, Scan, Waiter, WaiterEntry};

use held::Hold;

/// How often a writer waiting for readers to drain looks for readers that
/// died (they cannot wake it).
pub const DEAD_READER_CHECK: Duration = Duration::from_millis(10);

/// Writers list themselves in the first half of the waiters table,
/// readers in the second.
const WRITER_WAITERS: core::ops::Range<usize> = 0..WAITER_SLOTS / 2;
const READER_WAITERS: core::ops::Range<usize> = WAITER_SLOTS / 2..WAITER_SLOTS;

/// A named readers-writer lock shared by every process and thread on this
/// machine that opens the same name in the same lock directory: many
/// readers or one writer.
///
/// Unlike `pthread_rwlock` with `PTHREAD_PROCESS_SHARED`, a reader that
/// dies frees its share and a writer that dies is reported; unlike
/// `flock`'s shared locks, writers are not starved, holders are known and
/// a writer gets priority inheritance.
///
/// # Semantics
///
/// - **Exclusion**: any number of threads read at once; a writer is alone.
/// - **Crash safety**: a dead reader's share is freed (a writer waiting for
///   it finds it within [`DEAD_READER_CHECK`]); a dead writer's lock is
///   released and, if it died while writing (with its guard), the next
///   holder of either kind is told ([`WriteGuard::previous_owner_died`],
///   [`ReadGuard::previous_owner_died`]); a writer that died still waiting
///   for readers to leave wrote nothing, and nobody is told.
/// - **A replaced lock file**: followed as [`crate::Mutex`] follows it
///   (see there and RELIABILITY.md).
/// - **Fairness**: once a writer waits, new readers queue behind it; the
///   queue is served in priority order, FIFO among equals, readers that
///   follow one another in it reading together.
/// - **Discipline**: guards are `!Send`; recursion is an error, not a hang.
///
/// See the module source (`rwlock/mod.rs`) for the protocol and why it
/// keeps these promises; docs/RELIABILITY.md for the limits.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let table = buslock::RwLock::builder("calibration").dir(dir.path()).open()?;
/// {
///     let r1 = table.read()?;
///     // ... other threads and processes may read at the same time ...
/// }
/// let w = table.write()?;
/// // ... rewrite the table, alone ...
/// let r = w.downgrade(); // now a reader, with no moment for another writer
/// drop(r);
/// # Ok::<(), buslock::Error>(())
/// ```
pub struct RwLock {
    name: String,
    /// The lock file and those that replaced it at the path.
    chain: Handle<RwPage>,
    label: Option<&'static [u8; TEXT_BYTES]>,
    lockdep: crate::lockdep::Class,
    /// Set while a thread writes through this handle (written only under
    /// the word): dropping the handle then keeps the memory mapped (a
    /// leaked write guard leaves the word on the thread's robust list). A
    /// leaked read guard needs nothing: it is never touched again.
    writing: AtomicBool,
}

/// How an [`RwLock`] is opened: [`RwLock::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .open() is called"]
pub struct RwBuilder {
    options: Options,
}

impl RwBuilder {
    /// Use lock directory `dir` instead of the default.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.dir(dir.into());
        self
    }

    /// Whether to create the lock file if it does not exist (default:
    /// yes).
    pub fn create(mut self, create: bool) -> Self {
        self.options.create(create);
        self
    }

    /// Show `label` instead of the program name in the writer record,
    /// reader slots and waiters.
    pub fn label(mut self, label: &str) -> Self {
        self.options.label(label);
        self
    }

    /// Lock-order checking mode for this handle (default: from
    /// `BUSLOCK_LOCKDEP`).
    pub fn lockdep(mut self, mode: crate::lockdep::Mode) -> Self {
        self.options.lockdep(mode);
        self
    }

    /// Open (or create) the lock.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], every lock-directory and lock-file error of
    /// [`crate::Mutex::open`], and [`Error::WrongKind`] when the name is a
    /// mutex's.
    pub fn open(self) -> Result<RwLock> {
        let options = &self.options;
        let name = options.name.get()?;
        identity::warm_up();
        clock::refine();
        let dir = LockDir::resolve(options.dir.as_deref())?;
        let chain = Handle::open(dir, name.as_str(), options.mode)?;
        Ok(RwLock {
            lockdep: crate::lockdep::Class::open(
                chain.dir(),
                name,
                options.lockdep,
                options.mode == OpenMode::Create,
            ),
            name: name.to_string(),
            chain,
            label: options.interned_label(),
            writing: AtomicBool::new(false),
        })
    }
}

/// Statistics of a readers-writer lock: the write side as for a mutex,
/// plus the read side.
#[derive(Debug, Clone)]
pub struct RwStats {
    /// Writes: acquisitions, waits, hold times, timeouts, as
    /// [`crate::Mutex::stats`] counts them.
    pub writes: Stats,
    /// Read acquisitions.
    pub reads: u64,
    /// Read acquisitions that had to wait.
    pub reads_contended: u64,
    /// Total time reads waited.
    pub read_wait: Duration,
    /// Read waits that gave up at their timeout.
    pub read_timeouts: u64,
    /// Readers found dead and freed.
    pub reader_deaths: u64,
    /// Writers that died while writing (or ended abandoned), as reported
    /// to the next holder.
    pub writer_deaths: u64,
}

/// The writers' word of one lock file generation of an [`RwLock`], as
/// the wait loop sees it.
struct RwWord<'a> {
    rw: &'a RwLock,
    g: usize,
}

impl Contender for RwWord<'_> {
    type Lock = RawMutex;

    fn lock_word(&self) -> &RawMutex {
        self.rw.word_at(self.g)
    }

    fn header(&self) -> &Header {
        &self.rw.page_at(self.g).header
    }

    fn name(&self) -> &str {
        &self.rw.name
    }

    fn raw_error(&self, e: RawError) -> Error {
        self.rw.raw_error(e)
    }

    fn step_aside(&self, _owner_died: bool) -> Result<()> {
        // A death notice stays in death_pending (DEATH_CARRIED, stored when
        // it was told) for the next holder of either kind.
        let _ = self.rw.word_at(self.g).unlock();
        Ok(())
    }
}

impl RwLock {
    /// Open readers-writer lock `name` in the default lock directory
    /// (as [`crate::Mutex::open`]), creating it if needed.
    ///
    /// # Errors
    ///
    /// See [`RwBuilder::open`].
    pub fn open(name: impl IntoLockName) -> Result<RwLock> {
        RwLock::builder(name).open()
    }

    /// Start configuring how to open readers-writer lock `name`.
    pub fn builder(name: impl IntoLockName) -> RwBuilder {
        RwBuilder {
            options: Options::new(name),
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        self.chain.path()
    }

    /// The lock directory.
    pub fn dir(&self) -> &Path {
        self.chain.dir().path()
    }

    /// The page of lock file generation `generation`.
    #[inline]
    fn page_at(&self, generation: usize) -> &RwPage {
        self.chain.page(generation)
    }

    /// The writers' word of lock file generation `generation`.
    #[inline]
    fn word_at(&self, generation: usize) -> &RawMutex {
        &self.page_at(generation).mutex.mutex
    }

    /// The page of the file in use, for inspection: that of the file now
    /// at the lock path (or, if that cannot be opened, the one in use).
    fn page_to_read(&self) -> &RwPage {
        self.chain
            .page_to_read()
            .unwrap_or_else(|_| self.chain.current_page())
    }

    /// Which file generation `generation` is, for the table of what this
    /// thread holds.
    #[inline]
    fn key(&self, generation: usize) -> held::Key {
        self.chain.file(generation).id
    }

    #[inline]
    fn me(&self) -> Me {
        let mut me = identity::me();
        if let Some(label) = self.label {
            me.program = label;
        }
        me
    }

    fn raw_error(&self, e: RawError) -> Error {
        crate::error::from_raw(e, &self.name, self.chain.dir(), self.chain.path())
    }

    /// A read after a read, or a write after a read, from this thread. (A
    /// write after a write, or a read after a write, is seen by the word:
    /// it names this thread.)
    #[inline]
    fn recursion(&self, wanted: Hold) -> Result<()> {
        // Every file this handle used: a read kept on a replaced file is
        // still this thread's.
        if (0..=self.chain.generation()).all(|g| held::get(self.key(g)).is_none()) {
            return Ok(());
        }
        Err(self.recursive("reading", wanted))
    }

    fn recursive(&self, held: &'static str, wanted: Hold) -> Error {
        Error::RecursiveRw {
            name: self.name.clone(),
            held,
            wanted: if wanted == Hold::Read {
                "read"
            } else {
                "write"
            },
        }
    }

    /// Block until this thread reads (shares) the lock.
    ///
    /// # Errors
    ///
    /// [`Error::RecursiveRw`] if this thread already holds it;
    /// [`Error::Deadlock`] if waiting would close a deadlock cycle; as
    /// [`crate::Mutex::lock`] otherwise.
    pub fn read(&self) -> Result<ReadGuard<'_>> {
        match self.acquire_read(Wait::Forever)? {
            Some(g) => Ok(g),
            None => unreachable!("Wait::Forever returned without the lock"),
        }
    }

    /// Read if no writer holds or waits; never blocks.
    ///
    /// # Errors
    ///
    /// As [`RwLock::read`]; a busy lock is `Ok(None)`.
    pub fn try_read(&self) -> Result<Option<ReadGuard<'_>>> {
        self.acquire_read(Wait::Try)
    }

    /// Wait at most `timeout` to read; `Ok(None)` when it expires.
    ///
    /// # Errors
    ///
    /// As [`RwLock::read`].
    pub fn read_timeout(&self, timeout: Duration) -> Result<Option<ReadGuard<'_>>> {
        self.acquire_read(Wait::Timeout(timeout))
    }

    /// Block until this thread writes (holds the lock alone).
    ///
    /// # Errors
    ///
    /// [`Error::Recursive`] if this thread writes already,
    /// [`Error::RecursiveRw`] if it reads (no silent upgrade);
    /// [`Error::Deadlock`] if waiting would close a deadlock cycle.
    pub fn write(&self) -> Result<WriteGuard<'_>> {
        match self.acquire_write(Wait::Forever)? {
            Some(g) => Ok(g),
            None => unreachable!("Wait::Forever returned without the lock"),
        }
    }

    /// Write if nobody reads or writes; never blocks.
    ///
    /// # Errors
    ///
    /// As [`RwLock::write`]; a busy lock is `Ok(None)`.
    pub fn try_write(&self) -> Result<Option<WriteGuard<'_>>> {
        self.acquire_write(Wait::Try)
    }

    /// Wait at most `timeout` to write; `Ok(None)` when it expires.
    ///
    /// # Errors
    ///
    /// As [`RwLock::write`].
    pub fn write_timeout(&self, timeout: Duration) -> Result<Option<WriteGuard<'_>>> {
        self.acquire_write(Wait::Timeout(timeout))
    }

    /// Read, waiting as `wait` says (interruptible waits ask their check
    /// every [`INTERRUPT_SLICE`](crate::INTERRUPT_SLICE)).
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`], or as [`RwLock::read`].
    pub fn acquire_read(&self, wait: Wait<'_>) -> Result<Option<ReadGuard<'_>>> {
        self.recursion(Hold::Read)?;
        let order = self.lockdep.before(matches!(wait, Wait::Try))?;
        let got = match self.read_inner(wait) {
            Err(Error::Recursive { .. }) => Err(self.recursive("writing", Hold::Read)),
            other => other,
        }?;
        if let Some(g) = &got {
            self.lockdep.acquired(order);
            held::set(self.key(g.generation()), Hold::Read);
        }
        Ok(got)
    }

    /// Write, waiting as `wait` says.
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`], or as [`RwLock::write`].
    pub fn acquire_write(&self, wait: Wait<'_>) -> Result<Option<WriteGuard<'_>>> {
        self.recursion(Hold::Write)?;
        let order = self.lockdep.before(matches!(wait, Wait::Try))?;
        let got = self.write_inner(wait)?;
        if got.is_some() {
            self.lockdep.acquired(order);
        }
        Ok(got)
    }

    #[inline]
    fn read_inner(&self, wait: Wait<'_>) -> Result<Option<ReadGuard<'_>>> {
        let g = self.chain.generation();
        let page = self.page_at(g);
        let me = self.me();
        let start = clock::now_ns();
        if self.word_at(g).word() == 0
            && page.rw.death_pending.load(Ordering::Relaxed) == 0
            && page.header.retired.load(Ordering::Relaxed) == 0
            && !self.chain.needs_attention()
        {
            if let Some(n) = readers::claim(page, &me, start) {
                // The reader's half of the handshake: the claim above and
                // this load are both sequentially consistent.
                if self.word_at(g).word_seq_cst() == 0 {
                    readers::count_read(page, n);
                    return Ok(Some(ReadGuard::new(self, g, n, &me, false, start, 0)));
                }
                // A writer came: back out (waking it) and queue.
                readers::release(page, n, crate::raw::layout::ident(me.pid, me.tid));
            }
        }
        self.read_slow(g, Until::new(wait, me.tid, start, start), &me, start)
    }

    #[cold]
    fn read_slow(
        &self,
        mut g: usize,
        mut until: Until<'_>,
        me: &Me,
        start: u64,
    ) -> Result<Option<ReadGuard<'_>>> {
        // Listed as waiting until this reader has its share (a full readers
        // table is waited for too).
        let mut _listed = None;
        let (page, died) = loop {
            // Before waiting, and after (a wait may be long), check that
            // the file is still the one at the path, as a mutex does.
            if self.chain.check_due(g) {
                g = self.chain.follow_replacement(g)?;
            }
            let page = self.page_at(g);
            _listed = (!until.is_try())
                .then(|| WaiterEntry::enter(&page.waiters[READER_WAITERS], me, start));
            let Some(died) = self.take_word(g, &mut until, me, None)? else {
                if !until.is_try() {
                    page.rw.read_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(None);
            };
            match self.moved_on(g)? {
                Some(next) => g = next,
                None => break (page, died),
            }
        };
        page.rw.admitting_tid.store(me.tid, Ordering::Relaxed);
        // Holding the word, no writer is in; claim a slot. A full table
        // waits for a reader to leave (leaving readers wake it, as they
        // wake a draining writer) or die (looked for every slice).
        page.rw.writer_waiting.store(1, Ordering::SeqCst);
        let slot = loop {
            if let Some(n) = readers::claim(page, me, clock::now_ns()) {
                break Ok(n);
            }
            readers::reap(page);
            let seq = page.rw.drain_seq.load(Ordering::SeqCst);
            if let Some(n) = readers::claim(page, me, clock::now_ns()) {
                break Ok(n);
            }
            if until.is_try() || until.passed(clock::now_ns()) {
                break Err(None);
            }
            futex::wait(&page.rw.drain_seq, seq, DEAD_READER_CHECK);
            if let Err(e) = until.check(&self.name) {
                break Err(Some(e));
            }
        };
        page.rw.writer_waiting.store(0, Ordering::SeqCst);
        page.rw.admitting_tid.store(0, Ordering::Relaxed);
        let slot = match slot {
            Ok(n) => n,
            Err(e) => {
                // The death notice (if any) stays for the next holder.
                let _ = self.word_at(g).unlock();
                return match e {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
        };
        if died {
            page.rw.death_pending.store(0, Ordering::Relaxed);
        }
        self.word_at(g).unlock().map_err(|e| self.raw_error(e))?;
        let now = clock::now_ns();
        let waited = now.saturating_sub(start);
        readers::count_read(page, slot);
        page.rw.read_contended.fetch_add(1, Ordering::Relaxed);
        page.rw.read_wait_ns.fetch_add(waited, Ordering::Relaxed);
        Ok(Some(ReadGuard::new(self, g, slot, me, died, now, waited)))
    }

    /// Holding generation `g`'s word, just taken: if a check of the lock
    /// file is due and it was replaced, hand the word on (a death notice
    /// this holder was told of stays in `death_pending` for the next) and
    /// return the generation to take instead.
    fn moved_on(&self, g: usize) -> Result<Option<usize>> {
        if !self.chain.check_due(g) {
            return Ok(None);
        }
        match self.chain.follow_replacement(g) {
            Ok(next) if next == g => Ok(None),
            other => {
                let _ = self.word_at(g).unlock();
                other.map(Some)
            }
        }
    }

    /// Take generation `g`'s writers' word as `until` says (`taken`: this
    /// thread took it already), stepping aside for an older starving
    /// waiter (see [`crate::wait`]); `Some(told)` with whether the previous
    /// holder died (and this caller is the one told), `None` when the wait
    /// ended without it.
    fn take_word(
        &self,
        g: usize,
        until: &mut Until<'_>,
        me: &Me,
        mut taken: Option<Acquire>,
    ) -> Result<Option<bool>> {
        let at = RwWord { rw: self, g };
        loop {
            let got = match taken.take() {
                Some(got) => got,
                None => match self.word_at(g).try_lock().map_err(|e| self.raw_error(e))? {
                    Acquire::Busy if until.is_try() => return Ok(None),
                    Acquire::Busy => match wait::queue(&at, until)? {
                        Some(got) => got,
                        None => return Ok(None),
                    },
                    got => got,
                },
            };
            let died = self.after_word(g, got == Acquire::OwnerDied, me);
            match wait::make_way(&at, until, died)? {
                Way::Clear => return Ok(Some(died)),
                Way::Again => {}
                Way::GaveUp => return Ok(None),
            }
        }
    }

    /// Just after taking the word: whether to tell this holder that a
    /// writer died, counting each death once.
    ///
    /// Which holder of the word died is told by the writer's record, not
    /// by who held the word: a writer writes its record once it has the
    /// lock to itself, just before its guard is returned, and clears it
    /// just before it lets go. So a word whose holder died while the record
    /// names a writer lost a writer in the middle of its work: tell. Any
    /// other holder that died (a writer waiting for readers to leave, or
    /// one that had finished, or a reader being admitted, at any point,
    /// however early) changed nothing: tell nobody.
    ///
    /// A holder told of a death keeps the notice in `death_pending`
    /// ([`DEATH_CARRIED`], stored before anything else is done about it)
    /// until it has passed it on (its record written, or its share taken,
    /// just before its acquisition returns): should it die or give up
    /// first, the next holder is told instead, and the death is counted
    /// once.
    fn after_word(&self, g: usize, word_died: bool, me: &Me) -> bool {
        let page = self.page_at(g);
        // Plain loads first: both are almost always 0, and a swap would
        // cost an atomic read-modify-write on every write.
        let admitting = match page.rw.admitting_tid.load(Ordering::Relaxed) {
            0 => 0,
            _ => page.rw.admitting_tid.swap(0, Ordering::Relaxed),
        };
        let pending = page.rw.death_pending.load(Ordering::Relaxed);
        if word_died {
            owner::repair(&page.owner);
        }
        let writer_died = word_died && page.owner.tid.load(Ordering::Relaxed) != 0;
        let died = writer_died || pending != 0;
        if died && pending != DEATH_CARRIED {
            page.rw
                .death_pending
                .store(DEATH_CARRIED, Ordering::Relaxed);
        }
        if writer_died {
            // (If the writer had ended abandoned and died before it let go,
            // this counts for both.)
            self.record_writer_death(page);
            page.stats.owner_died.fetch_add(1, Ordering::Relaxed);
        } else if pending == DEATH_ABANDONED {
            page.stats.owner_died.fetch_add(1, Ordering::Relaxed);
        }
        if word_died && !writer_died && admitting != 0 && admitting != me.tid {
            // A reader died while being admitted: count it (unless its slot
            // holds its bit: then the drain's reaping counts it).
            let occupied = page.rw.occupied.load(Ordering::Acquire);
            let in_table = page.readers.iter().enumerate().any(|(n, s)| {
                s.ident.load(Ordering::Acquire) as u32 == admitting && occupied & (1 << n) != 0
            });
            if !in_table {
                page.rw.reader_deaths.fetch_add(1, Ordering::Relaxed);
            }
        }
        died
    }

    /// Record in the event ring the writer that died holding the word, as
    /// its record names it, and clear the record. Called holding the word.
    #[cold]
    fn record_writer_death(&self, page: &RwPage) {
        let rec = &page.owner;
        let tid = rec.tid.load(Ordering::Relaxed);
        if tid == 0 {
            return;
        }
        let acquired = rec.acquired_mono_ns.load(Ordering::Relaxed);
        let program = rec.program.load();
        events::push_shared(
            &page.events,
            &Who {
                ident: crate::raw::layout::ident(rec.pid.load(Ordering::Relaxed), tid),
                program: &program,
            },
            &HoldRecord {
                acquired_mono_ns: acquired,
                waited_ns: 0,
                held_ns: clock::now_ns().saturating_sub(acquired),
                owner_died: rec.flags.load(Ordering::Relaxed) & FLAG_OWNER_DIED != 0,
            },
            RwEvent {
                read: false,
                died: true,
            },
        );
        owner::clear(rec);
    }

    #[inline]
    fn write_inner(&self, wait: Wait<'_>) -> Result<Option<WriteGuard<'_>>> {
        let mut g = self.chain.generation();
        if self.chain.needs_attention() || self.chain.retired(g) {
            g = self.chain.follow_replacement(g)?;
        }
        let me = self.me();
        let got = self.word_at(g).try_lock().map_err(|e| self.raw_error(e))?;
        // Read the clock only once on the uncontended path.
        let start = clock::now_ns();
        let mut until = Until::new(wait, me.tid, start, start);
        let died = match got {
            Acquire::Busy if until.is_try() => return Ok(None),
            // An older interruptible waiter may ask this one to step aside.
            Acquire::Taken | Acquire::OwnerDied if !starvation::posted(&self.page_at(g).header) => {
                self.after_word(g, got == Acquire::OwnerDied, &me)
            }
            _ => {
                let mut taken = (got != Acquire::Busy).then_some(got);
                loop {
                    // As for a read: check the file before and after waiting.
                    if taken.is_none() && self.chain.check_due(g) {
                        g = self.chain.follow_replacement(g)?;
                    }
                    let page = self.page_at(g);
                    let _listed = taken
                        .is_none()
                        .then(|| WaiterEntry::enter(&page.waiters[WRITER_WAITERS], &me, start));
                    let Some(died) = self.take_word(g, &mut until, &me, taken.take())? else {
                        if !until.is_try() {
                            stats::on_timeout(&page.stats);
                        }
                        return Ok(None);
                    };
                    match self.moved_on(g)? {
                        Some(next) => g = next,
                        None => break died,
                    }
                }
            }
        };
        let mut waited = until.waited();
        let page = self.page_at(g);
        // The writer's half of the handshake (see `readers::any_rmw`).
        if readers::any_rmw(page) {
            waited = true;
            let drained = {
                let _listed = WaiterEntry::enter(&page.waiters[WRITER_WAITERS], &me, start);
                self.drain(g, &mut until)
            };
            match drained {
                Ok(true) => {}
                other => {
                    // Timed out or interrupted: hand the word on; a death
                    // notice stays for the next holder (in death_pending).
                    let _ = self.word_at(g).unlock();
                    if !until.is_try() && other.is_ok() {
                        stats::on_timeout(&page.stats);
                    }
                    return other.map(|_| None);
                }
            }
        }
        let now = if waited { clock::now_ns() } else { start };
        let waited_ns = waited.then(|| now.saturating_sub(start));
        self.writing.store(true, Ordering::Relaxed);
        owner::write(&page.owner, &me, now, died, self.label.is_some());
        if died {
            // The record names this writer now: should it die, the next
            // holder is told anyway.
            page.rw.death_pending.store(0, Ordering::Relaxed);
        }
        stats::on_acquire(&page.stats, waited_ns, false);
        Ok(Some(WriteGuard::new(
            self,
            g,
            me.tid,
            died,
            waited_ns.unwrap_or(0),
        )))
    }

    /// Holding the word, wait until no reader slot is taken: `Ok(false)`
    /// when the deadline passed (or a try found readers).
    fn drain(&self, g: usize, until: &mut Until<'_>) -> Result<bool> {
        let page = self.page_at(g);
        let rw = &page.rw;
        rw.writer_waiting.store(1, Ordering::SeqCst);
        let mut last_check = clock::now_ns();
        let result = loop {
            let seq = rw.drain_seq.load(Ordering::SeqCst);
            if !readers::any(page) {
                break Ok(true);
            }
            let now = clock::now_ns();
            if until.is_try() || until.passed(now) {
                break Ok(false);
            }
            if now.saturating_sub(last_check) >= DEAD_READER_CHECK.as_nanos() as u64 {
                last_check = now;
                readers::reap(page);
                if let Err(e) = until.check(&self.name) {
                    break Err(e);
                }
                continue;
            }
            let mut slice = DEAD_READER_CHECK;
            if let Some(d) = until.end() {
                slice = slice.min(Duration::from_nanos(d - now));
            }
            if futex::wait(&rw.drain_seq, seq, slice) == Woken::TimedOut {
                last_check = 0; // look for dead readers now
            }
        };
        rw.writer_waiting.store(0, Ordering::SeqCst);
        result
    }

    /// Release a write hold (from [`WriteGuard`]'s drop or downgrade),
    /// recording it in the event ring; returns when (`CLOCK_MONOTONIC`
    /// ns). `died` and `waited_ns` are the hold's, for its event.
    fn exit_write(&self, g: usize, abandoned: bool, me: &Me, died: bool, waited_ns: u64) -> u64 {
        let page = self.page_at(g);
        let acquired = owner::acquired_ns(&page.owner);
        let now = clock::now_ns();
        let held_ns = now.saturating_sub(acquired);
        stats::on_release(&page.stats, me, held_ns, acquired);
        // Alone: no reader holds a share, and readers record their events
        // before they give their shares back.
        events::push_exclusive(
            &page.events,
            &Who::from(me),
            &HoldRecord {
                acquired_mono_ns: acquired,
                waited_ns,
                held_ns,
                owner_died: died,
            },
            RwEvent {
                read: false,
                died: false,
            },
        );
        if abandoned {
            // Before the record is cleared: no moment without a notice.
            page.rw
                .death_pending
                .store(DEATH_ABANDONED, Ordering::Relaxed);
        }
        owner::clear(&page.owner);
        self.writing.store(false, Ordering::Relaxed);
        // Unlock cannot fail for the holding thread.
        let _ = self.word_at(g).unlock();
        if self.chain.release_check_due(g, now) {
            self.chain.check_after_release(g);
        }
        now
    }

    /// If the lock file in use was unlinked and another file now sits at
    /// the lock path, move this handle to that file; `Ok(true)` if it
    /// moved since the last `follow` (as [`crate::Mutex::follow`]). The
    /// inspection methods move the same way; a caller that follows events with [`RwLock::events_since`]
    /// calls it first and starts again from 0 when it returns `true`.
    ///
    /// # Errors
    ///
    /// The errors of opening the new file ([`Error::NotFound`] excepted),
    /// or [`Error::ReplacedTooOften`].
    pub fn follow(&self) -> Result<bool> {
        self.chain.follow()
    }

    /// The writer holding the lock, if any (a writer waiting for readers
    /// to drain is not shown until it writes). Follows a replaced lock
    /// file ([`RwLock::follow`]).
    ///
    /// # Errors
    ///
    /// Those of [`RwLock::follow`].
    pub fn writer(&self) -> Result<Option<Owner>> {
        let page = self.chain.page_to_read()?;
        Ok(owner::read_with_word(
            &page.owner,
            Some(page.mutex.mutex.word()),
        ))
    }

    /// The readers holding the lock now, longest first (dead readers not
    /// yet freed are left out). Follows a replaced lock file (or, if the
    /// file now at the path cannot be opened, reads the one in use).
    pub fn readers(&self) -> Vec<Reader> {
        readers::list(self.page_to_read())
    }

    /// Threads waiting to write, longest first (following a replaced lock
    /// file as [`RwLock::readers`] does).
    pub fn writers_waiting(&self) -> Vec<Waiter> {
        waiters::scan(
            &self.page_to_read().waiters[WRITER_WAITERS],
            Scan::LiveReadOnly,
        )
    }

    /// Threads waiting to read, longest first (following a replaced lock
    /// file as [`RwLock::readers`] does).
    pub fn readers_waiting(&self) -> Vec<Waiter> {
        waiters::scan(
            &self.page_to_read().waiters[READER_WAITERS],
            Scan::LiveReadOnly,
        )
    }

    /// Holds of both kinds, and deaths found, numbered `from` and later
    /// that are still in the ring, and the number to pass next time (as
    /// [`crate::Mutex::events_since`]; [`Event::read`] tells the kind,
    /// [`Event::died`] a holder found dead). Start with
    /// [`RwLock::event_head`] to see only new events.
    pub fn events_since(&self, from: u64) -> (Vec<Event>, u64) {
        events::read_from(&self.chain.current_page().events, from)
    }

    /// Number of events recorded in the ring so far.
    pub fn event_head(&self) -> u64 {
        events::head(&self.chain.current_page().events)
    }

    /// Zero the statistics of both sides for every user of the lock:
    /// takes the lock to write, briefly (see [`WriteGuard::reset_stats`]).
    ///
    /// # Errors
    ///
    /// Those of [`RwLock::write`].
    pub fn reset_stats(&self) -> Result<()> {
        self.write()?.reset_stats();
        Ok(())
    }

    /// The statistics (following a replaced lock file as
    /// [`RwLock::readers`] does).
    pub fn stats(&self) -> RwStats {
        stats_of_page(self.page_to_read())
    }

    /// The raw shared state: (writers' word, admitting reader's tid,
    /// held-slot bitmap, the writer record's tid). For the torture harness
    /// and tests, which inspect a stopped or dead process; not a stable
    /// interface.
    #[doc(hidden)]
    pub fn raw_state(&self) -> (u32, u32, u64, u32) {
        let page = self.chain.current_page();
        (
            page.mutex.mutex.word(),
            page.rw.admitting_tid.load(Ordering::Acquire),
            page.rw.occupied.load(Ordering::Acquire),
            page.owner.tid.load(Ordering::Acquire),
        )
    }

    /// Number of reader slots: the most readers that hold it at once.
    pub const fn reader_slots() -> usize {
        READER_SLOTS
    }
}

/// The statistics of the readers-writer lock mapped by `file` (the caller
/// checked the kind).
pub(crate) fn stats_of(file: &LockFile) -> RwStats {
    stats_of_page(file.map.rw_page())
}

fn stats_of_page(page: &RwPage) -> RwStats {
    let rw = &page.rw;
    let writes = stats::snapshot(&page.stats);
    RwStats {
        writer_deaths: writes.owner_died,
        writes,
        reads: readers::reads(page),
        reads_contended: rw.read_contended.load(Ordering::Relaxed),
        read_wait: Duration::from_nanos(rw.read_wait_ns.load(Ordering::Relaxed)),
        read_timeouts: rw.read_timeouts.load(Ordering::Relaxed),
        reader_deaths: rw.reader_deaths.load(Ordering::Relaxed),
    }
}

/// The readers of the readers-writer lock mapped by `file` (for
/// [`crate::LockView`]; the caller checked the kind).
pub(crate) fn readers_of(file: &LockFile) -> Vec<Reader> {
    readers::list(file.map.rw_page())
}

impl Drop for RwLock {
    fn drop(&mut self) {
        if self.writing.load(Ordering::Relaxed) {
            // A leaked guard: a write hold links the word into this
            // thread's robust list, which must never point at unmapped
            // memory.
            self.chain.leak();
        }
    }
}

impl std::fmt::Debug for RwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwLock")
            .field("name", &self.name)
            .field("path", &self.chain.path())
            .finish()
    }
}
