//! Uncontended lock + unlock: buslock against the primitives it is built on
//! or competes with, measured in the same run.
//!
//! Candidates (one thread, nobody else touches the locks):
//!
//! - buslock `lock()` + drop and `try_lock()` + drop, with owner tracking
//!   and statistics, as every user gets them;
//! - the raw robust PI pthread mutex in the same kind of mapped lock file,
//!   without any bookkeeping (`LockFile::open` + `map.mutex()`): the floor;
//! - `std::sync::Mutex<()>` (an in-process futex lock, for scale);
//! - `flock(LOCK_EX)` / `flock(LOCK_UN)` on a kept-open fd (what Dexter's
//!   `DI_Mutex` does);
//! - optionally buslock `lock()` + drop with `BUSLOCK_CLOCK=syscall`, in a
//!   child process (the clock source is chosen once per process).
//!
//! Each candidate is warmed up, then timed over several rounds of a fixed
//! iteration count; the median ns per iteration is reported, with the
//! fastest and slowest round beside it so variance is visible.
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

/// Time `op`: warm up for [`WARMUP`] (which also sizes the rounds), then
/// [`ROUNDS`] rounds of about [`ROUND`] each.
fn measure(mut op: impl FnMut()) -> Timing {
    let start = Instant::now();
    let mut warm_iters: u64 = 0;
    while start.elapsed() < WARMUP {
        for _ in 0..1000 {
            op();
        }
        warm_iters += 1000;
    }
    let per_op = start.elapsed().as_secs_f64() / warm_iters as f64;
    let iters = ((ROUND.as_secs_f64() / per_op) as u64).max(1000);
    let rounds = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                op();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    Timing { rounds }
}

fn open_lock_dir(dir: &Path) -> Result<LockDir, BoxError> {
    Ok(LockDir::open(dir, DirSource::Explicit)?)
}

/// `m.lock()` + drop, the path every user takes.
fn bench_buslock_lock(m: &Mutex) -> Timing {
    measure(|| {
        let guard = m.lock().expect("buslock lock() failed uncontended");
        drop(black_box(guard));
    })
}

/// The child role: measure buslock `lock()` + drop with whatever clock the
/// environment selects, and print one parseable line.
fn run_child(dir: &Path) -> Result<(), BoxError> {
    let m = Mutex::open_in(&open_lock_dir(dir)?, "child", OpenMode::Create)?;
    let timing = bench_buslock_lock(&m);
    println!("{CHILD_LINE}{:.3}", timing.median());
    Ok(())
}

/// Re-run this binary as the child with `BUSLOCK_CLOCK=syscall`; `None`
/// (with a note on stderr) when that fails, since this row is optional.
fn syscall_clock_in_child(dir: &Path) -> Option<f64> {
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
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(CHILD_LINE)?.trim().parse().ok())
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

    let mut rows: Vec<(&str, Timing)> = Vec::new();

    let m = Mutex::open_in(&dir, "bench", OpenMode::Create)?;
    rows.push(("buslock lock() + drop", bench_buslock_lock(&m)));
    rows.push((
        "buslock try_lock() + drop",
        measure(|| {
            let guard = m
                .try_lock()
                .expect("buslock try_lock() failed")
                .expect("buslock try_lock() found the lock busy");
            drop(black_box(guard));
        }),
    ));

    let raw = LockFile::open(&dir, "raw", OpenMode::Create)?;
    let raw_mutex = raw.map.mutex();
    rows.push((
        "raw robust PI lock + unlock",
        measure(|| {
            let got = raw_mutex.lock().expect("raw pthread_mutex_lock failed");
            assert_eq!(got, Acquire::Taken);
            raw_mutex.unlock().expect("raw pthread_mutex_unlock failed");
        }),
    ));
    rows.push((
        "raw robust PI trylock + unlock",
        measure(|| {
            let got = raw_mutex
                .try_lock()
                .expect("raw pthread_mutex_trylock failed");
            assert_eq!(got, Acquire::Taken);
            raw_mutex.unlock().expect("raw pthread_mutex_unlock failed");
        }),
    ));

    let std_mutex = std::sync::Mutex::new(());
    rows.push((
        "std::sync::Mutex<()>",
        measure(|| {
            let guard = std_mutex.lock().expect("std mutex poisoned");
            drop(black_box(guard));
        }),
    ));

    let flock_file = std::fs::File::create(tmp.path().join("flock.lock"))?;
    rows.push((
        "flock(LOCK_EX) + flock(LOCK_UN)",
        measure(|| {
            flock(&flock_file, FlockOperation::LockExclusive).expect("flock(LOCK_EX) failed");
            flock(&flock_file, FlockOperation::Unlock).expect("flock(LOCK_UN) failed");
        }),
    ));

    let syscall_clock = syscall_clock_in_child(tmp.path());

    let median_of = |name: &str| {
        rows.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.median())
            .expect("row measured above")
    };
    let raw_ns = median_of("raw robust PI lock + unlock");
    let raw_try_ns = median_of("raw robust PI trylock + unlock");
    let bus_ns = median_of("buslock lock() + drop");
    let bus_try_ns = median_of("buslock try_lock() + drop");
    let flock_ns = median_of("flock(LOCK_EX) + flock(LOCK_UN)");

    println!(
        "{:<40} | {:>9} | {:>17} | {:>12} | {:>12}",
        "candidate", "ns/op", "rounds min..max", "vs raw PI", "vs buslock"
    );
    println!("{}", "-".repeat(40 + 9 + 17 + 12 + 12 + 4 * 3));
    let print_row = |name: &str, median: f64, spread: Option<(f64, f64)>| {
        let spread = spread.map_or_else(
            || "(child)".to_string(),
            |(lo, hi)| format!("{lo:.2}..{hi:.2}"),
        );
        println!(
            "{:<40} | {:>9.2} | {:>17} | {:>11.2}x | {:>11.2}x",
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
    if let Some(ns) = syscall_clock {
        print_row("buslock lock() + drop, BUSLOCK_CLOCK=syscall", ns, None);
    }
    println!();
    println!(
        "buslock / raw PI = {:.2}x (target <= 3x, stretch <= 2x)",
        bus_ns / raw_ns
    );
    println!(
        "buslock try_lock / raw PI trylock = {:.2}x",
        bus_try_ns / raw_try_ns
    );
    if let Some(ns) = syscall_clock {
        println!(
            "buslock (BUSLOCK_CLOCK=syscall, child process) / raw PI = {:.2}x",
            ns / raw_ns
        );
    }
    println!(
        "flock / buslock = {:.1}x (target >= 30x)",
        flock_ns / bus_ns
    );
    Ok(())
}
