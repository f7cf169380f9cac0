//! What lock-order checking costs, measured against the same locks with
//! checking off, in the same run.
//!
//! - A nested acquisition on a known edge: holding `A`, lock + unlock `B`,
//!   with checking on (`warn`) against `off` (target: under 20 ns added).
//! - A lone acquisition (nothing else held): lock + unlock `A`, `warn`
//!   against `off` (a thread-local read, push and pop).
//! - A new edge: holding `Ci`, lock + unlock `Cj` for every `i < j` of 100
//!   classes, each edge new (recorded under the registry `flock`, with a
//!   witness and a cycle search), against the same pass with checking off.
//!
//! Candidates take turns round by round; medians of 11 rounds are shown
//! with the fastest and slowest round, and the difference of the medians
//! and of the fastest rounds (the latter is steadier on a busy machine).
//!
//! Run with `cargo bench -p buslock --bench lockdep`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use buslock::lockdep::{Mode, Registry};
use buslock::{DirSource, LockDir, Mutex};

const ROUNDS: usize = 11;
const ROUND: Duration = Duration::from_millis(200);
const CLASSES: usize = 100;

fn open(dir: &std::path::Path, name: &str, mode: Mode) -> Mutex {
    Mutex::builder(name)
        .dir(dir)
        .lockdep(mode)
        .open()
        .expect("open lock")
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// ns per iteration of `op` over about [`ROUND`].
fn time(iters: u64, op: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        op();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn calibrate(op: &mut dyn FnMut()) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(300) {
        for _ in 0..1000 {
            op();
        }
        n += 1000;
    }
    ((ROUND.as_secs_f64() / (t.elapsed().as_secs_f64() / n as f64)) as u64).max(1000)
}

fn compare(what: &str, mut off: impl FnMut(), mut on: impl FnMut()) {
    let (n_off, n_on) = (calibrate(&mut off), calibrate(&mut on));
    let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        t_off.push(time(n_off, &mut off));
        t_on.push(time(n_on, &mut on));
    }
    let (off_m, off_lo, off_hi) = median(t_off);
    let (on_m, on_lo, on_hi) = median(t_on);
    println!("{what}:");
    println!("  lockdep off   {off_m:8.1} ns/op  (rounds {off_lo:.1}..{off_hi:.1})");
    println!("  lockdep warn  {on_m:8.1} ns/op  (rounds {on_lo:.1}..{on_hi:.1})");
    println!(
        "  added         {:8.1} ns/op  ratio {:.3}  (fastest rounds: {:.1} ns/op, ratio {:.3})",
        on_m - off_m,
        on_m / off_m,
        on_lo - off_lo,
        on_lo / off_lo
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();

    let (a_off, b_off) = (open(d, "A0", Mode::Off), open(d, "B0", Mode::Off));
    let (a_on, b_on) = (open(d, "A1", Mode::Warn), open(d, "B1", Mode::Warn));
    {
        // Learn the edge once.
        let _a = a_on.lock().unwrap();
        drop(b_on.lock().unwrap());
    }
    let ga_off = a_off.lock().unwrap();
    let ga_on = a_on.lock().unwrap();
    compare(
        "nested acquisition on a known edge (holding A: lock + unlock B)",
        || drop(black_box(b_off.lock().unwrap())),
        || drop(black_box(b_on.lock().unwrap())),
    );
    drop(ga_on);
    drop(ga_off);

    compare(
        "lone acquisition (nothing else held: lock + unlock)",
        || drop(black_box(a_off.lock().unwrap())),
        || drop(black_box(a_on.lock().unwrap())),
    );

    // New edges: every i < j of CLASSES classes, each recorded once.
    let off: Vec<Mutex> = (0..CLASSES)
        .map(|i| open(d, &format!("X{i}"), Mode::Off))
        .collect();
    let on: Vec<Mutex> = (0..CLASSES)
        .map(|i| open(d, &format!("Y{i}"), Mode::Warn))
        .collect();
    let ld = LockDir::open(d, DirSource::Explicit).unwrap();
    let reg = Registry::open(&ld, false).unwrap().expect("registry");
    let pass = |locks: &[Mutex]| {
        let t = Instant::now();
        for i in 0..CLASSES {
            let g = locks[i].lock().unwrap();
            for m in &locks[i + 1..] {
                drop(black_box(m.lock().unwrap()));
            }
            drop(g);
        }
        t.elapsed().as_nanos() as f64 / (CLASSES * (CLASSES - 1) / 2) as f64
    };
    let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        reg.reset().unwrap();
        t_off.push(pass(&off));
        t_on.push(pass(&on));
    }
    let edges = reg.graph().edges.len();
    let (off_m, off_lo, off_hi) = median(t_off);
    let (on_m, on_lo, on_hi) = median(t_on);
    println!(
        "new edge (holding Ci: lock + unlock Cj, {} new edges per pass; {edges} recorded):",
        CLASSES * (CLASSES - 1) / 2
    );
    println!("  lockdep off   {off_m:8.1} ns/op  (rounds {off_lo:.1}..{off_hi:.1})");
    println!("  lockdep warn  {on_m:8.1} ns/op  (rounds {on_lo:.1}..{on_hi:.1})");
    println!(
        "  added         {:8.1} ns/op  ratio {:.3}",
        on_m - off_m,
        on_m / off_m
    );
}
