//! Uncontended lock + unlock: buslock against the primitives it is built on
//! or competes with, measured in the same run.
//!
//! Candidates (one thread, nobody else touches the locks):
//!
//! - buslock `lock()` + drop and `try_lock()` + drop, with owner tracking
//!   and statistics, as every user gets them;
//! - the reference: glibc's robust PI process-shared error-checking
//!   `pthread_mutex_t` in a shared mapping (what buslock used before it
//!   owned its lock word), `pthread_mutex_lock` + `pthread_mutex_unlock`;
//! - buslock's own lock word alone, in a mapped lock file, without any
//!   bookkeeping (`LockFile::open` + `map.mutex()`): the floor;
//! - `std::sync::Mutex<()>` (an in-process futex lock, for scale);
//! - `flock(LOCK_EX)` / `flock(LOCK_UN)` on a kept-open fd (what Dexter's
//!   `DI_Mutex` does);
//! - optionally buslock `lock()` + drop with `BUSLOCK_CLOCK=syscall`, in a
//!   child process (the clock source is chosen once per process).
//!
//! Each candidate is warmed up (which also gets buslock past its 20 ms clock
//! calibration), then timed over several rounds of a fixed iteration count,
//! the candidates taking turns round by round; the median ns per iteration
//! is reported, with the fastest and slowest round beside it so variance
//! (other work on this 2-core machine) is visible.
//!
//! Run with `cargo bench -p buslock --bench uncontended`.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use buslock::lockfile::LockFile;
use buslock::raw::Acquire;
use buslock::{DirSource, LockDir, Mutex, OpenMode};
use rustix::fs::{FlockOperation, flock};

/// Environment variable that turns this binary into the syscall-clock child;
/// its value is the lock directory to use.
const CHILD_ENV: &str = "BUSLOCK_BENCH_SYSCALL_CLOCK_CHILD";
/// Prefix of the one line the child prints for the parent to parse.
const CHILD_LINE: &str = "buslock-syscall-clock-ns-per-op=";

const WARMUP: Duration = Duration::from_millis(300);
const ROUND: Duration = Duration::from_millis(200);
const ROUNDS: usize = 7;

type BoxError = Box<dyn std::error::Error>;

/// The timing of one candidate: ns per iteration of each round.
struct Timing {
    rounds: Vec<f64>,
}

impl Timing {
    fn median(&self) -> f64 {
        let mut sorted = self.rounds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn min(&self) -> f64 {
        self.rounds.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.rounds.iter().copied().fold(0.0, f64::max)
    }
}

/// A candidate: runs `n` iterations of its operation and returns the ns
/// per iteration. The loop inside is monomorphised, so the only dynamic
/// call is once per round.
type Candidate<'a> = Box<dyn FnMut(u64) -> f64 + 'a>;

fn candidate<'a>(mut op: impl FnMut() + 'a) -> Candidate<'a> {
    Box::new(move |iters| {
        let t = Instant::now();
        for _ in 0..iters {
            op();
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    })
}

/// Warm `run` up for [`WARMUP`] and return the iteration count of a round
/// of about [`ROUND`].
fn warm_up(run: &mut Candidate<'_>) -> u64 {
    let start = Instant::now();
    let mut iters: u64 = 0;
    while start.elapsed() < WARMUP {
        run(1000);
        iters += 1000;
    }
    let per_op = start.elapsed().as_secs_f64() / iters as f64;
    ((ROUND.as_secs_f64() / per_op) as u64).max(1000)
}

/// Time every candidate: warm each up, then [`ROUNDS`] rounds in which the
/// candidates take turns, so that a slow drift of the machine (frequency,
/// noisy neighbours) spreads over all of them instead of biasing one.
fn measure_all(candidates: &mut [(&str, Candidate<'_>)]) -> Vec<Timing> {
    let iters: Vec<u64> = candidates.iter_mut().map(|(_, run)| warm_up(run)).collect();
    let mut timings: Vec<Timing> = candidates
        .iter()
        .map(|_| Timing { rounds: Vec::new() })
        .collect();
    for _ in 0..ROUNDS {
        for (i, (_, run)) in candidates.iter_mut().enumerate() {
            timings[i].rounds.push(run(iters[i]));
        }
    }
    timings
}

fn open_lock_dir(dir: &Path) -> Result<LockDir, BoxError> {
    Ok(LockDir::open(dir, DirSource::Explicit)?)
}

/// `m.lock()` + drop, the path every user takes.
fn buslock_lock(m: &Mutex) -> Candidate<'_> {
    candidate(|| {
        let guard = m.lock().expect("buslock lock() failed uncontended");
        drop(black_box(guard));
    })
}

/// buslock's lock word alone: lock + unlock, no bookkeeping.
fn raw_lock(raw: &LockFile) -> Candidate<'_> {
    let mutex = raw.map.mutex();
    candidate(move || {
        let got = mutex.lock().expect("lock word lock failed");
        assert_eq!(got, Acquire::Taken);
        mutex.unlock().expect("lock word unlock failed");
    })
}

