//! The readers-writer lock against `pthread_rwlock` (process-shared, in a
//! shared mapping) and `flock` (`LOCK_SH`/`LOCK_EX`), and against buslock's
//! own mutex, in one run:
//!
//! 1. uncontended read and write cost (lock + unlock, one thread);
//! 2. read throughput: 4 reader processes, each holding 50 µs (a sleep,
//!    like waiting for a bus transfer) then releasing, for one second; the
//!    mutex does the same work exclusively;
//! 3. writer wait with readers streaming: the same 4 readers loop, a writer
//!    in the parent takes the write lock 40 times; its waits (median, max);
//! 4. a dead reader: a reader process is SIGKILLed while it holds; the time
//!    from its death (reaped) until a writer gets in.
//!
//! Run with `cargo bench -p buslock --bench rwlock`
//! (`BUSLOCK_BENCH_QUICK=1` for part 1 only). Timing lives here, not
//! in tests; the figures vary with the machine's load (2 shared cores on
//! the VM this was written on).

use std::hint::black_box;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use buslock::{Mutex, RwLock};
use rustix::fs::{FlockOperation, flock};

type BoxError = Box<dyn std::error::Error>;

const HOLD: Duration = Duration::from_micros(50);
const READERS: usize = 4;

/// A `pthread_rwlock_t` (process-shared) and a few counters in one
/// anonymous `MAP_SHARED` page, inherited by forked children.
struct Shared {
    page: *mut u8,
}

const RW_AT: usize = 0;
const COUNTERS_AT: usize = 256;

impl Shared {
    fn new() -> Shared {
        // SAFETY: a fresh anonymous shared mapping; the rwlock is
        // initialised before use and never moved; the counters are
        // atomics valid for zeroed memory.
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(page, libc::MAP_FAILED);
            let mut attr: libc::pthread_rwlockattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_rwlockattr_init(&mut attr), 0);
            assert_eq!(
                libc::pthread_rwlockattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                0
            );
            let page = page.cast::<u8>();
            assert_eq!(libc::pthread_rwlock_init(page.add(RW_AT).cast(), &attr), 0);
            Shared { page }
        }
    }

    fn rw(&self) -> *mut libc::pthread_rwlock_t {
        // SAFETY: inside the page.
        unsafe { self.page.add(RW_AT).cast() }
    }

    fn rdlock(&self) {
        // SAFETY: an initialised process-shared rwlock.
        assert_eq!(unsafe { libc::pthread_rwlock_rdlock(self.rw()) }, 0);
    }

    fn wrlock(&self) {
        // SAFETY: as above.
        assert_eq!(unsafe { libc::pthread_rwlock_wrlock(self.rw()) }, 0);
    }

    fn trywrlock(&self) -> bool {
        // SAFETY: as above.
        unsafe { libc::pthread_rwlock_trywrlock(self.rw()) == 0 }
    }

    fn unlock(&self) {
        // SAFETY: as above; called by a holder.
        assert_eq!(unsafe { libc::pthread_rwlock_unlock(self.rw()) }, 0);
    }

    /// Counter `i` (0: stop flag, 1..: per-child counts).
    fn counter(&self, i: usize) -> &AtomicU64 {
        // SAFETY: 8-aligned, inside the page, shared for the page's life.
        unsafe { &*self.page.add(COUNTERS_AT + 8 * i).cast::<AtomicU64>() }
    }

    fn reset(&self) {
        for i in 0..16 {
            self.counter(i).store(0, Ordering::SeqCst);
        }
    }
}

/// What each process holds in the contended runs.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    BuslockRead,
    BuslockMutex,
    PthreadRead,
    FlockShared,
}

/// One hold of `kind` (by a child), `HOLD` long.
struct Locks {
    rw: RwLock,
    mutex: Mutex,
    flock_file: std::fs::File,
}

fn open_locks(dir: &Path) -> Result<Locks, BoxError> {
    Ok(Locks {
        rw: RwLock::builder("bench-rw").dir(dir).open()?,
        mutex: Mutex::builder("bench-mutex").dir(dir).open()?,
        flock_file: std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("bench.flock"))?,
    })
}

fn hold(kind: Kind, locks: &Locks, shared: &Shared) {
    match kind {
        Kind::BuslockRead => {
            let g = locks.rw.read().expect("read");
            std::thread::sleep(HOLD);
            drop(g);
        }
        Kind::BuslockMutex => {
            let g = locks.mutex.lock().expect("lock");
            std::thread::sleep(HOLD);
            drop(g);
        }
        Kind::PthreadRead => {
            shared.rdlock();
            std::thread::sleep(HOLD);
            shared.unlock();
        }
        Kind::FlockShared => {
            flock(locks.flock_file.as_fd(), FlockOperation::LockShared).expect("flock");
            std::thread::sleep(HOLD);
            flock(locks.flock_file.as_fd(), FlockOperation::Unlock).expect("unflock");
        }
    }
}

