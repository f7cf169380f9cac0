//! The owner record: who holds a lock, readable by anyone without taking it.
//!
//! The holder writes the record under the lock, a sequence lock
//! ([`crate::seqlock`]) whose counter is odd while it writes. Readers retry
//! while the counter is odd or changed; after [`READ_TRIES`] tries they
//! report the record as torn, which happens when a holder died in the
//! middle of writing it. The next holder, told that the last one died,
//! makes the counter even again.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::clock;
use crate::identity::{Me, ProcessState, process_state};
use crate::raw::layout::{FLAG_DEATH_PENDING, FLAG_OWNER_DIED, OwnerRecord, text_string};
use crate::raw::mutex::{FUTEX_OWNER_DIED, FUTEX_TID_MASK};
use crate::seqlock::SeqCell;

/// How often a reader retries a record that is being written.
pub const READ_TRIES: u32 = 1000;

/// The holder of a lock, as recorded by the holder itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Process id of the holder.
    pub pid: u32,
    /// Thread id of the holder (as shown by `ps -L`, `gettid`).
    pub tid: u32,
    /// Holder process start time, clock ticks after boot: with `pid` it
    /// identifies the process even after its pid is reused.
    pub start_time: u64,
    /// Holder program name (`argv[0]` or the script name).
    pub program: String,
    /// When the holder took the lock.
    pub since: SystemTime,
    /// How long it has held the lock, as of this read.
    pub held_for: Duration,
    /// The holder took over from a holder that died.
    pub took_over_from_dead: bool,
    /// What the holder process is doing now, from `/proc`. [`ProcessState::Gone`]
    /// or `Zombie` means it died holding the lock: the lock is released and
    /// the next holder will be told.
    pub state: ProcessState,
    /// The record was torn: its writer died while writing it, so fields may
    /// mix two holders.
    pub torn: bool,
    /// `CLOCK_MONOTONIC` ns of the acquisition (tells two holds apart).
    acquired_at_ns: u64,
}

impl Owner {
    /// Whether the holder process still exists (and so really holds it).
    pub fn is_alive(&self) -> bool {
        self.state.is_alive()
    }

    /// Whether `other` (read later, say) is the same hold: the same thread
    /// with the same acquisition. Two reads of one hold can differ in
    /// [`Owner::since`] by nanoseconds (it is converted to the wall clock
    /// at each read) and in everything that changes with time; this does
    /// not.
    pub fn same_hold(&self, other: &Owner) -> bool {
        self.pid == other.pid
            && self.tid == other.tid
            && self.start_time == other.start_time
            && self.acquired_at_ns == other.acquired_at_ns
    }
}

/// The holder in the one wording every message uses (library errors and
/// panics, the `buslock` command, Python's `Owner`):
/// `pid 1234 tid 1240 (motor), held for 2.31s`, with
/// `, died holding it (gone)` added when the holder no longer exists and
/// `, record torn` when the record was torn.
///
/// The alternate form (`{:#}`) names the holding thread only:
/// `pid 1234 tid 1240 (motor)`, for messages where the hold time does not
/// matter. The program name comes from the lock file and is escaped with
/// [`escape`](crate::escape).
///
/// ```
/// # fn main() -> buslock::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let m = buslock::Mutex::builder("SPI").dir(dir.path()).open()?;
/// let _g = m.lock()?;
/// let holder = m.owner()?.expect("held");
/// let me = format!("pid {} tid {}", std::process::id(), holder.tid);
/// assert!(holder.to_string().starts_with(&me));
/// assert!(holder.to_string().contains(", held for "));
/// assert!(format!("{holder:#}").ends_with(')'));
/// # Ok(())
/// # }
/// ```
impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_words(f, true)
    }
}

