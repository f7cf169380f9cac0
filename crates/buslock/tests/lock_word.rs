//! Regression tests for the failures of the glibc-pthread lock core (issue
//! 8, section 1), each named after its defect, with real processes, real
//! SIGKILLs, real copies of lock files and real threads.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use buslock::{Error, Mutex, ProcessState};
use common::{Helper, WATCHDOG, run_helper_if_requested, wait_until};

/// Offset of the lock word in a lock file (`LockPage::mutex`).
const WORD_OFFSET: u64 = 128;
/// Offset of the boot id in a lock file (`Header::boot_id`).
const BOOT_ID_OFFSET: u64 = 96;

fn open(dir: &Path, name: &str) -> Mutex {
    Mutex::builder(name).dir(dir).open().expect("open lock")
}

fn env_dir() -> PathBuf {
    std::env::var_os("BUSLOCK_DIR").expect("BUSLOCK_DIR").into()
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + WATCHDOG;
    while !path.exists() {
        assert!(Instant::now() < deadline, "no {path:?} within the watchdog");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn roles(role: &str) -> i32 {
    let dir = env_dir();
    match role {
        // Hold FIRST, wait for the GO file, then take SECOND with MODE.
        "abba" => {
            let var = |k: &str| std::env::var(k).expect(k);
            let first = open(&dir, &var("FIRST"));
            let second = open(&dir, &var("SECOND"));
            let g1 = first.lock().expect("lock first");
            println!("@holding {}", buslock::identity::tid());
            wait_for_file(&dir.join(var("GO")));
            let got = match var("MODE").as_str() {
                "lock" => second.lock().map(Some),
                "timeout" => second.lock_timeout(WATCHDOG),
                _ => second.lock_interruptible(Some(WATCHDOG), || false),
            };
            match got {
                Ok(Some(g2)) => {
                    println!("@got");
                    drop(g2);
                }
                Ok(None) => println!("@timeout"),
                Err(e @ Error::Deadlock { .. }) => {
                    println!("@deadlock {e}");
                    // Keep the first lock a moment: the other side must
                    // still be waiting, undisturbed.
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => println!("@error {e}"),
            }
            drop(g1);
            println!("@released");
            0
        }
        // Take the lock and keep it until killed.
        "hold" => {
            let m = open(&dir, "SPI");
            let g = m.lock().expect("lock");
            println!("@holding {}", buslock::identity::tid());
            std::thread::sleep(WATCHDOG * 2);
            drop(g);
            0
        }
        // Interleave glibc robust mutexes and buslock locks on this
        // thread's robust list, then wait to be killed holding G1, G2, B.
        "interleave" => {
            let g = glibc::Pair::map(&dir.join("glibc.shm"), true);
            let a = open(&dir, "A");
            let b = open(&dir, "B");
            assert_eq!(g.lock(0), 0);
            let ga = a.lock().unwrap();
            assert_eq!(g.lock(1), 0);
            assert_eq!(g.unlock(0), 0); // unlinks the entry behind A's
            let gb = b.lock().unwrap();
            drop(ga); // unlinks A from between G2 and B
            assert_eq!(g.lock(0), 0);
            println!("@holding");
            std::thread::sleep(WATCHDOG * 2);
            drop(gb);
            0
        }
        // Block in lock(), say whether told of a death, release, exit.
        "wait" => {
            let m = open(&dir, "SPI");
            println!("@waiting");
            let g = m.lock().expect("lock");
            println!("@got died={}", g.previous_owner_died());
            drop(g);
            0
        }
        // An unrelated live process that never opens a lock.
        "sleeper" => {
            println!("@tid {}", buslock::identity::tid());
            std::thread::sleep(WATCHDOG * 2);
            0
        }
        other => panic!("unknown role {other}"),
    }
}

/// glibc robust mutexes in a shared file, to check that buslock keeps the
/// thread's robust list as glibc keeps it (test code: buslock itself uses no
/// pthread mutex).
mod glibc {
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// Two robust, process-shared pthread mutexes in a mapped file.
    pub struct Pair {
        base: *mut u8,
    }

    impl Pair {
        pub fn map(path: &Path, init: bool) -> Pair {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .unwrap();
            file.set_len(4096).unwrap();
            // SAFETY: a shared mapping of a 4096-byte file; the mutexes in
            // it are initialised (once, by the creator) before any use, and
            // the mapping is never unmapped while the test runs.
            unsafe {
                let base = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                );
                assert_ne!(base, libc::MAP_FAILED);
                let pair = Pair { base: base.cast() };
                if init {
                    let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
                    libc::pthread_mutexattr_init(&mut attr);
                    libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
                    libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
                    for i in 0..2 {
                        assert_eq!(libc::pthread_mutex_init(pair.at(i), &attr), 0);
                    }
                }
                pair
            }
        }

        fn at(&self, i: usize) -> *mut libc::pthread_mutex_t {
            // SAFETY: two 128-byte slots inside the 4096-byte mapping.
            unsafe { self.base.add(i * 128).cast() }
        }

        /// `pthread_mutex_lock`: 0, or `EOWNERDEAD` (then made consistent).
        pub fn lock(&self, i: usize) -> i32 {
            // SAFETY: an initialised robust mutex in the live mapping.
            unsafe {
                let rc = libc::pthread_mutex_lock(self.at(i));
                if rc == libc::EOWNERDEAD {
                    libc::pthread_mutex_consistent(self.at(i));
                }
                rc
            }
        }

        pub fn unlock(&self, i: usize) -> i32 {
            // SAFETY: as in `lock`; held by this thread.
            unsafe { libc::pthread_mutex_unlock(self.at(i)) }
        }
    }
}

#[test]
fn helper_entry() {
    run_helper_if_requested(roles);
}

/// P1 holds A and P2 holds B; P2 waits for A, then P1 asks for B and
/// closes the cycle. Returns P1's line and P2's outcome.
fn abba(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), "A");
    let env = |first: &str, second: &str, go: &str| {
        vec![
            ("FIRST", first.to_owned()),
            ("SECOND", second.to_owned()),
            ("GO", go.to_owned()),
            ("MODE", mode.to_owned()),
        ]
    };
    let mut p1 = Helper::spawn("abba", dir.path(), &env("A", "B", "go1"));
    let mut p2 = Helper::spawn("abba", dir.path(), &env("B", "A", "go2"));
    let tid1 = p1.expect("holding");
    let tid2 = p2.expect("holding");
    std::fs::write(dir.path().join("go2"), b"").unwrap();
    let p1_pid = p1.pid();
    let p2_pid = p2.pid();
    wait_until("P2 to wait for A", || {
        a.waiters().unwrap().iter().any(|w| w.pid == p2_pid)
    });
    std::fs::write(dir.path().join("go1"), b"").unwrap();
    // P2 is listed as a waiter just before it blocks in the kernel, so P1
    // may block on B first and P2's own wait close the cycle; and when both
    // enter the kernel at once, its chain walk may refuse both (seen under
    // qemu-user). Whoever closes the cycle gets the error and lets go; a
    // side not refused then gets its lock.
    let outcome = |p: &mut Helper| loop {
        let line = p.line(WATCHDOG);
        if ["@deadlock", "@got", "@timeout", "@error"]
            .iter()
            .any(|t| line.starts_with(t))
        {
            break line;
        }
    };
    let (o1, o2) = (outcome(&mut p1), outcome(&mut p2));
    let refused: Vec<&str> = [&o1, &o2]
        .into_iter()
        .filter_map(|o| o.strip_prefix("@deadlock"))
        .collect();
    assert!(!refused.is_empty(), "nobody was refused: {o1:?}, {o2:?}");
    for o in [&o1, &o2] {
        assert!(
            o.starts_with("@deadlock") || o.starts_with("@got"),
            "each side is refused or gets its lock: {o1:?}, {o2:?}"
        );
    }
    for message in refused {
        for needle in [
            "lock 'A'".to_owned(),
            "lock 'B'".to_owned(),
            format!("pid {p1_pid} tid {tid1}"),
            format!("pid {p2_pid} tid {tid2}"),
            "lock_word".to_owned(), // the program name of both sides
        ] {
            assert!(message.contains(&needle), "{needle:?} not in: {message}");
        }
    }
    p1.expect("released");
    p2.expect("released");
    assert!(p1.wait().success(), "the victim must not abort");
    assert!(p2.wait().success());
    // Nothing else disturbed: both locks are free and healthy.
    let b = open(dir.path(), "B");
    for m in [&a, &b] {
        let g = m.try_lock().unwrap().expect("free after the cycle");
        assert!(!g.previous_owner_died());
    }
}

