//! The memory layout of a lock file, shared by every process that maps it.
//!
//! A lock file is [`FILE_SIZE`] bytes, mapped `MAP_SHARED` read-write by
//! every user. Every field is an atomic, because any
//! process may read while the holder writes; readers treat every value as
//! untrusted input.
//!
//! | offset | size | block | written by | read by |
//! |-------:|-----:|-------|------------|---------|
//! | 0      | 128  | [`Header`]: magic `BUSLOCK\0`, layout version, init state, file size, page size, PID namespace, ABI tag; then the retired flag and the starving waiter's request, written by users; boot id; kind (112) | the creator, once, under the creation `flock`; users | every opener (validation) |
//! | 128    | 64   | [`RawMutex`]: the robust PI futex word (offset 128) and its robust-list node (`prev` at 152, `next` at 160 on 64-bit targets; `next` at 148 on 32-bit ones) | the holder and the kernel | anyone (the word: who holds it) |
//! | 192    | 64   | [`OwnerRecord`]: pid, tid, process start time, program, acquired at; seqlock | the holder, under the lock | anyone, without the lock |
//! | 256    | 640  | [`StatsBlock`]: counters, wait/hold histograms, longest hold | the holder, under the lock | anyone |
//! | 896    | 2048 | [`WAITER_SLOTS`] × [`WaiterSlot`]: who waits (program) since when | each waiter, its own slot | anyone |
//! | 2944   | 5184 | [`EventRing`]: the last [`EVENT_SLOTS`] holds | the holder at release | `buslock watch` |
//! | 8128   | 4160 | unused, zero | | |
//!
//! That is the page of a mutex ([`KIND_MUTEX`]). A readers-writer lock's
//! page ([`KIND_RWLOCK`], [`RwPage`]) shares the first 2944 bytes (header,
//! the writers' lock word, the writer's record, statistics, waiters) and
//! puts the readers' state where the mutex keeps its events, and its own
//! event ring after it:
//!
//! | offset | size | block | written by | read by |
//! |-------:|-----:|-------|------------|---------|
//! | 0      | 2944 | as above: header, writers' lock word, writer record, write statistics, waiters (writers in slots 0-15, readers in 16-31) | | |
//! | 2944   | 64   | [`RwBlock`]: drain sequence, writer-waiting flag, pending death notice, admitting reader, read counters, occupied-slot bitmap | readers and the writer | anyone |
//! | 3008   | 4096 | [`READER_SLOTS`] × [`ReaderSlot`]: who reads, since when, reads counted per slot | each reader, its own slot; a writer frees a dead reader's | anyone |
//! | 7104   | 5184 | [`EventRing`]: the last [`EVENT_SLOTS`] holds of either kind and deaths found ([`FLAG_READ`], [`FLAG_DIED`]); a reader claims its event's slot by an atomic add on the head (readers release at once), a writer holding the lock alone by a plain store | each reader and writer at release; whoever finds a death | `buslock watch` |
//!
//! Init states: `0` never initialised, `1` being initialised (its
//! initialiser holds an `flock` on the file; if it died the next opener
//! initialises again), `2` ready. Nothing but the header is read before the
//! state is ready.
//!
//! The lock block must never move or be copied while held: the holder's
//! robust list links its node by its address in the mapping, and the kernel
//! finds the word at that address plus glibc's `futex_offset` (-32 on 64-bit
//! targets, -20 on 32-bit ones), so the node sits at that distance after
//! the word.
//!
//! Version history: 1 held a glibc `pthread_mutex_t` at 128; 2 holds
//! buslock's own futex word there (same word format, so a reader of either
//! finds the owner TID at offset 128) and adds the boot id; 3 adds the
//! kind at 112 (a name is one primitive: a mutex or a readers-writer lock);
//! 4 grows the file from 8192 to 12288 bytes (three 4 KiB pages) for the
//! readers-writer lock's event ring at 7104 (the mutex page is unchanged).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::mutex::RawMutex;