impl Owner {
    /// The same wording as `Display`, with the program name as recorded
    /// (not escaped): for output that escapes the whole message itself
    /// (the `buslock` command), so that it is escaped exactly once.
    #[doc(hidden)]
    pub fn unescaped(&self) -> impl std::fmt::Display + '_ {
        struct Unescaped<'a>(&'a Owner);
        impl std::fmt::Display for Unescaped<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.write_words(f, false)
            }
        }
        Unescaped(self)
    }

    fn write_words(&self, f: &mut std::fmt::Formatter<'_>, escape: bool) -> std::fmt::Result {
        if escape {
            write_thread(f, self.pid, self.tid, &self.program)?;
        } else {
            write!(f, "pid {} tid {} ({})", self.pid, self.tid, self.program)?;
        }
        if f.alternate() {
            return Ok(());
        }
        write!(f, ", held for {}", crate::human::duration(self.held_for))?;
        if !self.is_alive() {
            write!(f, ", died holding it ({})", self.state.as_str())?;
        }
        if self.torn {
            f.write_str(", record torn")?;
        }
        Ok(())
    }
}

/// `pid P tid T (program)`, the program escaped: the thread part of
/// [`Owner`]'s `Display`, for messages that know a holder only by its ids
/// (the deadlock report).
fn write_thread(
    f: &mut impl std::fmt::Write,
    pid: u32,
    tid: u32,
    program: &str,
) -> std::fmt::Result {
    write!(f, "pid {pid} tid {tid} ({})", crate::escape(program))
}

/// [`write_thread`] as a string.
pub(crate) fn thread(pid: u32, tid: u32, program: &str) -> String {
    let mut s = String::new();
    let _ = write_thread(&mut s, pid, tid, program);
    s
}

/// Write `me` as the holder. Called under the lock.
///
/// The process fields (pid, start time, program) are rewritten only when
/// they change (or the handle has a label), so a process re-taking its own
/// lock stores five words.
#[inline]
pub(crate) fn write(
    rec: &OwnerRecord,
    me: &Me,
    acquired_ns: u64,
    owner_died: bool,
    labelled: bool,
) {
    let seq = rec.version();
    rec.write(seq.wrapping_add(1), seq.wrapping_add(2), |rec| {
        if owner_died
            || labelled
            || rec.pid.load(Ordering::Relaxed) != me.pid
            || rec.start_time.load(Ordering::Relaxed) != me.start_time
        {
            rec.pid.store(me.pid, Ordering::Relaxed);
            rec.start_time.store(me.start_time, Ordering::Relaxed);
            rec.program.store(me.program);
        }
        rec.tid.store(me.tid, Ordering::Relaxed);
        rec.flags.store(
            if owner_died { FLAG_OWNER_DIED } else { 0 },
            Ordering::Relaxed,
        );
        rec.acquired_mono_ns.store(acquired_ns, Ordering::Relaxed);
    });
}

/// When the holder took the lock (`CLOCK_MONOTONIC` ns). Called by the
/// holder, under the lock.
#[inline]
pub(crate) fn acquired_ns(rec: &OwnerRecord) -> u64 {
    rec.acquired_mono_ns.load(Ordering::Relaxed)
}

/// Mark the lock free (`tid` 0; the process fields stay as "last holder").
/// Called under the lock, just before unlocking.
#[inline]
pub(crate) fn clear(rec: &OwnerRecord) {
    let seq = rec.version();
    rec.write(seq.wrapping_add(1), seq.wrapping_add(2), |rec| {
        rec.tid.store(0, Ordering::Relaxed);
    });
}

/// After taking over from a dead holder: make an odd counter even.
pub(crate) fn repair(rec: &OwnerRecord) {
    let seq = rec.version();
    if seq % 2 == 1 {
        rec.seq.store(seq.wrapping_add(1), Ordering::Release);
    }
}

