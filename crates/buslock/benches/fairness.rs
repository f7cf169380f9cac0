//! Fairness under contention: buslock against `flock`, in the same run.
//!
//! For each lock kind this binary re-executes itself as [`WORKERS`] worker
//! processes that all start at the same `CLOCK_MONOTONIC` instant. Each
//! worker, for [`RUN`]: requests the lock, notes how long it waited, reads
//! and rewrites a "last holder" id in a small shared file (so it knows
//! whether it took the lock over from another process, and can check that
//! nobody else entered meanwhile), holds the lock for [`HOLD`] by spinning
//! (not sleeping), releases it and re-requests at once. After the run each
//! worker writes one line per acquisition (`wait_ns took_over`) to its own
//! file; the parent reads them all and prints, per kind: acquisitions per
//! process and their max/min ratio, and the p50, p99 and worst wait of the
//! acquisitions that took the lock over from another process.
//!
//! Run with `cargo bench -p buslock --bench fairness`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use buslock::{DirSource, LockDir, Mutex, OpenMode};
use rustix::fs::{FlockOperation, flock};
use rustix::time::{ClockId, clock_gettime};

const WORKERS: u64 = 4;
const HOLD: Duration = Duration::from_micros(50);
const RUN: Duration = Duration::from_secs(3);
/// Time the workers get to start before the common start instant.
const START_DELAY: Duration = Duration::from_millis(300);
/// How long after the end of the run the parent waits before it kills the
/// workers and reports a failure.
const WATCHDOG_GRACE: Duration = Duration::from_secs(10);

const LOCK_NAME: &str = "FAIR";

/// Environment of a worker: the lock kind (`buslock` or `flock`), its id
/// (1..=WORKERS), the directory, and the start instant and run length.
const ENV_KIND: &str = "BUSLOCK_FAIRNESS_WORKER";
const ENV_ID: &str = "BUSLOCK_FAIRNESS_ID";
const ENV_DIR: &str = "BUSLOCK_FAIRNESS_DIR";
const ENV_START_NS: &str = "BUSLOCK_FAIRNESS_START_NS";
const ENV_RUN_NS: &str = "BUSLOCK_FAIRNESS_RUN_NS";

type BoxError = Box<dyn std::error::Error>;

/// The two locks under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Buslock,
    Flock,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Buslock => "buslock",
            Kind::Flock => "flock",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Buslock, Kind::Flock]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// `CLOCK_MONOTONIC` in ns: the same clock in every process.
fn mono_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn holder_path(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("{}.holder", kind.as_str()))
}

fn flock_path(dir: &Path) -> PathBuf {
    dir.join("flock.lock")
}

fn output_path(dir: &Path, kind: Kind, id: u64) -> PathBuf {
    dir.join(format!("{}-{id}.out", kind.as_str()))
}

fn env_u64(name: &str) -> Result<u64, BoxError> {
    let value = std::env::var(name).map_err(|e| format!("worker needs ${name}: {e}"))?;
    Ok(value
        .parse()
        .map_err(|e| format!("${name}={value:?} is not a number: {e}"))?)
}

// ---------------------------------------------------------------- worker --

/// One lock kind behind the same take/release calls.
enum WorkerLock {
    Buslock(Box<Mutex>),
    Flock(File),
}

/// What a worker's loop records per acquisition.
struct Record {
    wait_ns: u64,
    took_over: bool,
}

