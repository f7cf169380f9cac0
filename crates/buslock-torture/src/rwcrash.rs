//! `rwcrash`: crash torture of the readers-writer lock.
//!
//! Workers (this binary re-run as `__rw-worker`, single-threaded) loop
//! taking the lock to read (most often) or to write, at random, and inside
//! each hold leave a marker file (`inside/R<pid>` or `inside/W<pid>`) and
//! look at the others: a writer that finds any marker of another live
//! process, or a reader that finds a live writer's, appends a line to the
//! `violations` file.
//!
//! The harness kills random workers at random points: `SIGSTOP`, wait until
//! stopped, inspect the lock's shared state (does the writers' word name
//! the victim? is it a reader being admitted? does it hold a reader
//! slot?), remove its markers, `SIGKILL`, reap, start a replacement. From
//! the inspections it knows exactly how many writer deaths must be told and
//! how many reader deaths must be freed and counted. At the end it kills
//! the remaining workers the same way, takes the lock to write (which frees
//! every dead reader and is told of any death not yet told) and checks:
//!
//! - 0 violations;
//! - 0 stuck: the lock made progress in every stall window, and the final
//!   write got in;
//! - every writer death told and counted exactly once: the lock's
//!   writer-death count equals the deaths found by inspection. A writer
//!   death is a victim that held the word with its writer record written
//!   (in the middle of its work); any other victim holding the word (a
//!   writer waiting for readers to leave, a reader being admitted) changed
//!   nothing and is not told; a notice a victim was given but had not
//!   passed on goes to the next holder, not counted again;
//! - every reader death freed and counted once: no reader left, and the
//!   reader-death count equals the inspections' count.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use buslock::RwLock;
use buslock::raw::mutex::FUTEX_TID_MASK;
use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};

use crate::args::Args;

const NAME: &str = "rwtorture";

/// The run's settings.
pub struct Config {
    workers: usize,
    kills: u64,
    dir: PathBuf,
    hold_us: u64,
    gap_us: u64,
    stall_limit: Duration,
    seed: u64,
}

impl Config {
    /// From `--workers N --kills K --dir D [--hold-us H] [--gap-us G]
    /// [--stall-limit-ms S] [--seed X]`.
    pub fn from_args(a: &Args) -> Result<Config, String> {
        Ok(Config {
            workers: a.num("workers", 6)?,
            kills: a.num("kills", 100)?,
            dir: a.path("dir")?,
            hold_us: a.num("hold-us", 50)?,
            gap_us: a.num("gap-us", 3000)?,
            stall_limit: Duration::from_millis(a.num("stall-limit-ms", 5000)?),
            seed: a.num("seed", fastrand::u64(..))?,
        })
    }
}

fn open(dir: &Path) -> Result<RwLock, String> {
    RwLock::builder(NAME)
        .dir(dir)
        .open()
        .map_err(|e| e.to_string())
}

fn pid_alive(pid: u32) -> bool {
    buslock::identity::process_state(pid, 0).is_alive()
}

/// Markers of other live processes in `inside`: (kind, pid).
fn others(inside: &Path, me: u32) -> Vec<(char, u32)> {
    let Ok(rd) = std::fs::read_dir(inside) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = name.chars().next()?;
            let pid: u32 = name.get(1..)?.parse().ok()?;
            (pid != me && pid_alive(pid)).then_some((kind, pid))
        })
        .collect()
}

fn violation(dir: &Path, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("violations"))
    {
        let _ = f.write_all(format!("{text}\n").as_bytes());
    }
}

fn spin(us: u64) {
    let end = Instant::now() + Duration::from_micros(us);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// `__rw-worker --dir D --hold-us H`: read or write forever.
pub fn worker(a: &Args) -> Result<(), String> {
    let dir = a.path("dir")?;
    let hold_us: u64 = a.num("hold-us", 50)?;
    let rw = open(&dir)?;
    let me = std::process::id();
    let inside = dir.join("inside");
    loop {
        let write = fastrand::u8(..4) == 0;
        if write {
            let g = rw.write().map_err(|e| e.to_string())?;
            let marker = inside.join(format!("W{me}"));
            std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
            for (kind, pid) in others(&inside, me) {
                violation(&dir, &format!("writer {me} found {kind} {pid} inside"));
            }
            spin(hold_us);
            let _ = std::fs::remove_file(&marker);
            drop(g);
        } else {
            let g = rw.read().map_err(|e| e.to_string())?;
            let marker = inside.join(format!("R{me}"));
            std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
            for (kind, pid) in others(&inside, me) {
                if kind == 'W' {
                    violation(&dir, &format!("reader {me} found writer {pid} inside"));
                }
            }
            spin(hold_us);
            let _ = std::fs::remove_file(&marker);
            drop(g);
        }
    }
}

/// What the inspections of stopped victims found.
#[derive(Default)]
struct Deaths {
    /// Victims that held the writers' word with their writer record
    /// written: the next holder must be told.
    writers: u64,
    /// Victims that held a reader slot, or held the word while being
    /// admitted as readers: their share must be freed and counted.
    readers: u64,
}

fn spawn(dir: &Path, hold_us: u64) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let err = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("workers.err"))
        .map_err(|e| e.to_string())?;
    Command::new(exe)
        .arg("__rw-worker")
        .arg("--dir")
        .arg(dir)
        .arg("--hold-us")
        .arg(hold_us.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start a worker: {e}"))
}

