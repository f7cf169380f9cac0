//! Fuzzing everything that reads a lock file: arbitrary bytes, truncated
//! files and mutations of a valid file are written to a lock path, opened
//! without creating, and read with every reader (`owner`, `stats`,
//! `waiters`, `events_since`, `event_head`, `is_locked`,
//! `is_held_by_current_thread`), then opened again with `create(true)`.
//! Nothing may panic or hang; garbage must be an error or harmless values.
//! `lock()` is never called on garbage mutex bytes.
//!
//! `BUSLOCK_FUZZ_CASES=N` sets the number of cases per property (default
//! 500); see docs/RELIABILITY.md for the long run.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::sync::{Mutex as StdMutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use buslock::Mutex;
use buslock::raw::layout::{
    EventRing, FILE_SIZE, Header, LockPage, MutexBlock, OwnerRecord, StatsBlock, WAITER_SLOTS,
    WaiterSlot,
};
use proptest::prelude::*;

/// A case that runs longer than this is a hang: the watchdog aborts.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// Blocks of the layout (`buslock::raw::layout::LockPage`): start, end.
const REGIONS: [(usize, usize); 6] = [
    region(offset_of!(LockPage, header), size_of::<Header>()),
    region(offset_of!(LockPage, mutex), size_of::<MutexBlock>()),
    region(offset_of!(LockPage, owner), size_of::<OwnerRecord>()),
    region(offset_of!(LockPage, stats), size_of::<StatsBlock>()),
    region(
        offset_of!(LockPage, waiters),
        size_of::<[WaiterSlot; WAITER_SLOTS]>(),
    ),
    region(offset_of!(LockPage, events), size_of::<EventRing>()),
];

const fn region(start: usize, len: usize) -> (usize, usize) {
    (start, start + len)
}

const HEADER_LEN: usize = size_of::<Header>();

fn cases() -> u32 {
    std::env::var("BUSLOCK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

struct Fixture {
    dir: tempfile::TempDir,
    valid: Vec<u8>,
}

/// A directory with a valid, used lock file to mutate, and a watchdog.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let m = Mutex::builder("TEMPLATE").dir(dir.path()).open().unwrap();
        for _ in 0..100 {
            drop(m.lock().unwrap());
        }
        let held = m.lock().unwrap();
        let valid = std::fs::read(m.path()).unwrap();
        drop(held);
        assert_eq!(valid.len(), FILE_SIZE);
        start_watchdog();
        Fixture { dir, valid }
    })
}

/// The cases running now, per test thread: when they started, their input.
static ACTIVE: StdMutex<Vec<(ThreadId, Instant, Vec<u8>)>> = StdMutex::new(Vec::new());

fn active() -> std::sync::MutexGuard<'static, Vec<(ThreadId, Instant, Vec<u8>)>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_watchdog() {
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let cases = active();
            if let Some((_, _, input)) = cases.iter().find(|(_, t, _)| t.elapsed() > CASE_LIMIT) {
                let saved = std::env::temp_dir().join("buslock-fuzz-hang.lock");
                let _ = std::fs::write(&saved, input);
                eprintln!(
                    "watchdog: a fuzz case ran for over {CASE_LIMIT:?}; its input is in {}",
                    saved.display()
                );
                std::process::abort();
            }
        }
    });
}

/// Read a lock with every reader. Never locks.
fn read_everything(dir: &Path, create: bool) {
    let Ok(m) = Mutex::builder("F").dir(dir).create(create).open() else {
        return;
    };
    let owner = m.owner().unwrap();
    if let Some(o) = owner {
        let _ = (o.is_alive(), o.state.as_str(), o.program.len());
    }
    let stats = m.stats().unwrap();
    let _ = (stats.contention_ratio(), stats.longest_hold.as_ref());
    for w in m.waiters().unwrap() {
        let _ = w.state.as_str();
    }
    let (events, next) = m.events_since(0);
    assert!(events.len() <= 64, "more events than ring slots");
    let _ = m.events_since(next);
    let _ = m.events_since(u64::MAX);
    let _ = m.event_head();
    let _ = m.is_locked();
    assert!(!m.is_held_by_current_thread() || owner_is_me(&m));
}