#[test]
fn cross_process_abba_deadlock_is_an_error_not_an_abort() {
    abba("lock");
}

#[test]
fn cross_process_abba_deadlock_in_a_timed_wait_is_an_error_not_an_abort() {
    abba("timeout");
}

#[test]
fn cross_process_abba_deadlock_in_an_interruptible_wait_is_an_error_not_an_abort() {
    abba("interruptible");
}

/// A lock file copied while a helper holds it; the helper is then killed.
/// Returns the directory of the copy.
fn copy_of_held_file(kill: bool) -> (tempfile::TempDir, tempfile::TempDir, Option<Helper>) {
    let live = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let mut holder = Helper::spawn("hold", live.path(), &[]);
    holder.expect("holding");
    std::fs::copy(live.path().join("SPI.lock"), saved.path().join("SPI.lock")).unwrap();
    let holder = if kill {
        holder.kill();
        None
    } else {
        Some(holder)
    };
    (live, saved, holder)
}

#[test]
fn saved_lock_file_whose_holder_is_gone_is_taken_over_not_aborted() {
    let (_live, saved, _) = copy_of_held_file(true);
    let m = open(saved.path(), "SPI");
    // `state` tells the truth: the recorded holder is gone, the lock free.
    let owner = m
        .owner()
        .unwrap()
        .expect("the dead holder is still recorded");
    assert_eq!(owner.state, ProcessState::Gone);
    assert!(!m.is_locked());
    // A try takes it over.
    let g = m
        .try_lock()
        .unwrap()
        .expect("a vanished holder is taken over");
    assert!(g.previous_owner_died());
    drop(g);

    // A blocking lock on another copy takes it over too.
    let (_live, saved, _) = copy_of_held_file(true);
    let m = open(saved.path(), "SPI");
    let g = m.lock().expect("lock a saved file whose holder is gone");
    assert!(g.previous_owner_died());
    drop(g);
    let g = m.lock().unwrap();
    assert!(!g.previous_owner_died(), "the death is told once");
    drop(g);
    assert_eq!(m.stats().unwrap().owner_died, 1);
}

