//! `buslock-torture crash`: workers hammer one lock while a killer
//! `SIGKILL`s them at random moments; then every log is checked.
//!
//! See `docs/RELIABILITY.md` for what is checked and why.

pub mod analysis;
pub mod kill;
pub mod log;
pub mod pool;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use buslock::Mutex;

use self::analysis::{FinalAcquisition, analyse};
use self::kill::{Kill, stop_inspect_kill};
use self::pool::{Pool, stderr_of};
use crate::args::Args;
use crate::clock::{mono_ns, ms};
use crate::futex::FutexWord;
use crate::shared::SharedState;

/// Name of the lock every worker of a crash run uses.
pub const LOCK_NAME: &str = "torture";
/// Workers stop when this file exists in the run directory.
pub const STOP_FILE: &str = "torture.stop";
/// How long workers get to stop after the stop file appears.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Settings of a crash run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker processes alive at any time.
    pub workers: usize,
    /// Kills before the run ends.
    pub kills: usize,
    /// Run directory (lock directory, shared state, logs).
    pub dir: PathBuf,
    /// Longest hold, µs.
    pub hold_us: u64,
    /// Longest pause between holds, µs.
    pub pause_us: u64,
    /// Longest gap between kills, µs.
    pub gap_us: u64,
    /// A stall longer than this fails the run.
    pub stall_limit: Duration,
    /// Seed of the killer's choices.
    pub seed: u64,
    /// Every other worker waits in interruptible slices
    /// (`lock_interruptible`), as Python and the command-line tool do.
    pub sliced: bool,
    /// Workers also take a second lock, in either order, a quarter of the
    /// time: ABBA pairs whose cycles the kernel refuses (`Error::Deadlock`).
    pub abba: bool,
}

impl Config {
    /// From `--workers --kills --dir [--hold-us --pause-us --gap-us
    /// --stall-limit-ms --seed]`.
    pub fn from_args(a: &Args) -> Result<Config, String> {
        let cfg = Config {
            workers: a.num("workers", 4)?,
            kills: a.num("kills", 200)?,
            dir: a.path("dir")?,
            hold_us: a.num("hold-us", 200)?,
            pause_us: a.num("pause-us", 100)?,
            gap_us: a.num("gap-us", 3000)?,
            stall_limit: Duration::from_millis(a.num("stall-limit-ms", 10_000)?),
            seed: a.num("seed", fastrand::u64(..))?,
            sliced: a.flag("sliced"),
            abba: a.flag("abba"),
        };
        if cfg.workers < 2 {
            return Err("--workers must be at least 2".into());
        }
        Ok(cfg)
    }
}

fn prepare_dir(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create run directory '{}': {e}", dir.display()))?;
    let logs = dir.join("logs");
    if logs.exists() {
        std::fs::remove_dir_all(&logs)
            .map_err(|e| format!("cannot clear old logs '{}': {e}", logs.display()))?;
    }
    std::fs::create_dir(&logs).map_err(|e| format!("cannot create '{}': {e}", logs.display()))?;
    let stop = dir.join(STOP_FILE);
    if stop.exists() {
        std::fs::remove_file(&stop)
            .map_err(|e| format!("cannot remove '{}': {e}", stop.display()))?;
    }
    Ok(logs)
}

fn describe_lock(mutex: &Mutex) -> String {
    format!(
        "owner {:?}; waiters {:?}",
        mutex.owner().ok().flatten(),
        mutex.waiters().unwrap_or_default()
    )
}