fn owner_is_me(m: &Mutex) -> bool {
    m.owner()
        .unwrap()
        .is_some_and(|o| o.pid == std::process::id())
}

thread_local! {
    /// Each test thread gets its own lock directory: rewriting a file that
    /// another thread has mapped would truncate it under that mapping
    /// (`SIGBUS`, a documented limit, not a finding).
    static CASE_DIR: tempfile::TempDir = tempfile::tempdir_in(fixture().dir.path()).unwrap();
}

/// Write `bytes` as lock `F` and read it, under the watchdog.
fn check(bytes: &[u8]) {
    let _ = fixture();
    CASE_DIR.with(|dir| {
        std::fs::write(dir.path().join("F.lock"), bytes).unwrap();
        let me = std::thread::current().id();
        active().push((me, Instant::now(), bytes.to_vec()));
        read_everything(dir.path(), false);
        read_everything(dir.path(), true);
        active().retain(|(t, _, _)| *t != me);
    });
}

/// Interesting 64-bit values for overwriting words.
fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::from(u32::MAX)),
        Just(1 << 63),
        Just(u64::from(std::process::id())),
        Just(u64::from(std::process::id()) << 32 | u64::from(std::process::id())),
        Just(64),
        Just(65),
        any::<u64>(),
    ]
}

fn offset_in_region() -> impl Strategy<Value = usize> {
    (0..REGIONS.len()).prop_flat_map(|r| REGIONS[r].0..REGIONS[r].1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_of_any_length(bytes in prop::collection::vec(any::<u8>(), 0..=FILE_SIZE + 64)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_body_behind_a_valid_header(body in prop::collection::vec(any::<u8>(), FILE_SIZE - HEADER_LEN)) {
        let mut bytes = fixture().valid[..HEADER_LEN].to_vec();
        bytes.extend_from_slice(&body);
        check(&bytes);
    }

    #[test]
    fn valid_file_with_flipped_bytes(flips in prop::collection::vec((offset_in_region(), any::<u8>()), 1..64)) {
        let mut bytes = fixture().valid.clone();
        for (at, x) in flips {
            bytes[at] ^= x.max(1);
        }
        check(&bytes);
    }

    #[test]
    fn valid_file_with_overwritten_words(words in prop::collection::vec((offset_in_region(), word()), 1..32)) {
        let mut bytes = fixture().valid.clone();
        for (at, w) in words {
            let at = at & !7;
            bytes[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
        check(&bytes);
    }

    #[test]
    fn valid_file_truncated_or_extended(len in 0..FILE_SIZE * 2) {
        let mut bytes = fixture().valid.clone();
        bytes.resize(len, 0);
        check(&bytes);
    }
}

/// Offset of the wait-time histogram in a lock file.
const WAIT_HIST_OFFSET: usize = offset_of!(LockPage, stats) + offset_of!(StatsBlock, wait_hist);

#[test]
fn histogram_of_garbage_buckets_does_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mutex::builder("HIST").dir(dir.path()).open().unwrap();
    let mut bytes = std::fs::read(m.path()).unwrap();
    drop(m);
    for b in 0..2 {
        let at = WAIT_HIST_OFFSET + b * 8;
        bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    }
    std::fs::write(dir.path().join("HIST.lock"), &bytes).unwrap();
    let m = Mutex::builder("HIST")
        .dir(dir.path())
        .create(false)
        .open()
        .unwrap();
    let stats = m.stats().unwrap();
    assert_eq!(stats.wait_histogram.buckets[0], u64::MAX, "offset check");
    // What `buslock stats` and `doctor` print.
    let _ = stats.wait_histogram.count();
    let _ = stats.wait_histogram.quantile_upper_bound(0.99);
}