/// `b"BUSLOCK\0"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"BUSLOCK\0");
/// Version of this layout; bumped on any change to the table above.
pub const LAYOUT_VERSION: u32 = 4;
/// Size of every lock file in bytes.
pub const FILE_SIZE: usize = 12288;
/// Number of waiters the waiters table can show at once. More waiters still
/// wait correctly; they are just not listed.
pub const WAITER_SLOTS: usize = 32;
/// Number of recent holds kept for `buslock watch`.
pub const EVENT_SLOTS: usize = 64;
/// Number of log2 buckets in the wait and hold histograms.
pub const HIST_BUCKETS: usize = 32;
/// Bytes of a [`Text`] field.
pub const TEXT_BYTES: usize = 32;

/// Header kind: a [`LockPage`], the page of a `buslock::Mutex`.
pub const KIND_MUTEX: u32 = 1;
/// Header kind: an [`RwPage`], the page of a `buslock::RwLock`.
pub const KIND_RWLOCK: u32 = 2;
/// Number of readers that can hold a readers-writer lock at once; more
/// wait for a free slot.
pub const READER_SLOTS: usize = 64;
const _: () = assert!(READER_SLOTS <= 64, "one bit per slot in RwBlock::occupied");

/// The name of a header kind, for messages.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_MUTEX => "mutex",
        KIND_RWLOCK => "rwlock",
        _ => "unknown kind",
    }
}

/// Init state: the file was never initialised.
pub const INIT_NONE: u32 = 0;
/// Init state: an initialiser is at work (it holds the creation `flock`).
pub const INIT_RUNNING: u32 = 1;
/// Init state: the file is ready for use.
pub const INIT_READY: u32 = 2;

/// A short, NUL-padded byte string stored in atomics (program names, the
/// ABI tag).
#[repr(C)]
pub struct Text([AtomicU64; TEXT_BYTES / 8]);

impl Text {
    /// Store `bytes`, truncated to [`TEXT_BYTES`] and NUL-padded.
    #[inline]
    pub fn store(&self, bytes: &[u8; TEXT_BYTES]) {
        for (word, chunk) in self.0.iter().zip(bytes.chunks_exact(8)) {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(buf), Ordering::Relaxed);
        }
    }

    /// Load the raw bytes.
    #[inline]
    pub fn load(&self) -> [u8; TEXT_BYTES] {
        let mut out = [0u8; TEXT_BYTES];
        for (word, chunk) in self.0.iter().zip(out.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        out
    }
}