/// Stop the remaining workers through the stop file; kill (with the usual
/// bookkeeping) any that do not stop in time.
fn stop_all(
    dir: &Path,
    pool: &mut Pool,
    futex: &FutexWord,
    kills: &mut Vec<Kill>,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    let stop = dir.join(STOP_FILE);
    std::fs::write(&stop, b"stop\n")
        .map_err(|e| format!("cannot create '{}': {e}", stop.display()))?;
    let deadline = mono_ns() + STOP_DEADLINE.as_nanos() as u64;
    while !pool.workers.is_empty() && mono_ns() < deadline {
        for (w, status) in pool.take_exited() {
            if !status.success() {
                failures.push(format!(
                    "worker {} exited with {status}: {}",
                    w.pid,
                    stderr_of(&w)
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    while let Some(w) = pool.workers.pop() {
        failures.push(format!(
            "worker {} did not stop within {STOP_DEADLINE:?} (stuck waiting?)",
            w.pid
        ));
        kills.push(stop_inspect_kill(w, futex)?);
    }
    Ok(())
}

/// Read every worker log in `logs`.
fn read_logs(logs: &Path) -> Result<Vec<Vec<log::Line>>, String> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(logs).map_err(|e| format!("cannot list '{}': {e}", logs.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
            out.push(log::read_all(&text));
        }
    }
    Ok(out)
}

/// Run a crash torture; `Ok(true)` when every check passed.
pub fn run(cfg: &Config) -> Result<bool, String> {
    let started = mono_ns();
    let logs = prepare_dir(&cfg.dir)?;
    let state = SharedState::create(&cfg.dir)?;
    let mutex = Mutex::builder(LOCK_NAME)
        .dir(&cfg.dir)
        .open()
        .map_err(|e| e.to_string())?;
    let futex = FutexWord::open(mutex.path())?;
    let stats_before = mutex.stats().map_err(|e| e.to_string())?;
    let mut pool = Pool::new(&cfg.dir, &logs, cfg.hold_us, cfg.pause_us)?;
    pool.sliced = cfg.sliced;
    pool.abba = cfg.abba;
    for _ in 0..cfg.workers {
        pool.spawn()?;
    }
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut kills: Vec<Kill> = Vec::with_capacity(cfg.kills);
    let mut failures: Vec<String> = Vec::new();
    let stall_limit_ns = cfg.stall_limit.as_nanos() as u64;
    let mut last_counter = 0;
    let mut last_progress = mono_ns();
    let mut targeted = 0usize;
    while kills.len() < cfg.kills {
        for (w, status) in pool.take_exited() {
            failures.push(format!(
                "worker {} exited by itself with {status}: {}",
                w.pid,
                stderr_of(&w)
            ));
        }
        if !failures.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..=cfg.gap_us)));
        let counter = state.read()?.counter;
        if counter != last_counter {
            last_counter = counter;
            last_progress = mono_ns();
        } else if mono_ns() - last_progress > stall_limit_ns {
            failures.push(format!(
                "no acquisition for {} while {} workers ran: {}",
                ms(mono_ns() - last_progress),
                pool.workers.len(),
                describe_lock(&mutex)
            ));
            break;
        }
        // Half of the kills go to the current holder (a few µs later, so
        // they land anywhere in its hold, lock or unlock), half to anyone.
        let holder = if rng.bool() {
            pool.find(futex.owner_tid()?)
        } else {
            None
        };
        let idx = match holder {
            Some(i) => {
                targeted += 1;
                let end = mono_ns() + rng.u64(0..50_000);
                while mono_ns() < end {
                    std::hint::spin_loop();
                }
                i
            }
            None => rng.usize(..pool.workers.len()),
        };
        let victim = pool.workers.swap_remove(idx);
        kills.push(stop_inspect_kill(victim, &futex)?);
        pool.spawn()?;
        if kills.len() % 1000 == 0 {
            eprintln!(
                "buslock-torture crash: {} kills, counter {counter}, {:.1} s",
                kills.len(),
                (mono_ns() - started) as f64 / 1e9
            );
        }
    }
    stop_all(&cfg.dir, &mut pool, &futex, &mut kills, &mut failures)?;
    let wait_start = mono_ns();
    let last = match mutex.lock_timeout(cfg.stall_limit) {
        Ok(Some(guard)) => {
            let acquired = mono_ns();
            let words = state.read()?;
            let last = FinalAcquisition {
                wait_start,
                acquired,
                died: guard.previous_owner_died(),
                flag: words.inside,
                counter: words.counter,
            };
            drop(guard);
            last
        }
        Ok(None) => {
            return Err(format!(
                "the harness could not take the lock within {:?} after all workers stopped: {}",
                cfg.stall_limit,
                describe_lock(&mutex)
            ));
        }
        Err(e) => return Err(format!("the harness's final lock failed: {e}")),
    };
    let report = analyse(&read_logs(&logs)?, &kills, &last);
    let stats = mutex.stats().map_err(|e| e.to_string())?;
    let mut violations = report.violations(stall_limit_ns);
    violations.extend(failures);
    let leftover = mutex.waiters().map_err(|e| e.to_string())?;
    if !leftover.is_empty() {
        violations.push(format!(
            "waiters listed after every worker died: {leftover:?}"
        ));
    }
    println!(
        "crash torture: {} workers, {} kills ({targeted} aimed at the holder) in {:.1} s, seed {}",
        cfg.workers,
        report.kills,
        (mono_ns() - started) as f64 / 1e9,
        cfg.seed
    );
    println!("{}", report.summary());
    println!(
        "  waiters: {}; ABBA pairs: {} (waits refused as deadlocks: {})",
        if cfg.sliced {
            "half sliced (interruptible)"
        } else {
            "plain"
        },
        if cfg.abba { "on" } else { "off" },
        report.deadlocks
    );
    println!(
        "  lock stats this run: {} acquisitions, {} owner-died",
        stats.acquisitions - stats_before.acquisitions,
        stats.owner_died - stats_before.owner_died
    );
    if violations.is_empty() {
        println!("  result: PASS");
        Ok(true)
    } else {
        for v in &violations {
            println!("  VIOLATION: {v}");
        }
        println!("  result: FAIL ({} violations)", violations.len());
        Ok(false)
    }
}