fn run_worker(kind: Kind) -> Result<(), BoxError> {
    let id = env_u64(ENV_ID)?;
    let dir = PathBuf::from(std::env::var_os(ENV_DIR).ok_or("worker needs $BUSLOCK_FAIRNESS_DIR")?);
    let start = env_u64(ENV_START_NS)?;
    let end = start + env_u64(ENV_RUN_NS)?;
    let hold_ns = HOLD.as_nanos() as u64;

    let lock = match kind {
        Kind::Buslock => WorkerLock::Buslock(Box::new(Mutex::open_in(
            &LockDir::open(&dir, DirSource::Explicit)?,
            LOCK_NAME,
            OpenMode::Existing,
        )?)),
        Kind::Flock => WorkerLock::Flock(File::open(flock_path(&dir))?),
    };
    let holder = OpenOptions::new()
        .read(true)
        .write(true)
        .open(holder_path(&dir, kind))?;
    let mut records: Vec<Record> = Vec::with_capacity(100_000);
    let mut violations: u64 = 0;
    let mut buf = [0u8; 8];

    // Sleep until just before the common start, then spin to it.
    let now = mono_ns();
    if start > now + 2_000_000 {
        std::thread::sleep(Duration::from_nanos(start - now - 2_000_000));
    }
    while mono_ns() < start {
        std::hint::spin_loop();
    }

    while mono_ns() < end {
        let requested = mono_ns();
        let guard = match &lock {
            WorkerLock::Buslock(m) => Some(m.lock()?),
            WorkerLock::Flock(f) => {
                flock(f, FlockOperation::LockExclusive)?;
                None
            }
        };
        let acquired = mono_ns();

        holder.read_exact_at(&mut buf, 0)?;
        let previous = u64::from_le_bytes(buf);
        holder.write_all_at(&id.to_le_bytes(), 0)?;
        while mono_ns() < acquired + hold_ns {
            std::hint::spin_loop();
        }
        holder.read_exact_at(&mut buf, 0)?;
        if u64::from_le_bytes(buf) != id {
            violations += 1;
        }

        match &lock {
            WorkerLock::Buslock(_) => drop(guard),
            WorkerLock::Flock(f) => flock(f, FlockOperation::Unlock)?,
        }
        records.push(Record {
            wait_ns: acquired - requested,
            took_over: previous != 0 && previous != id,
        });
    }

    let mut out = BufWriter::new(File::create(output_path(&dir, kind, id))?);
    writeln!(out, "violations {violations}")?;
    for r in &records {
        writeln!(out, "{} {}", r.wait_ns, u8::from(r.took_over))?;
    }
    out.flush()?;
    Ok(())
}

// ---------------------------------------------------------------- parent --

/// What one worker reported.
struct WorkerReport {
    waits: Vec<(u64, bool)>,
    violations: u64,
}

/// The aggregate of one lock kind's run.
struct Summary {
    per_process: Vec<usize>,
    took_over_waits: Vec<u64>,
    violations: u64,
}

impl Summary {
    fn total(&self) -> usize {
        self.per_process.iter().sum()
    }

    fn max_min(&self) -> String {
        let max = self.per_process.iter().copied().max().unwrap_or(0);
        let min = self.per_process.iter().copied().min().unwrap_or(0);
        if min == 0 {
            "inf (a process starved)".to_string()
        } else {
            format!("{:.2}x", max as f64 / min as f64)
        }
    }

    /// Nearest-rank quantile of the took-over waits, in µs.
    fn wait_us(&self, q: f64) -> String {
        if self.took_over_waits.is_empty() {
            return "-".to_string();
        }
        let n = self.took_over_waits.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        format!("{:.1} µs", self.took_over_waits[rank - 1] as f64 / 1000.0)
    }
}

fn read_report(path: &Path) -> Result<WorkerReport, BoxError> {
    let file = File::open(path).map_err(|e| format!("worker output {}: {e}", path.display()))?;
    let mut report = WorkerReport {
        waits: Vec::new(),
        violations: 0,
    };
    for line in BufReader::new(file).lines() {
        let line = line?;
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some("violations"), Some(v)) => report.violations = v.parse()?,
            (Some(wait), Some(took)) => report.waits.push((wait.parse()?, took == "1")),
            _ => return Err(format!("bad line {line:?} in {}", path.display()).into()),
        }
    }
    Ok(report)
}