/// Whether a holder that took over from a dead one released without
/// holding (its legacy companion lock was busy), leaving the death to be
/// reported by the next holder. Called under the lock.
#[inline]
pub(crate) fn death_pending(rec: &OwnerRecord) -> bool {
    rec.flags.load(Ordering::Relaxed) & FLAG_DEATH_PENDING != 0
}

/// Leave a death notice for the next holder. Called under the lock.
pub(crate) fn set_death_pending(rec: &OwnerRecord) {
    rec.flags.store(FLAG_DEATH_PENDING, Ordering::Relaxed);
}

/// Whether the record names the calling thread of this process.
#[inline]
pub(crate) fn is_me(rec: &OwnerRecord, me: &Me) -> bool {
    rec.tid.load(Ordering::Relaxed) == me.tid
        && rec.pid.load(Ordering::Relaxed) == me.pid
        && rec.start_time.load(Ordering::Relaxed) == me.start_time
}

struct RawOwner {
    pid: u32,
    tid: u32,
    flags: u32,
    start_time: u64,
    acquired_mono_ns: u64,
    program: [u8; 32],
}

fn load(rec: &OwnerRecord) -> RawOwner {
    RawOwner {
        pid: rec.pid.load(Ordering::Relaxed),
        tid: rec.tid.load(Ordering::Relaxed),
        flags: rec.flags.load(Ordering::Relaxed),
        start_time: rec.start_time.load(Ordering::Relaxed),
        acquired_mono_ns: rec.acquired_mono_ns.load(Ordering::Relaxed),
        program: rec.program.load(),
    }
}

/// Read the record without taking the lock; `None` when free. `word` is
/// the lock word read just before, if the caller has it: a holder that the
/// word no longer names (its thread ended and the kernel marked the word or
/// handed it on) is reported [`ProcessState::Gone`].
pub(crate) fn read_with_word(rec: &OwnerRecord, word: Option<u32>) -> Option<Owner> {
    let mut owner = read(rec)?;
    if let Some(word) = word {
        let named = word & FUTEX_TID_MASK;
        if owner.state.is_alive() && (named != owner.tid || word & FUTEX_OWNER_DIED != 0) {
            // The record is written right after the word is taken: if the
            // word moved on while the record still names this thread, that
            // thread let go without clearing it, i.e. it died.
            let again = read(rec)?;
            if again.tid == owner.tid && again.acquired_at_ns == owner.acquired_at_ns {
                owner.state = ProcessState::Gone;
            } else {
                owner = again;
            }
        }
    }
    Some(owner)
}

/// Read the record without taking the lock; `None` when free.
pub(crate) fn read(rec: &OwnerRecord) -> Option<Owner> {
    let mut whole = None;
    for _ in 0..READ_TRIES {
        if let Some((_, raw)) = rec.try_read(|seq| seq % 2 == 0, load) {
            whole = Some(raw);
            break;
        }
        std::hint::spin_loop();
    }
    let torn = whole.is_none();
    // Torn: its writer died mid-write; show what is there.
    let raw = whole.unwrap_or_else(|| load(rec));
    if raw.tid == 0 && (!torn || raw.pid == 0) {
        return None;
    }
    let now_mono = clock::monotonic_ns_syscall();
    let mut state = process_state(raw.pid, raw.start_time);
    if state.is_alive() && !crate::identity::thread_of(raw.pid, raw.tid) {
        // The process lives on, but the holding thread ended: the kernel
        // has released the lock (robust list); liveness is per thread.
        state = ProcessState::Gone;
    }
    Some(Owner {
        pid: raw.pid,
        tid: raw.tid,
        start_time: raw.start_time,
        program: text_string(&raw.program),
        since: clock::WallClock::now().at(raw.acquired_mono_ns),
        held_for: Duration::from_nanos(now_mono.saturating_sub(raw.acquired_mono_ns)),
        took_over_from_dead: raw.flags & FLAG_OWNER_DIED != 0,
        state,
        torn,
        acquired_at_ns: raw.acquired_mono_ns,
    })
}