#[test]
fn saved_lock_file_naming_a_live_unrelated_thread_is_taken_over_not_stuck() {
    let (_live, saved, _) = copy_of_held_file(true);
    // The dead holder's TID now belongs to an unrelated live thread (as
    // after TID reuse): write that thread's TID into the saved word.
    let mut sleeper = Helper::spawn("sleeper", saved.path(), &[]);
    let stranger: u32 = sleeper.expect("tid").parse().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(saved.path().join("SPI.lock"))
        .unwrap();
    file.write_all_at(&stranger.to_le_bytes(), WORD_OFFSET)
        .unwrap();
    drop(file);

    let m = open(saved.path(), "SPI");
    let owner = m.owner().unwrap().expect("recorded");
    assert_eq!(owner.state, ProcessState::Gone, "{owner:?}");
    assert!(!m.is_locked());
    let g = m
        .lock_timeout(WATCHDOG)
        .unwrap()
        .expect("a word naming an unrelated thread must not block for good");
    assert!(g.previous_owner_died());
    drop(g);
    // The stranger was not disturbed.
    assert!(
        Path::new(&format!("/proc/{}", sleeper.pid())).exists(),
        "sleeper alive"
    );
}

#[test]
fn lock_file_from_an_earlier_boot_is_reinitialised() {
    // Held by a live process when saved: on a real reboot nothing of the
    // earlier boot survives, whatever the file says.
    let (_live, saved, _holder) = copy_of_held_file(false);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(saved.path().join("SPI.lock"))
        .unwrap();
    file.write_all_at(&[0x5a; 16], BOOT_ID_OFFSET).unwrap();
    drop(file);

    let m = open(saved.path(), "SPI");
    assert!(m.owner().unwrap().is_none(), "a fresh file has no holder");
    let g = m
        .try_lock()
        .unwrap()
        .expect("a file of an earlier boot is free");
    assert!(!g.previous_owner_died());
    drop(g);
    assert_eq!(m.stats().unwrap().acquisitions, 1, "statistics start again");
}