/// The reference: a glibc robust PI process-shared error-checking pthread
/// mutex in a shared anonymous mapping (the bench's own code; buslock no
/// longer uses pthread mutexes).
mod glibc {
    /// A `pthread_mutex_t` in a `MAP_SHARED` page.
    pub struct PthreadMutex {
        page: *mut libc::c_void,
    }

    impl PthreadMutex {
        pub fn new() -> PthreadMutex {
            // SAFETY: a fresh anonymous shared mapping, initialised with
            // pthread_mutex_init before use, unmapped on drop; attribute
            // calls get a valid attribute object.
            unsafe {
                let page = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(page, libc::MAP_FAILED, "mmap failed");
                let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
                assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
                assert_eq!(
                    libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_setprotocol(&mut attr, libc::PTHREAD_PRIO_INHERIT),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK),
                    0
                );
                assert_eq!(libc::pthread_mutex_init(page.cast(), &attr), 0);
                libc::pthread_mutexattr_destroy(&mut attr);
                PthreadMutex { page }
            }
        }

        #[inline]
        pub fn lock(&self) {
            // SAFETY: initialised in `new`, mapped until drop.
            assert_eq!(unsafe { libc::pthread_mutex_lock(self.page.cast()) }, 0);
        }

        #[inline]
        pub fn try_lock(&self) {
            // SAFETY: as in `lock`.
            assert_eq!(unsafe { libc::pthread_mutex_trylock(self.page.cast()) }, 0);
        }

        #[inline]
        pub fn unlock(&self) {
            // SAFETY: as in `lock`; held by this thread.
            assert_eq!(unsafe { libc::pthread_mutex_unlock(self.page.cast()) }, 0);
        }
    }

    impl Drop for PthreadMutex {
        fn drop(&mut self) {
            // SAFETY: mapped in `new`, not held, no longer used.
            unsafe {
                libc::pthread_mutex_destroy(self.page.cast());
                libc::munmap(self.page, 4096);
            }
        }
    }
}

/// The glibc reference: `pthread_mutex_lock` + `pthread_mutex_unlock`.
fn glibc_lock(m: &glibc::PthreadMutex) -> Candidate<'_> {
    candidate(move || {
        m.lock();
        m.unlock();
    })
}

/// The child role: measure buslock `lock()` + drop with whatever clock the
/// environment selects, beside the raw mutex in the same process, and
/// print one parseable line: `<buslock ns> <raw ns>`.
fn run_child(dir: &Path) -> Result<(), BoxError> {
    let lock_dir = open_lock_dir(dir)?;
    let m = Mutex::open_in(&lock_dir, "child", OpenMode::Create)?;
    let reference = glibc::PthreadMutex::new();
    let timings = measure_all(&mut [
        ("buslock", buslock_lock(&m)),
        ("glibc", glibc_lock(&reference)),
    ]);
    println!(
        "{CHILD_LINE}{:.3} {:.3}",
        timings[0].median(),
        timings[1].median()
    );
    Ok(())
}

/// Re-run this binary as the child with `BUSLOCK_CLOCK=syscall`: its
/// (buslock, raw) ns per op, or `None` (with a note on stderr) when that
/// fails, since this row is optional.
fn syscall_clock_in_child(dir: &Path) -> Option<(f64, f64)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .env(CHILD_ENV, dir)
        .env("BUSLOCK_CLOCK", "syscall")
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!(
                "note: syscall-clock child failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("note: could not start the syscall-clock child: {e}");
            return None;
        }
    };
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(CHILD_LINE).map(str::to_owned))?;
    let mut fields = line.split_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(bus)), Some(Ok(raw))) => Some((bus, raw)),
        _ => None,
    }
}

