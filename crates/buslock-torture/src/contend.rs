//! `buslock-torture contend`: many processes, each taking the lock a fixed
//! number of times with an exclusion check, to show no violation and no
//! starvation under heavy contention.
//!
//! Fairness figure: when the first process finishes its acquisitions it
//! records its pid in the shared state; every other process notes how many
//! acquisitions it had made when it first saw that. With a fair lock those
//! counts are all close to the total.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use buslock::Mutex;

use crate::args::Args;
use crate::clock::{mono_ns, ms};
use crate::shared::{SharedState, Words};

/// Name of the lock of a contention run.
pub const LOCK_NAME: &str = "contend";
const START_FILE: &str = "contend.start";
/// Each process creates a file named after its pid here once it is ready.
const READY_DIR: &str = "contend.ready";

/// Settings of a contention run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Processes.
    pub procs: usize,
    /// Acquisitions per process.
    pub count: u64,
    /// Run directory.
    pub dir: PathBuf,
    /// The run fails (and its processes are killed) after this long.
    pub deadline: Duration,
}

impl Config {
    /// From `--procs --count --dir [--deadline-s]`.
    pub fn from_args(a: &Args) -> Result<Config, String> {
        Ok(Config {
            procs: a.num("procs", 64)?,
            count: a.num("count", 500)?,
            dir: a.path("dir")?,
            deadline: Duration::from_secs(a.num("deadline-s", 600)?),
        })
    }
}

/// What one process reported.
#[derive(Debug, Clone, Copy)]
struct Result1 {
    done: u64,
    violations: u64,
    worst_wait_ns: u64,
    at_first_done: u64,
}

fn parse_result(out: &str) -> Option<Result1> {
    let mut f = out.split_whitespace();
    if f.next()? != "OK" {
        return None;
    }
    let mut n = || f.next().and_then(|v| v.parse().ok());
    Some(Result1 {
        done: n()?,
        violations: n()?,
        worst_wait_ns: n()?,
        at_first_done: n()?,
    })
}