#[test]
fn panicking_holder_is_reported_as_a_death() {
    let dir = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(open(dir.path(), "SPI"));
    let m2 = m.clone();
    let panicked = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("mid-transfer");
    })
    .join();
    assert!(panicked.is_err());
    let g = m.lock().unwrap();
    assert!(
        g.previous_owner_died(),
        "a guard dropped by unwinding must leave the death report"
    );
    drop(g);
    let g = m.lock().unwrap();
    assert!(!g.previous_owner_died(), "told once");
    drop(g);
    assert_eq!(m.stats().unwrap().owner_died, 1);
}

#[test]
fn holder_thread_that_ended_in_a_live_process_is_not_shown_as_holding() {
    let dir = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(open(dir.path(), "SPI"));
    let m2 = m.clone();
    let tid = std::thread::spawn(move || {
        let g = m2.lock().unwrap();
        std::mem::forget(g); // the thread ends holding the lock
        buslock::identity::tid()
    })
    .join()
    .unwrap();
    if !buslock::raw::robust::available() {
        // Without a robust list (an emulator) the kernel cannot mark the
        // word: the next locker finds the thread gone (ESRCH) instead.
        eprintln!("note: no robust list here; checking the ESRCH takeover instead");
    }
    // join() can return a moment before the thread is gone from /proc
    // (seen under qemu-user): wait for the kernel thread itself.
    let task = format!("/proc/self/task/{tid}");
    wait_until("the holder thread to end in the kernel", || {
        !Path::new(&task).exists()
    });
    // The process lives on; the thread does not.
    assert!(!m.is_locked(), "a dead thread is not holding");
    let owner = m.owner().unwrap().expect("still recorded");
    assert_eq!(owner.tid, tid);
    assert_eq!(owner.pid, std::process::id());
    assert_eq!(owner.state, ProcessState::Gone);
    let g = m.try_lock().unwrap().expect("the kernel released it");
    assert!(g.previous_owner_died());
}