fn kill_all(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Wait for every worker, killing them all if one fails or the run
/// overruns its deadline.
fn wait_all(children: &mut [Child], deadline_ns: u64) -> Result<(), BoxError> {
    let mut done = vec![false; children.len()];
    while done.iter().any(|d| !d) {
        for (i, child) in children.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            if let Some(status) = child.try_wait()? {
                done[i] = true;
                if !status.success() {
                    kill_all(children);
                    return Err(format!("worker {} failed: {status}", i + 1).into());
                }
            }
        }
        if mono_ns() > deadline_ns {
            kill_all(children);
            return Err("workers overran the watchdog; killed them".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn run_kind(dir: &Path, kind: Kind) -> Result<Summary, BoxError> {
    match kind {
        Kind::Buslock => {
            Mutex::open_in(
                &LockDir::open(dir, DirSource::Explicit)?,
                LOCK_NAME,
                OpenMode::Create,
            )?;
        }
        Kind::Flock => {
            File::create(flock_path(dir))?;
        }
    }
    std::fs::write(holder_path(dir, kind), 0u64.to_le_bytes())?;

    let exe = std::env::current_exe()?;
    let start = mono_ns() + START_DELAY.as_nanos() as u64;
    let run_ns = RUN.as_nanos() as u64;
    let mut children = Vec::new();
    for id in 1..=WORKERS {
        let spawned = Command::new(&exe)
            .env(ENV_KIND, kind.as_str())
            .env(ENV_ID, id.to_string())
            .env(ENV_DIR, dir)
            .env(ENV_START_NS, start.to_string())
            .env(ENV_RUN_NS, run_ns.to_string())
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(e) => {
                kill_all(&mut children);
                return Err(format!("could not start worker {id}: {e}").into());
            }
        }
    }
    wait_all(
        &mut children,
        start + run_ns + WATCHDOG_GRACE.as_nanos() as u64,
    )?;

    let mut summary = Summary {
        per_process: Vec::new(),
        took_over_waits: Vec::new(),
        violations: 0,
    };
    for id in 1..=WORKERS {
        let report = read_report(&output_path(dir, kind, id))?;
        summary.per_process.push(report.waits.len());
        summary.violations += report.violations;
        summary.took_over_waits.extend(
            report
                .waits
                .iter()
                .filter(|(_, took_over)| *took_over)
                .map(|(wait, _)| *wait),
        );
    }
    summary.took_over_waits.sort_unstable();
    Ok(summary)
}

fn main() -> Result<(), BoxError> {
    if let Ok(kind) = std::env::var(ENV_KIND) {
        let kind = Kind::parse(&kind).ok_or_else(|| format!("unknown worker kind {kind:?}"))?;
        return run_worker(kind);
    }

    let tmp = tempfile::tempdir()?;
    println!(
        "fairness: {WORKERS} processes, each holds ~{HOLD:?} (busy), re-requests at once, {RUN:?} per lock"
    );
    println!("lock dir: {} (temporary)", tmp.path().display());
    let buslock = run_kind(tmp.path(), Kind::Buslock)?;
    let flock = run_kind(tmp.path(), Kind::Flock)?;

    let list = |s: &Summary| {
        s.per_process
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let took_over = |s: &Summary| {
        let n = s.took_over_waits.len();
        format!("{n} ({:.0}%)", 100.0 * n as f64 / s.total().max(1) as f64)
    };
    let rows: Vec<(&str, String, String)> = vec![
        ("acquisitions per process", list(&buslock), list(&flock)),
        ("max/min", buslock.max_min(), flock.max_min()),
        (
            "acquisitions total (per s)",
            format!(
                "{} ({:.0}/s)",
                buslock.total(),
                buslock.total() as f64 / RUN.as_secs_f64()
            ),
            format!(
                "{} ({:.0}/s)",
                flock.total(),
                flock.total() as f64 / RUN.as_secs_f64()
            ),
        ),
        (
            "took over from another process",
            took_over(&buslock),
            took_over(&flock),
        ),
        (
            "took-over wait p50",
            buslock.wait_us(0.50),
            flock.wait_us(0.50),
        ),
        (
            "took-over wait p99",
            buslock.wait_us(0.99),
            flock.wait_us(0.99),
        ),
        (
            "took-over wait max",
            buslock.wait_us(1.0),
            flock.wait_us(1.0),
        ),
        (
            "exclusion violations",
            buslock.violations.to_string(),
            flock.violations.to_string(),
        ),
    ];
    println!();
    println!("{:<32} | {:<28} | flock", "metric", "buslock");
    println!("{}", "-".repeat(32 + 28 + 28 + 6));
    for (metric, b, f) in rows {
        println!("{metric:<32} | {b:<28} | {f}");
    }
    if buslock.violations + flock.violations > 0 {
        return Err("a worker saw another process inside the lock".into());
    }
    Ok(())
}