/// Pack `text` into a NUL-padded [`Text`] buffer, truncating on a character
/// boundary.
pub fn text_bytes(text: &str) -> [u8; TEXT_BYTES] {
    let mut out = [0u8; TEXT_BYTES];
    let mut end = text.len().min(TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// Unpack a [`Text`] buffer into a string (lossy: the bytes are untrusted).
pub fn text_string(bytes: &[u8; TEXT_BYTES]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(TEXT_BYTES);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The first block: what the file is and who may use it.
#[repr(C, align(64))]
pub struct Header {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// [`INIT_NONE`], [`INIT_RUNNING`] or [`INIT_READY`].
    pub init_state: AtomicU32,
    /// [`FILE_SIZE`] as written by the creator.
    pub file_size: AtomicU32,
    /// The creator's page size (informational).
    pub page_size: AtomicU32,
    /// Inode of the creator's PID namespace (`/proc/self/ns/pid`): PI
    /// futexes hold thread ids, which only mean something in one namespace.
    pub pid_ns: AtomicU64,
    /// When the file was initialised, ns since the Unix epoch.
    pub created_real_ns: AtomicU64,
    /// The creator's ABI (see [`abi_tag`]).
    pub abi: Text,
    /// Non-zero once a user found that this file was unlinked or replaced
    /// at its path: every user moves to the file now at the path at its
    /// next acquisition.
    pub retired: AtomicU32,
    /// Thread id of an interruptible waiter that has waited long enough to
    /// ask newer acquirers to step aside (see `starvation.rs`); 0: none.
    pub starving_tid: AtomicU32,
    /// When that waiter began waiting, `CLOCK_MONOTONIC` ns.
    pub starving_since_ns: AtomicU64,
    /// When that waiter last renewed its request, `CLOCK_MONOTONIC` ns; a
    /// request not renewed for three slices is stale (its waiter died).
    pub starving_beat_ns: AtomicU64,
    /// The boot id (`/proc/sys/kernel/random/boot_id`, 16 bytes) of the
    /// boot in which the file was initialised, written last before the
    /// init state becomes ready. A file from an earlier boot (saved on
    /// persistent storage, restored from a backup) is initialised again:
    /// no thread of an earlier boot can still use it.
    pub boot_id: [AtomicU64; 2],
    /// What the file holds: [`KIND_MUTEX`] or [`KIND_RWLOCK`], written by
    /// the initialiser before the init state becomes ready.
    pub kind: AtomicU32,
}

/// The lock word and its robust-list node, alone in their cache line.
#[repr(C, align(64))]
pub struct MutexBlock {
    /// The lock itself.
    pub mutex: RawMutex,
}

/// Who holds the lock. Written by the holder under the lock; read by anyone
/// through the sequence counter `seq` (odd while a write is in progress).
#[repr(C, align(64))]
pub struct OwnerRecord {
    /// Sequence counter: odd while the holder writes the record.
    pub seq: AtomicU32,
    /// Holder's process id (after release: the last holder's).
    pub pid: AtomicU32,
    /// Holder's thread id; 0 when free.
    pub tid: AtomicU32,
    /// Bit 0: the holder took the lock over from a holder that died.
    pub flags: AtomicU32,
    /// Holder process start time, clock ticks after boot (`/proc/PID/stat`
    /// field 22), so that a reused pid is never mistaken for the holder.
    pub start_time: AtomicU64,
    /// When the lock was taken, `CLOCK_MONOTONIC` ns (the same clock in
    /// every process; readers convert to wall-clock time).
    pub acquired_mono_ns: AtomicU64,
    /// Holder program name.
    pub program: Text,
}

/// Contention statistics, updated by the holder under the lock.
#[repr(C, align(64))]
pub struct StatsBlock {
    /// Successful acquisitions.
    pub acquisitions: AtomicU64,
    /// Acquisitions that had to wait.
    pub contended: AtomicU64,
    /// Acquisitions that found the previous holder dead.
    pub owner_died: AtomicU64,
    /// Waits that gave up at their timeout.
    pub timeouts: AtomicU64,
    /// Sum of wait times of contended acquisitions, ns.
    pub total_wait_ns: AtomicU64,
    /// Sum of hold times, ns.
    pub total_hold_ns: AtomicU64,
    /// When the statistics were last reset (or created), ns since the epoch.
    pub reset_real_ns: AtomicU64,
    /// Longest hold seen, ns.
    pub longest_hold_ns: AtomicU64,
    /// Who held it longest: pid << 32 | tid.
    pub longest_ident: AtomicU64,
    /// When the longest hold began, ns since the epoch.
    pub longest_real_ns: AtomicU64,
    /// Program of the longest holder.
    pub longest_program: Text,
    /// Wait-time histogram of contended acquisitions (see [`hist_bucket`]).
    pub wait_hist: [AtomicU64; HIST_BUCKETS],
    /// Hold-time histogram (see [`hist_bucket`]).
    pub hold_hist: [AtomicU64; HIST_BUCKETS],
}

/// Bucket of a duration in ns: bucket 0 holds everything under 1024 ns,
/// bucket `i` holds `[2^(9+i), 2^(10+i))` ns, the last bucket everything
/// from `2^40` ns (about 18 minutes) up.
#[inline]
pub fn hist_bucket(ns: u64) -> usize {
    let bits = 64 - ns.leading_zeros() as usize;
    bits.saturating_sub(10).min(HIST_BUCKETS - 1)
}

/// One entry of the waiters table. `ident` is claimed by compare-and-swap
/// from 0; the other fields follow, `start_time` last. A waiter that dies leaves its slot; a
/// reader recognises it because `pid`/`start_time` match no live process.
#[repr(C)]
pub struct WaiterSlot {
    /// pid << 32 | tid of the waiter; 0 when free.
    pub ident: AtomicU64,
    /// Waiter process start time (0 while the slot is being filled).
    pub start_time: AtomicU64,
    /// When it started waiting, `CLOCK_MONOTONIC` ns.
    pub since_mono_ns: AtomicU64,
    /// When it started waiting, ns since the epoch.
    pub since_real_ns: AtomicU64,
    /// Waiter program name (or its handle's label).
    pub program: Text,
}

/// One entry of a readers-writer lock's readers table: a [`WaiterSlot`]
/// whose fourth word counts the reads taken through the slot. `ident` is
/// claimed by compare-and-swap from 0; the other fields follow,
/// `start_time` last.
#[repr(C)]
pub struct ReaderSlot {
    /// pid << 32 | tid of the reader; 0 when free.
    pub ident: AtomicU64,
    /// Reader process start time (0 while the slot is being filled).
    pub start_time: AtomicU64,
    /// When it took its share, `CLOCK_MONOTONIC` ns.
    pub since_mono_ns: AtomicU64,
    /// Read acquisitions made through this slot, ever. Written only by the
    /// reader that holds the slot (a plain load and store: no other thread
    /// writes it then), so that counting a read costs no locked
    /// instruction; [`RwBlock::read_acquisitions`] plus every slot's count
    /// is the total.
    pub reads: AtomicU64,
    /// Reader program name (or its handle's label).
    pub program: Text,
}

const _: () = assert!(core::mem::size_of::<ReaderSlot>() == core::mem::size_of::<WaiterSlot>());

/// One completed hold, written at release.
#[repr(C)]
pub struct Event {
    /// Event number + 1 once complete; `u64::MAX` while being written.
    pub seq: AtomicU64,
    /// pid << 32 | tid of the holder.
    pub ident: AtomicU64,
    /// When the hold began, `CLOCK_MONOTONIC` ns.
    pub acquired_mono_ns: AtomicU64,
    /// How long the holder waited before, ns.
    pub waited_ns: AtomicU64,
    /// How long it held, ns.
    pub held_ns: AtomicU64,
    /// Bit 0: the holder took over from a holder that died.
    pub flags: AtomicU64,
    /// Holder program name.
    pub program: Text,
}

/// Ring of recent holds.
#[repr(C, align(64))]
pub struct EventRing {
    /// Number of events ever written; event `n` lives in slot
    /// `n % EVENT_SLOTS`.
    pub head: AtomicU64,
    /// The slots.
    pub slots: [Event; EVENT_SLOTS],
}

/// A whole lock file as mapped in memory.
#[repr(C)]
pub struct LockPage {
    /// What the file is.
    pub header: Header,
    /// The lock.
    pub mutex: MutexBlock,
    /// Who holds it.
    pub owner: OwnerRecord,
    /// How it is used.
    pub stats: StatsBlock,
    /// Who waits.
    pub waiters: [WaiterSlot; WAITER_SLOTS],
    /// What happened lately.
    pub events: EventRing,
}

/// The readers' state of a readers-writer lock (see `rwlock/mod.rs` for
/// the protocol).
#[repr(C, align(64))]
pub struct RwBlock {
    /// Bumped (and woken) by a reader that leaves while someone waits on
    /// it: a writer waiting for readers to drain, or a reader waiting for a
    /// free slot.
    pub drain_seq: AtomicU32,
    /// Non-zero while someone (holding the writers' word) waits on
    /// `drain_seq`.
    pub writer_waiting: AtomicU32,
    /// A death notice for the next holder of either kind:
    /// [`DEATH_ABANDONED`] when a writer ended abandoned (panic,
    /// finalisation), [`DEATH_CARRIED`] while a holder that was told of a
    /// death has not yet passed it on (its acquisition has not returned;
    /// it gave up); 0: none.
    pub death_pending: AtomicU32,
    /// Thread id of a reader holding the writers' word for a moment to be
    /// admitted; 0 otherwise. If that reader dies there, the next taker of
    /// the word knows it was a reader, not a writer.
    pub admitting_tid: AtomicU32,
    /// Read acquisitions not counted in a reader slot (each slot counts
    /// its own, [`ReaderSlot::reads`]; the total is this plus theirs).
    pub read_acquisitions: AtomicU64,
    /// Read acquisitions that had to wait.
    pub read_contended: AtomicU64,
    /// Readers found dead and freed.
    pub reader_deaths: AtomicU64,
    /// Read waits that gave up at their timeout.
    pub read_timeouts: AtomicU64,
    /// Sum of read waits, ns.
    pub read_wait_ns: AtomicU64,
    /// Bit `i` set while the reader in slot `i` holds the lock: what a
    /// writer checks (one word, not the whole table).
    pub occupied: AtomicU64,
}

/// A readers-writer lock file as mapped in memory: the first five blocks
/// are those of [`LockPage`].
#[repr(C)]
pub struct RwPage {
    /// What the file is.
    pub header: Header,
    /// The writers' lock word.
    pub mutex: MutexBlock,
    /// Which writer holds it.
    pub owner: OwnerRecord,
    /// How writers use it.
    pub stats: StatsBlock,
    /// Who waits: writers in the first half, readers in the second.
    pub waiters: [WaiterSlot; WAITER_SLOTS],
    /// The readers' state.
    pub rw: RwBlock,
    /// Who reads.
    pub readers: [ReaderSlot; READER_SLOTS],
    /// What happened lately: holds of both kinds, deaths found.
    pub events: EventRing,
}

const _: () = assert!(core::mem::size_of::<LockPage>() <= FILE_SIZE);
const _: () = assert!(core::mem::size_of::<RwPage>() <= FILE_SIZE);
const _: () = assert!(FILE_SIZE % 8 == 0);
const _: () = assert!(core::mem::size_of::<Header>() == 128);

/// [`RwBlock::death_pending`]: a writer ended abandoned; not yet counted.
pub const DEATH_ABANDONED: u32 = 1;
/// [`RwBlock::death_pending`]: a death already counted, to be told to the
/// next holder.
pub const DEATH_CARRIED: u32 = 2;

/// Flag bit: the hold began by taking over from a holder that died.
pub const FLAG_OWNER_DIED: u32 = 1;
/// Event flag bit: a read (shared) hold of a readers-writer lock; without
/// it, a write hold (or a mutex hold).
pub const FLAG_READ: u32 = 4;
/// Event flag bit: not a completed hold but a holder found dead holding
/// the lock (a reader whose share was freed, a writer whose death the next
/// holder was told of); the event's hold time runs until it was found.
pub const FLAG_DIED: u32 = 8;
/// Owner-record flag bit: a holder died, and the one that took over had to
/// let go again before using the lock; the next holder must be told.
pub const FLAG_DEATH_PENDING: u32 = 2;

/// `pid << 32 | tid`.
#[inline]
pub fn ident(pid: u32, tid: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(tid)
}

/// Split an `ident` into (pid, tid).
#[inline]
pub fn split_ident(ident: u64) -> (u32, u32) {
    ((ident >> 32) as u32, ident as u32)
}

/// The ABI tag of this build: architecture, C library, pointer size and
/// the robust-list `futex_offset` the lock block is laid out for, e.g.
/// `x86_64-gnu-ptr64-fo-32`. Builds whose lock blocks (node pointers,
/// node-to-word distance) differ cannot share a file.
pub fn abi_tag() -> String {
    let env = if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "musl") {
        "musl"
    } else {
        "other"
    };
    format!(
        "{}-{}-ptr{}-fo{}",
        std::env::consts::ARCH,
        env,
        usize::BITS,
        super::robust::FUTEX_OFFSET
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// The table in the module docs is the contract with other builds.
    #[test]
    fn offsets_match_the_documented_table() {
        assert_eq!(offset_of!(LockPage, header), 0);
        assert_eq!(offset_of!(LockPage, mutex), 128);
        assert_eq!(offset_of!(LockPage, owner), 192);
        assert_eq!(offset_of!(LockPage, stats), 256);
        assert_eq!(offset_of!(LockPage, waiters), 896);
        assert_eq!(offset_of!(LockPage, events), 2944);
        assert_eq!(size_of::<LockPage>(), 2944 + 5184);
        assert_eq!(offset_of!(Header, version), 8);
        assert_eq!(offset_of!(Header, init_state), 12);
        assert_eq!(offset_of!(Header, pid_ns), 24);
        assert_eq!(offset_of!(Header, abi), 40);
        assert_eq!(offset_of!(Header, retired), 72);
        assert_eq!(offset_of!(Header, starving_tid), 76);
        assert_eq!(offset_of!(Header, starving_beat_ns), 88);
        assert_eq!(offset_of!(Header, boot_id), 96);
        assert_eq!(offset_of!(Header, kind), 112);
    }

    /// The readers-writer page shares the mutex page's first blocks.
    #[test]
    fn rwlock_offsets_match_the_documented_table() {
        assert_eq!(offset_of!(RwPage, header), 0);
        assert_eq!(offset_of!(RwPage, mutex), 128);
        assert_eq!(offset_of!(RwPage, owner), 192);
        assert_eq!(offset_of!(RwPage, stats), 256);
        assert_eq!(offset_of!(RwPage, waiters), 896);
        assert_eq!(offset_of!(RwPage, rw), 2944);
        assert_eq!(offset_of!(RwPage, readers), 3008);
        assert_eq!(offset_of!(RwPage, events), 7104);
        assert_eq!(size_of::<RwBlock>(), 64);
        assert_eq!(size_of::<WaiterSlot>(), 64);
        assert_eq!(size_of::<EventRing>(), 5184);
        assert_eq!(size_of::<RwPage>(), 12288);
        assert_eq!(size_of::<RwPage>(), FILE_SIZE);
    }

    /// The node's `next` field plus glibc's `futex_offset` is the word.
    #[test]
    fn robust_node_sits_where_the_kernel_looks() {
        let word = offset_of!(LockPage, mutex);
        assert_eq!(word, 128);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            crate::raw::mutex::NODE_NEXT_OFFSET,
            32,
            "node.next at 160 on 64-bit"
        );
        #[cfg(target_pointer_width = "32")]
        assert_eq!(crate::raw::mutex::NODE_NEXT_OFFSET, 20);
        assert_eq!(
            crate::raw::mutex::NODE_NEXT_OFFSET as isize + crate::raw::robust::FUTEX_OFFSET,
            0
        );
    }

    #[test]
    fn abi_tag_names_pointer_size_and_futex_offset() {
        let tag = abi_tag();
        assert!(tag.contains(&format!("-ptr{}-", usize::BITS)), "{tag}");
        assert!(
            tag.ends_with(&format!("-fo{}", crate::raw::robust::FUTEX_OFFSET)),
            "{tag}"
        );
    }

    #[test]
    fn text_round_trips_and_truncates_on_char_boundaries() {
        assert_eq!(text_string(&text_bytes("motor.py")), "motor.py");
        let long = "é".repeat(20); // 40 bytes
        let s = text_string(&text_bytes(&long));
        assert_eq!(s, "é".repeat(16));
    }
}