#[test]
fn glibc_robust_mutexes_and_buslock_locks_share_the_threads_robust_list() {
    if !buslock::raw::robust::available() {
        eprintln!("skipped: no robust list here (emulator?), the kernel cannot mark deaths");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut p = Helper::spawn("interleave", dir.path(), &[]);
    p.expect("holding");
    p.kill();
    // The kernel walked one list holding both kinds: every lock the dead
    // thread held is marked, the one it released is not.
    let g = glibc::Pair::map(&dir.path().join("glibc.shm"), false);
    assert_eq!(g.lock(0), libc::EOWNERDEAD, "glibc mutex 1");
    assert_eq!(g.lock(1), libc::EOWNERDEAD, "glibc mutex 2");
    // The kernel itself marked B (not the next locker finding the TID gone).
    let mut word = [0u8; 4];
    std::fs::File::open(dir.path().join("B.lock"))
        .unwrap()
        .read_exact_at(&mut word, WORD_OFFSET)
        .unwrap();
    let word = u32::from_le_bytes(word);
    assert_eq!(
        word & 0x7fff_ffff,
        0x4000_0000,
        "FUTEX_OWNER_DIED, no owner: {word:#x}"
    );
    let b = open(dir.path(), "B");
    let gb = b.try_lock().unwrap().expect("B released by the kernel");
    assert!(gb.previous_owner_died());
    let a = open(dir.path(), "A");
    let ga = a.try_lock().unwrap().expect("A was released");
    assert!(!ga.previous_owner_died());
    assert_eq!(g.unlock(0), 0);
    assert_eq!(g.unlock(1), 0);
}

/// Run `cmd args` and say whether it worked (util-linux's `taskset` and
/// `chrt` on helper processes).
fn tool(cmd: &str, args: &[&str]) -> bool {
    std::process::Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn locker_arriving_while_the_kernel_hands_on_an_unmarked_dead_holders_lock_waits_not_einval() {
    // A holder that dies without its robust list marking the word (here: a
    // word written by hand; under qemu-user: every holder) leaves the
    // kernel's PI state without an owner while the word still names the
    // dead thread, until the waiter the kernel woke writes itself in. A
    // locker arriving in that window got EINVAL from FUTEX_LOCK_PI and
    // `lock()` failed with "Invalid argument" (seen in CI under qemu).
    // The woken waiter is made slow to run (SCHED_IDLE, on one CPU with a
    // busy loop) so that the window is wide.
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), "SPI");
    let mut sleeper = Helper::spawn("sleeper", dir.path(), &[]);
    let holder: u32 = sleeper.expect("tid").parse().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path())
        .unwrap();
    file.write_all_at(&holder.to_le_bytes(), WORD_OFFSET)
        .unwrap();
    let word = || {
        let mut w = [0u8; 4];
        file.read_exact_at(&mut w, WORD_OFFSET).unwrap();
        u32::from_le_bytes(w)
    };
    let mut waiter = Helper::spawn("wait", dir.path(), &[]);
    waiter.expect("waiting");
    let pid = waiter.pid().to_string();
    // Busy loops on CPU 0, started there, each a process of its own, in
    // the idle class like the waiter: they slow the waiter down as much,
    // and yield at once to everything else (a loaded CI machine's other
    // tests were starved by normal-class loops).
    let mut hogs: Vec<std::process::Child> = (0..3)
        .map(|_| {
            std::process::Command::new("chrt")
                .args([
                    "-i",
                    "0",
                    "taskset",
                    "-c",
                    "0",
                    "sh",
                    "-c",
                    "while :; do :; done",
                ])
                .spawn()
                .expect("chrt")
        })
        .collect();
    let stop_hogs = |hogs: &mut Vec<std::process::Child>| {
        for h in hogs.iter_mut() {
            let _ = h.kill();
            let _ = h.wait();
        }
    };
    if !(tool("taskset", &["-a", "-p", "-c", "0", &pid])
        && tool("chrt", &["-a", "-i", "-p", "0", &pid]))
    {
        stop_hogs(&mut hogs);
        eprintln!("skipped: taskset or chrt (util-linux) cannot run here");
        return;
    }
    // The kernel has queued the waiter behind the holder.
    wait_until("the waiter to queue in the kernel", || {
        word() == holder | 0x8000_0000
    });
    sleeper.kill(); // reaped: the kernel has dropped the PI state's owner
    let got = m.lock_timeout(WATCHDOG);
    stop_hogs(&mut hogs);
    let g = got
        .expect("a locker in the handoff window must wait, not fail")
        .expect("the lock within the watchdog");
    drop(g);
    assert!(waiter.expect("got").starts_with("died="));
    assert!(waiter.wait().success());
}