/// One contending process (`__contend-worker --dir D --count C`).
pub fn worker(args: &Args) -> Result<(), String> {
    let dir = args.path("dir")?;
    let count: u64 = args.num("count", 500)?;
    let pid = u64::from(std::process::id());
    let mutex = Mutex::builder(LOCK_NAME)
        .dir(&dir)
        .open()
        .map_err(|e| e.to_string())?;
    let state = SharedState::open(&dir)?;
    let ready = dir.join(READY_DIR).join(pid.to_string());
    std::fs::write(&ready, b"").map_err(|e| format!("cannot create '{}': {e}", ready.display()))?;
    let start = dir.join(START_FILE);
    let deadline = mono_ns() + 120_000_000_000;
    while !start.exists() {
        if mono_ns() > deadline {
            return Err(format!("'{}' never appeared", start.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mut violations, mut worst, mut at_first_done) = (0, 0, None);
    for i in 0..count {
        let t0 = mono_ns();
        let guard = mutex.lock().map_err(|e| e.to_string())?;
        worst = u64::max(worst, mono_ns() - t0);
        let mut w = state.read()?;
        if w.inside != 0 {
            violations += 1;
        }
        if w.first_done != 0 && at_first_done.is_none() {
            at_first_done = Some(i);
        }
        w.counter += 1;
        if i + 1 == count && w.first_done == 0 {
            w.first_done = pid;
            at_first_done = Some(count);
        }
        state.write(&Words { inside: pid, ..w })?;
        state.set_inside(0)?;
        drop(guard);
    }
    println!(
        "OK {count} {violations} {worst} {}",
        at_first_done.unwrap_or(count)
    );
    Ok(())
}

/// The contending processes and, once exited, their output. Whatever is
/// still running when this is dropped (an early error) is killed.
struct Procs(Vec<(Child, Option<String>)>);

impl Procs {
    fn kill_all(&mut self) {
        for (c, out) in self.0.iter_mut() {
            if out.is_none() {
                let _ = c.kill();
                let _ = c.wait();
                *out = Some(String::new());
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Run a contention test; `Ok(true)` when every check passed.
pub fn run(cfg: &Config) -> Result<bool, String> {
    std::fs::create_dir_all(&cfg.dir)
        .map_err(|e| format!("cannot create '{}': {e}", cfg.dir.display()))?;
    let start_file = cfg.dir.join(START_FILE);
    let _ = std::fs::remove_file(&start_file);
    let ready_dir = cfg.dir.join(READY_DIR);
    let _ = std::fs::remove_dir_all(&ready_dir);
    std::fs::create_dir(&ready_dir)
        .map_err(|e| format!("cannot create '{}': {e}", ready_dir.display()))?;
    let state = SharedState::create(&cfg.dir)?;
    let mutex = Mutex::builder(LOCK_NAME)
        .dir(&cfg.dir)
        .open()
        .map_err(|e| e.to_string())?;
    let before = mutex.stats().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Procs(Vec::new());
    for _ in 0..cfg.procs {
        let child = Command::new(&exe)
            .arg("__contend-worker")
            .arg("--dir")
            .arg(&cfg.dir)
            .arg("--count")
            .arg(cfg.count.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn();
        match child {
            Ok(c) => children.0.push((c, None)),
            Err(e) => return Err(format!("cannot start process: {e}")),
        }
    }
    // Start everyone together: wait until every process has opened the lock.
    let ready_deadline = mono_ns() + 120_000_000_000;
    loop {
        let n = std::fs::read_dir(&ready_dir).map_or(0, Iterator::count);
        if n >= cfg.procs {
            break;
        }
        if mono_ns() > ready_deadline {
            return Err(format!("only {n} of {} processes got ready", cfg.procs));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let t0 = mono_ns();
    std::fs::write(&start_file, b"go\n").map_err(|e| e.to_string())?;
    let deadline = t0 + cfg.deadline.as_nanos() as u64;
    let mut failures = Vec::new();
    while children.0.iter().any(|(_, out)| out.is_none()) {
        if mono_ns() > deadline {
            failures.push(format!(
                "not finished after {:?}: owner {:?}",
                cfg.deadline,
                mutex.owner().ok().flatten()
            ));
            children.kill_all();
            break;
        }
        for (c, out) in children.0.iter_mut().filter(|(_, o)| o.is_none()) {
            if let Ok(Some(status)) = c.try_wait() {
                let mut text = String::new();
                if let Some(mut so) = c.stdout.take() {
                    let _ = so.read_to_string(&mut text);
                }
                if !status.success() {
                    failures.push(format!("process {} exited with {status}", c.id()));
                }
                *out = Some(text);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = mono_ns() - t0;
    let results: Vec<Result1> = children
        .0
        .iter()
        .filter_map(|(_, o)| o.as_deref().and_then(parse_result))
        .collect();
    if results.len() != cfg.procs {
        failures.push(format!(
            "only {} of {} processes reported",
            results.len(),
            cfg.procs
        ));
    }
    let counter = state.read()?.counter;
    let expected = cfg.procs as u64 * cfg.count;
    let violations: u64 = results.iter().map(|r| r.violations).sum();
    let done: u64 = results.iter().map(|r| r.done).sum();
    let worst = results.iter().map(|r| r.worst_wait_ns).max().unwrap_or(0);
    let best_worst = results.iter().map(|r| r.worst_wait_ns).min().unwrap_or(0);
    let min_at = results.iter().map(|r| r.at_first_done).min().unwrap_or(0);
    let max_at = results.iter().map(|r| r.at_first_done).max().unwrap_or(0);
    if violations > 0 {
        failures.push(format!("{violations} exclusion violations"));
    }
    if counter != expected || done != expected {
        failures.push(format!(
            "counter {counter}, acquisitions reported {done}, expected {expected} (lost updates)"
        ));
    }
    let stats = mutex.stats().map_err(|e| e.to_string())?;
    println!(
        "contention: {} processes x {} acquisitions in {:.2} s ({} acquisitions/s)",
        cfg.procs,
        cfg.count,
        elapsed as f64 / 1e9,
        (expected as f64 / (elapsed as f64 / 1e9)) as u64
    );
    println!(
        "  counter {counter} (expected {expected}), exclusion violations {violations}\n\
         \x20 acquisitions per process when the first finished: min {min_at}, max {max_at} (of {})\n\
         \x20 worst wait: {} (the luckiest process's worst wait: {})\n\
         \x20 lock stats this run: {} acquisitions, {} contended",
        cfg.count,
        ms(worst),
        ms(best_worst),
        stats.acquisitions - before.acquisitions,
        stats.contended - before.contended,
    );
    if failures.is_empty() {
        println!("  result: PASS");
        Ok(true)
    } else {
        for f in &failures {
            println!("  VIOLATION: {f}");
        }
        println!("  result: FAIL");
        Ok(false)
    }
}