/// Fork `READERS` children that hold `kind` in a loop until the stop flag
/// is set, each counting its holds.
fn spawn_readers(kind: Kind, dir: &Path, shared: &Shared) -> Vec<libc::pid_t> {
    shared.reset();
    (0..READERS)
        .map(|i| {
            // SAFETY: the bench is single-threaded here; the child opens
            // its own handles, loops and leaves with _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let locks = open_locks(dir).expect("open in child");
                while shared.counter(0).load(Ordering::Relaxed) == 0 {
                    hold(kind, &locks, shared);
                    shared.counter(i + 1).fetch_add(1, Ordering::Relaxed);
                }
                // SAFETY: leaving the child without running the parent's
                // atexit handlers or destructors twice.
                unsafe { libc::_exit(0) };
            }
            pid
        })
        .collect()
}

fn stop(shared: &Shared, pids: &[libc::pid_t]) -> u64 {
    shared.counter(0).store(1, Ordering::SeqCst);
    for &pid in pids {
        let mut status = 0;
        // SAFETY: our own child, a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    (1..=READERS)
        .map(|i| shared.counter(i).load(Ordering::Relaxed))
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), BoxError> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let shared = Shared::new();
    let locks = open_locks(dir)?;

    // 1. Uncontended.
    println!("## uncontended lock + unlock (one thread), ns, median of 9 interleaved rounds");
    let n = 100_000;
    // Warm up (clock calibration, identity).
    for _ in 0..n {
        drop(black_box(locks.mutex.lock().unwrap()));
        drop(black_box(locks.rw.read().unwrap()));
        drop(black_box(locks.rw.write().unwrap()));
    }
    let fd = locks.flock_file.as_fd();
    // The candidates take turns round by round, so that load from other
    // work on the machine falls on all of them alike.
    let mut ops: Vec<(u64, Box<dyn FnMut() + '_>)> = vec![
        (n, Box::new(|| drop(black_box(locks.mutex.lock().unwrap())))),
        (n, Box::new(|| drop(black_box(locks.rw.read().unwrap())))),
        (n, Box::new(|| drop(black_box(locks.rw.write().unwrap())))),
        (
            n,
            Box::new(|| {
                shared.rdlock();
                shared.unlock();
            }),
        ),
        (
            n,
            Box::new(|| {
                shared.wrlock();
                shared.unlock();
            }),
        ),
        (
            n / 8,
            Box::new(|| {
                flock(fd, FlockOperation::LockShared).unwrap();
                flock(fd, FlockOperation::Unlock).unwrap();
            }),
        ),
        (
            n / 8,
            Box::new(|| {
                flock(fd, FlockOperation::LockExclusive).unwrap();
                flock(fd, FlockOperation::Unlock).unwrap();
            }),
        ),
    ];
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    for _ in 0..9 {
        for (i, (iters, op)) in ops.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..*iters {
                op();
            }
            rounds[i].push(t.elapsed().as_nanos() as f64 / *iters as f64);
        }
    }
    drop(ops);
    let m: Vec<f64> = rounds.into_iter().map(median).collect();
    let (mutex, read, write, pt_read, pt_write, fl_sh, fl_ex) =
        (m[0], m[1], m[2], m[3], m[4], m[5], m[6]);
    println!("| candidate | ns | vs buslock mutex |");
    println!("|---|---:|---:|");
    for (what, ns) in [
        ("buslock Mutex lock + unlock", mutex),
        ("buslock RwLock read + unlock", read),
        ("buslock RwLock write + unlock", write),
        ("pthread_rwlock rdlock + unlock (pshared)", pt_read),
        ("pthread_rwlock wrlock + unlock (pshared)", pt_write),
        ("flock LOCK_SH + LOCK_UN", fl_sh),
        ("flock LOCK_EX + LOCK_UN", fl_ex),
    ] {
        println!("| {what} | {ns:.0} | {:.2}x |", ns / mutex);
    }

    // 2. Read throughput.
    println!();
    if std::env::var_os("BUSLOCK_BENCH_QUICK").is_some() {
        return Ok(()); // the uncontended part only
    }
    println!("## {READERS} processes, each holding {HOLD:?} (a sleep) in a loop for 1 s: holds/s");
    println!("| candidate | holds/s | vs buslock mutex |");
    println!("|---|---:|---:|");
    let mut base = 0.0;
    for (what, kind) in [
        ("buslock Mutex (exclusive)", Kind::BuslockMutex),
        ("buslock RwLock read", Kind::BuslockRead),
        ("pthread_rwlock rdlock (pshared)", Kind::PthreadRead),
        ("flock LOCK_SH", Kind::FlockShared),
    ] {
        let pids = spawn_readers(kind, dir, &shared);
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let holds = stop(&shared, &pids);
        let rate = holds as f64 / t.elapsed().as_secs_f64();
        if kind == Kind::BuslockMutex {
            base = rate;
        }
        println!("| {what} | {rate:.0} | {:.2}x |", rate / base);
    }

    // 3. Writer wait with readers streaming.
    println!();
    println!(
        "## writer wait while {READERS} readers stream ({HOLD:?} holds): 40 writes, 2 ms apart"
    );
    println!("| candidate | median wait | max wait | writes done in 5 s |");
    println!("|---|---:|---:|---:|");
    for (what, kind) in [
        ("buslock RwLock write", Kind::BuslockRead),
        (
            "pthread_rwlock wrlock (pshared, default reader preference)",
            Kind::PthreadRead,
        ),
        ("flock LOCK_EX", Kind::FlockShared),
    ] {
        let pids = spawn_readers(kind, dir, &shared);
        std::thread::sleep(Duration::from_millis(50));
        let mut waits = Vec::new();
        let give_up = Instant::now() + Duration::from_secs(5);
        for _ in 0..40 {
            let t = Instant::now();
            let got = match kind {
                Kind::BuslockRead => {
                    let g = locks.rw.write_timeout(Duration::from_secs(5))?;
                    let ok = g.is_some();
                    drop(g);
                    ok
                }
                Kind::PthreadRead => {
                    // No timed write lock in the libc crate: poll.
                    let mut ok = false;
                    while Instant::now() < give_up {
                        if shared.trywrlock() {
                            shared.unlock();
                            ok = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    ok
                }
                _ => {
                    // A blocking LOCK_EX may never return while readers
                    // stream: poll, as for pthread_rwlock.
                    let mut ok = false;
                    while Instant::now() < give_up {
                        if flock(fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
                            flock(fd, FlockOperation::Unlock)?;
                            ok = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    ok
                }
            };
            if !got || Instant::now() > give_up {
                break;
            }
            waits.push(t.elapsed().as_secs_f64() * 1e6);
            std::thread::sleep(Duration::from_millis(2));
        }
        stop(&shared, &pids);
        let done = waits.len();
        if done == 0 {
            println!("| {what} | starved (no write within 5 s) | | 0 |");
            continue;
        }
        let max = waits.iter().copied().fold(0.0, f64::max);
        println!(
            "| {what} | {:.0} µs | {:.0} µs | {done} |",
            median(waits.clone()),
            max
        );
    }

    // 4. A dead reader.
    println!();
    println!("## a reader SIGKILLed while it holds: time from its death until a writer gets in");
    let mut times = Vec::new();
    for _ in 0..10 {
        shared.reset();
        // SAFETY: single-threaded; the child reads, flags, and sleeps
        // until killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let locks = open_locks(dir).expect("open in child");
            let g = locks.rw.read().expect("read");
            shared.counter(1).store(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(60));
            drop(g);
            // SAFETY: leaving the child.
            unsafe { libc::_exit(0) };
        }
        while shared.counter(1).load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // The writer waits first (as when a reader dies under a waiting
        // writer), then the reader dies.
        std::thread::scope(|s| -> Result<(), BoxError> {
            let (tx, rx) = std::sync::mpsc::channel();
            let waiter = s.spawn(move || {
                let rw = RwLock::builder("bench-rw").dir(dir).open().unwrap();
                let g = rw.write_timeout(Duration::from_secs(10)).unwrap();
                let at = Instant::now();
                assert!(g.is_some(), "a dead reader blocked the writer for 10 s");
                tx.send(at).unwrap();
            });
            std::thread::sleep(Duration::from_millis(20));
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
            }
            let dead = Instant::now();
            let got = rx.recv()?;
            waiter.join().unwrap();
            times.push(got.saturating_duration_since(dead).as_secs_f64() * 1e3);
            Ok(())
        })?;
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    println!("| candidate | median | max |");
    println!("|---|---:|---:|");
    println!(
        "| buslock RwLock (10 deaths) | {:.1} ms | {:.1} ms |",
        median(times),
        max
    );
    // pthread_rwlock: the dead reader's count is never given back.
    shared.reset();
    // SAFETY: as above.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        shared.rdlock();
        shared.counter(1).store(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(60));
        // SAFETY: leaving the child.
        unsafe { libc::_exit(0) };
    }
    while shared.counter(1).load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    // SAFETY: our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    let t = Instant::now();
    let mut freed = false;
    while t.elapsed() < Duration::from_secs(1) {
        if shared.trywrlock() {
            shared.unlock();
            freed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "| pthread_rwlock (pshared) | {} | |",
        if freed {
            "freed".to_owned()
        } else {
            "never (still locked after 1 s: the count leaked)".to_owned()
        }
    );
    println!("| flock LOCK_SH | released by the kernel at close | |");
    Ok(())
}