fn main() -> Result<(), BoxError> {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return run_child(Path::new(&dir));
    }

    let tmp = tempfile::tempdir()?;
    let dir = open_lock_dir(tmp.path())?;

    println!("uncontended lock + unlock, one thread, median of {ROUNDS} rounds of ~{ROUND:?}");
    println!("lock dir: {} (temporary)", tmp.path().display());
    match std::env::var("BUSLOCK_CLOCK") {
        Ok(v) => println!("BUSLOCK_CLOCK={v} in this process"),
        Err(_) => println!("BUSLOCK_CLOCK unset (cycle counter where the kernel trusts it)"),
    }
    println!();

    const BUS: &str = "buslock lock() + drop";
    const BUS_TRY: &str = "buslock try_lock() + drop";
    const GLIBC: &str = "glibc robust PI pthread mutex lock + unlock";
    const GLIBC_TRY: &str = "glibc robust PI pthread trylock + unlock";
    const WORD: &str = "buslock lock word alone lock + unlock";
    const WORD_TRY: &str = "buslock lock word alone try_lock + unlock";
    const STD: &str = "std::sync::Mutex<()>";
    const FLOCK: &str = "flock(LOCK_EX) + flock(LOCK_UN)";

    let m = Mutex::open_in(&dir, "bench", OpenMode::Create)?;
    let raw = LockFile::open(&dir, "raw", OpenMode::Create)?;
    let raw_mutex = raw.map.mutex();
    let reference = glibc::PthreadMutex::new();
    let std_mutex = std::sync::Mutex::new(());
    let flock_file = std::fs::File::create(tmp.path().join("flock.lock"))?;

    let mut candidates: Vec<(&str, Candidate<'_>)> = vec![
        (BUS, buslock_lock(&m)),
        (
            BUS_TRY,
            candidate(|| {
                let guard = m
                    .try_lock()
                    .expect("buslock try_lock() failed")
                    .expect("buslock try_lock() found the lock busy");
                drop(black_box(guard));
            }),
        ),
        (GLIBC, glibc_lock(&reference)),
        (
            GLIBC_TRY,
            candidate(|| {
                reference.try_lock();
                reference.unlock();
            }),
        ),
        (WORD, raw_lock(&raw)),
        (
            WORD_TRY,
            candidate(|| {
                let got = raw_mutex.try_lock().expect("lock word try_lock failed");
                assert_eq!(got, Acquire::Taken);
                raw_mutex.unlock().expect("lock word unlock failed");
            }),
        ),
        (
            STD,
            candidate(|| {
                let guard = std_mutex.lock().expect("std mutex poisoned");
                drop(black_box(guard));
            }),
        ),
        (
            FLOCK,
            candidate(|| {
                flock(&flock_file, FlockOperation::LockExclusive).expect("flock(LOCK_EX) failed");
                flock(&flock_file, FlockOperation::Unlock).expect("flock(LOCK_UN) failed");
            }),
        ),
    ];
    let timings = measure_all(&mut candidates);
    let rows: Vec<(&str, Timing)> = candidates
        .iter()
        .map(|(name, _)| *name)
        .zip(timings)
        .collect();
    drop(candidates);

    let syscall_clock = syscall_clock_in_child(tmp.path());

    let timing_of = |name: &str| {
        rows.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .expect("row measured above")
    };
    let (raw, raw_try, word, bus, bus_try, flock) = (
        timing_of(GLIBC),
        timing_of(GLIBC_TRY),
        timing_of(WORD),
        timing_of(BUS),
        timing_of(BUS_TRY),
        timing_of(FLOCK),
    );
    let (raw_ns, bus_ns) = (raw.median(), bus.median());

    println!(
        "{:<46} | {:>9} | {:>17} | {:>12} | {:>12}",
        "candidate", "ns/op", "rounds min..max", "vs glibc", "vs buslock"
    );
    println!("{}", "-".repeat(46 + 9 + 17 + 12 + 12 + 4 * 3));
    let print_row = |name: &str, median: f64, spread: Option<(f64, f64)>| {
        let spread = spread.map_or_else(
            || "(child)".to_string(),
            |(lo, hi)| format!("{lo:.2}..{hi:.2}"),
        );
        println!(
            "{:<46} | {:>9.2} | {:>17} | {:>11.2}x | {:>11.2}x",
            name,
            median,
            spread,
            median / raw_ns,
            median / bus_ns
        );
    };
    for (name, timing) in &rows {
        print_row(name, timing.median(), Some((timing.min(), timing.max())));
    }
    if let Some((ns, _)) = syscall_clock {
        print_row("buslock lock() + drop, BUSLOCK_CLOCK=syscall", ns, None);
    }
    println!();
    println!("ratios of medians (of fastest rounds, less sensitive to other load, in brackets):");
    println!(
        "buslock / glibc robust PI mutex = {:.2}x [{:.2}x] (target <= 2x)",
        bus.median() / raw.median(),
        bus.min() / raw.min()
    );
    println!(
        "buslock try_lock / glibc trylock = {:.2}x [{:.2}x]",
        bus_try.median() / raw_try.median(),
        bus_try.min() / raw_try.min()
    );
    println!(
        "buslock lock word alone / glibc robust PI mutex = {:.2}x [{:.2}x]",
        word.median() / raw.median(),
        word.min() / raw.min()
    );
    if let Some((ns, child_raw_ns)) = syscall_clock {
        println!(
            "buslock with BUSLOCK_CLOCK=syscall / glibc = {:.2}x (both in a child process: {ns:.2} / {child_raw_ns:.2} ns)",
            ns / child_raw_ns
        );
    }
    println!(
        "flock / buslock = {:.1}x [{:.1}x] (target >= 8x)",
        flock.median() / bus.median(),
        flock.min() / bus.min()
    );
    Ok(())
}
