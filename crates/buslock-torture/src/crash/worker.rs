//! A crash-run worker: lock, check and set the `inside` flag, increment the
//! counter, hold a random short time, clear the flag, release; forever,
//! until the harness creates the stop file or kills it.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use buslock::{Error, Mutex, MutexGuard};

use super::log::{Line, append};
use super::{LOCK_NAME, STOP_FILE};
use crate::args::Args;
use crate::clock::mono_ns;
use crate::shared::SharedState;

/// Spin (rather than sleep) for holds and pauses below this.
const SPIN_BELOW: Duration = Duration::from_micros(100);

fn pause(rng: &mut fastrand::Rng, max_us: u64) {
    if max_us == 0 {
        return;
    }
    let d = Duration::from_micros(rng.u64(0..=max_us));
    if d < SPIN_BELOW {
        let end = mono_ns() + d.as_nanos() as u64;
        while mono_ns() < end {
            std::hint::spin_loop();
        }
    } else {
        std::thread::sleep(d);
    }
}

/// The second lock of ABBA pairs (`--abba`).
const SECOND_LOCK: &str = "torture-b";

/// Take `m` the way this worker waits: plainly, or in interruptible slices.
fn take(m: &Mutex, sliced: bool) -> buslock::Result<MutexGuard<'_>> {
    if sliced {
        m.lock_interruptible(None, || false)
            .map(|g| g.expect("a wait without timeout ends with the lock"))
    } else {
        m.lock()
    }
}

/// Run a worker (`__crash-worker --dir D --log FILE --hold-us H --pause-us P
/// [--sliced] [--abba]`).
pub fn run(args: &Args) -> Result<(), String> {
    let dir = args.path("dir")?;
    let log_path = args.path("log")?;
    let hold_us: u64 = args.num("hold-us", 200)?;
    let pause_us: u64 = args.num("pause-us", 100)?;
    let pid = u64::from(std::process::id());
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open '{}': {e}", log_path.display()))?;
    let mutex = Mutex::builder(LOCK_NAME)
        .dir(&dir)
        .open()
        .map_err(|e| e.to_string())?;
    let sliced = args.flag("sliced");
    let second = if args.flag("abba") {
        Some(
            Mutex::builder(SECOND_LOCK)
                .dir(&dir)
                .open()
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let state = SharedState::open(&dir)?;
    let stop = dir.join(STOP_FILE);
    let mut rng = fastrand::Rng::new();
    while !Path::exists(&stop) {
        // A quarter of the holds with `--abba` also take the second lock:
        // before the main one (B then A) or inside it (A then B).
        let pair = second.as_ref().filter(|_| rng.u8(0..4) == 0);
        let b_first = pair.is_some() && rng.bool();
        let held_b = match pair.filter(|_| b_first).map(|b| take(b, sliced)) {
            Some(Ok(g)) => Some(g),
            Some(Err(e)) => {
                append(&mut log, &Line::Error(e.to_string()))?;
                return Err(e.to_string());
            }
            None => None,
        };
        let wait_start = mono_ns();
        let guard = match take(&mutex, sliced) {
            Ok(g) => g,
            Err(Error::Deadlock { .. }) if held_b.is_some() => {
                // The cycle is refused to this waiter: let go of B so
                // that the other side proceeds, and start again.
                append(&mut log, &Line::Deadlock { at: mono_ns() })?;
                drop(held_b);
                continue;
            }
            Err(e) => {
                append(&mut log, &Line::Error(e.to_string()))?;
                return Err(e.to_string());
            }
        };
        let acquired = mono_ns();
        let died = guard.previous_owner_died();
        // The report goes out before anything else, so that a kill from
        // here on cannot lose it.
        append(
            &mut log,
            &Line::Locked {
                wait_start,
                acquired,
                died,
            },
        )?;
        let words = state.read()?;
        if words.inside != 0 {
            let line = if died {
                Line::Cleared { acquired }
            } else {
                Line::Violation {
                    acquired,
                    flag: words.inside,
                }
            };
            append(&mut log, &line)?;
        }
        state.set_inside(pid)?;
        let value = words.counter + 1;
        state.set_counter(value)?;
        append(&mut log, &Line::Incremented { value })?;
        if let Some(b) = pair.filter(|_| !b_first) {
            match take(b, sliced) {
                Ok(g) => drop(g),
                Err(Error::Deadlock { .. }) => append(&mut log, &Line::Deadlock { at: mono_ns() })?,
                Err(e) => {
                    append(&mut log, &Line::Error(e.to_string()))?;
                    return Err(e.to_string());
                }
            }
        }
        // Half of the holds are empty, so that lock and unlock (and the
        // owner record and stats writes inside them) are hit often.
        if rng.bool() {
            pause(&mut rng, hold_us);
        }
        state.set_inside(0)?;
        drop(guard);
        drop(held_b);
        append(
            &mut log,
            &Line::Unlocked {
                released: mono_ns(),
            },
        )?;
        pause(&mut rng, pause_us);
    }
    Ok(())
}