/// Stop `child`, inspect what it holds, kill and reap it, remove its
/// markers.
fn stop_inspect_kill(
    mut child: Child,
    rw: &RwLock,
    dir: &Path,
    d: &mut Deaths,
) -> Result<(), String> {
    let raw = child.id();
    let pid = Pid::from_raw(raw as i32).ok_or("bad pid")?;
    kill_process(pid, Signal::STOP).map_err(|e| format!("SIGSTOP {raw}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match waitpid(Some(pid), WaitOptions::UNTRACED | WaitOptions::NOHANG) {
            Ok(Some((_, st))) if st.stopped() => break,
            Ok(Some((_, st))) => {
                let err = std::fs::read_to_string(dir.join("workers.err")).unwrap_or_default();
                return Err(format!("worker {raw} ended by itself ({st:?}): {err}"));
            }
            Ok(None) if Instant::now() < deadline => std::thread::yield_now(),
            Ok(None) => return Err(format!("worker {raw} did not stop")),
            Err(e) => return Err(format!("waitpid {raw}: {e}")),
        }
    }
    let (word, admitting, _, writing) = rw.raw_state();
    let holds_word = word & FUTEX_TID_MASK == raw;
    let reads = rw.readers().iter().any(|r| r.pid == raw);
    // Workers are single-threaded: their tid is their pid.
    if holds_word && writing == raw {
        d.writers += 1;
    }
    if reads || (holds_word && admitting == raw) {
        d.readers += 1;
    }
    // Its markers go before it dies: the kernel hands its lock on while the
    // process is still exiting (not yet a zombie), so a marker left until
    // the reap would look like a live holder to the next one. (The cost: a
    // broken lock letting someone in while the victim is stopped would go
    // unnoticed for that moment.)
    for kind in ['R', 'W'] {
        let _ = std::fs::remove_file(dir.join("inside").join(format!("{kind}{raw}")));
    }
    kill_process(pid, Signal::KILL).map_err(|e| format!("SIGKILL {raw}: {e}"))?;
    child.wait().map_err(|e| format!("reap {raw}: {e}"))?;
    Ok(())
}

/// The harness.
pub fn run(c: &Config) -> crate::Outcome {
    fastrand::seed(c.seed);
    std::fs::create_dir_all(c.dir.join("inside")).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(c.dir.join("violations"));
    let rw = open(&c.dir)?;
    let mut workers = (0..c.workers)
        .map(|_| spawn(&c.dir, c.hold_us))
        .collect::<Result<Vec<_>, _>>()?;
    let mut deaths = Deaths::default();
    let progress = |rw: &RwLock| {
        let s = rw.stats();
        s.reads + s.writes.acquisitions
    };
    let mut last = (progress(&rw), Instant::now());
    let mut stuck = 0u64;
    let started = Instant::now();
    let result = (|| -> Result<(), String> {
        for _ in 0..c.kills {
            std::thread::sleep(Duration::from_micros(fastrand::u64(..=c.gap_us)));
            let i = fastrand::usize(..workers.len());
            let victim = workers.swap_remove(i);
            stop_inspect_kill(victim, &rw, &c.dir, &mut deaths)?;
            workers.push(spawn(&c.dir, c.hold_us)?);
            let now = progress(&rw);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > c.stall_limit {
                stuck += 1;
                last.1 = Instant::now();
            }
        }
        Ok(())
    })();
    for w in workers.drain(..) {
        if result.is_ok() {
            stop_inspect_kill(w, &rw, &c.dir, &mut deaths)?;
        } else {
            let mut w = w;
            let _ = w.kill();
            let _ = w.wait();
        }
    }
    result?;
    let final_write = rw
        .write_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let got_in = final_write.is_some();
    drop(final_write);
    let s = rw.stats();
    let left = rw.readers().len();
    let violations = std::fs::read_to_string(c.dir.join("violations")).unwrap_or_default();
    let n_violations = violations.lines().count();
    println!(
        "rwcrash: {} kills in {:.1}s (seed {}), {} reads, {} writes",
        c.kills + c.workers as u64,
        started.elapsed().as_secs_f64(),
        c.seed,
        s.reads,
        s.writes.acquisitions
    );
    println!("violations: {n_violations}");
    println!("stuck: {}", stuck + u64::from(!got_in));
    println!(
        "writer deaths: {} found, {} told",
        deaths.writers, s.writer_deaths
    );
    println!(
        "reader deaths: {} found, {} freed, {} readers left",
        deaths.readers, s.reader_deaths, left
    );
    for v in violations.lines().take(10) {
        println!("  {v}");
    }
    Ok(n_violations == 0
        && stuck == 0
        && got_in
        && deaths.writers == s.writer_deaths
        && deaths.readers == s.reader_deaths
        && left == 0)
}
