//! RTOS-style discipline within one process: no recursion, only the owner
//! releases, assert_held, threads exclude each other, guard auto traits,
//! and the legacy companion lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use buslock::{Error, Mutex, MutexGuard, Wait};
use static_assertions::{assert_impl_all, assert_not_impl_any};

assert_impl_all!(Mutex: Send, Sync);
assert_not_impl_any!(MutexGuard<'static>: Send, Sync);
assert_impl_all!(buslock::Held: Send);
assert_impl_all!(Error: Send, Sync, std::error::Error);

fn open(dir: &std::path::Path) -> Mutex {
    Mutex::builder("SPI").dir(dir).open().unwrap()
}

#[test]
fn recursion_is_an_error_never_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let second_handle = open(dir.path());
    let g = m.lock().unwrap();
    assert!(matches!(m.lock(), Err(Error::Recursive { .. })));
    assert!(matches!(m.try_lock(), Err(Error::Recursive { .. })));
    assert!(matches!(
        m.lock_timeout(Duration::from_secs(10)),
        Err(Error::Recursive { .. })
    ));
    // Through another handle on the same lock too.
    assert!(matches!(second_handle.lock(), Err(Error::Recursive { .. })));
    drop(g);
    drop(m.lock().unwrap());
}

#[test]
fn threads_of_one_process_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(open(dir.path()));
    let g = m.lock().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let t = {
        let (m, done) = (m.clone(), done.clone());
        std::thread::spawn(move || {
            assert!(m.try_lock().unwrap().is_none());
            let g = m.lock().unwrap();
            done.store(true, Ordering::SeqCst);
            assert!(g.waited() > Duration::ZERO);
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !done.load(Ordering::SeqCst),
        "second thread got a held lock"
    );
    drop(g);
    t.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(m.stats().unwrap().contended, 1);
}

#[test]
fn assert_held_panics_unless_this_thread_holds() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(open(dir.path()));
    let err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.assert_held())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("not held by this thread") && msg.contains("free"),
        "{msg}"
    );
    let g = m.lock().unwrap();
    m.assert_held();
    let m2 = m.clone();
    let msg = std::thread::spawn(move || {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m2.assert_held()))
            .unwrap_err();
        err.downcast_ref::<String>().unwrap().clone()
    })
    .join()
    .unwrap();
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    drop(g);
}

#[test]
fn only_the_owner_thread_releases() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(open(dir.path()));
    let held = m.acquire(Wait::Forever).unwrap();
    let mut slot = Some(held.expect("lock"));
    // Another thread cannot release it; the proof stays.
    let (m2, mut slot) = {
        let m2 = m.clone();
        std::thread::spawn(move || {
            let r = m2.release(&mut slot);
            assert!(matches!(r, Err(Error::NotOwner { .. })), "{r:?}");
            assert!(slot.is_some());
            (m2, slot)
        })
        .join()
        .unwrap()
    };
    assert!(m2.is_held_by_current_thread());
    m.release(&mut slot).unwrap();
    assert!(slot.is_none());
    assert!(matches!(m.release(&mut slot), Err(Error::NotOwner { .. })));
    assert!(m.owner().unwrap().is_none());
}

#[test]
fn interruptible_wait_gives_up_when_asked_and_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(open(dir.path()));
    let g = m.lock().unwrap();
    let m2 = m.clone();
    let r = std::thread::spawn(move || {
        let mut asked = 0;
        let r = m2.lock_interruptible(None, || {
            asked += 1;
            asked >= 2
        });
        (r.map(|g| g.is_some()), asked)
    })
    .join()
    .unwrap();
    assert!(matches!(r.0, Err(Error::Interrupted { .. })), "{:?}", r.0);
    assert_eq!(r.1, 2);
    drop(g);
    assert!(m.waiters().unwrap().is_empty());
    assert!(m.try_lock().unwrap().is_some());
}

#[test]
fn stats_and_events_follow_holds_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    for _ in 0..3 {
        let g = m.lock().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        drop(g);
    }
    let s = m.stats().unwrap();
    assert_eq!((s.acquisitions, s.contended, s.owner_died), (3, 0, 0));
    let longest = s.longest_hold.expect("a longest hold");
    assert!(longest.duration >= Duration::from_millis(2));
    assert_eq!(longest.pid, std::process::id());
    let (events, next) = m.events_since(0);
    assert_eq!(events.len(), 3);
    assert_eq!(next, 3);
    assert!(events.iter().all(|e| e.held >= Duration::from_millis(2)));
    assert_eq!(m.events_since(next).0.len(), 0);
    m.reset_stats().unwrap();
    let s = m.stats().unwrap();
    // The reset's own hold is the first of the new period: its
    // acquisition and (once released) its hold count, nothing else.
    assert_eq!(s.acquisitions, 1);
    assert_eq!(s.hold_histogram.count(), 1);
    // The longest hold is that one hold (not one from before the reset),
    // however long a slow machine took over it: no timing in the check.
    let longest = s.longest_hold.as_ref().expect("the reset's own hold");
    assert_eq!(longest.duration, s.total_hold, "{s:?}");
}

#[test]
fn legacy_record_lock_excludes_lockf_users() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("DI_Mutex_SPI");
    let m = Mutex::builder("SPI")
        .dir(dir.path())
        .legacy_record_lock(&legacy)
        .open()
        .unwrap();
    assert_eq!(m.legacy_path(), Some(legacy.as_path()));
    // While buslock holds it, a lockf (classic POSIX) lock taken by another
    // process, as Dexter's DI_Mutex does, fails.
    let g = m.lock().unwrap();
    assert!(!lockf_would_succeed(&legacy));
    drop(g);
    assert!(lockf_would_succeed(&legacy));

    // While a legacy program holds it, buslock waits and times out.
    let mut child = lockf_holder(&legacy);
    assert!(m.lock_timeout(Duration::from_millis(30)).unwrap().is_none());
    assert!(m.try_lock().unwrap().is_none());
    // ... and the buslock mutex itself was not left held.
    assert!(m.owner().unwrap().is_none());
    child.kill().unwrap();
    child.wait().unwrap();
    drop(m.lock().unwrap());
}

/// Run a child that takes a classic POSIX lock (what `lockf` does) on
/// `path` with `F_SETLK` and report whether it got it.
fn lockf_would_succeed(path: &std::path::Path) -> bool {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB);print('yes')\nexcept OSError:\n print('no')",
        ])
        .arg(path)
        .output()
        .expect("python3 for the lockf probe");
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

fn lockf_holder(path: &std::path::Path) -> std::process::Child {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(60)",
        ])
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    child
}

#[test]
fn a_thread_waiting_for_the_legacy_lock_shows_as_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("DI_Mutex_SPI");
    std::fs::write(&legacy, b"").unwrap();
    let m = Arc::new(
        Mutex::builder("SPI")
            .dir(dir.path())
            .legacy_record_lock(&legacy)
            .open()
            .unwrap(),
    );
    let mut old_program = lockf_holder(&legacy);
    let waiter = {
        let m = m.clone();
        std::thread::spawn(move || {
            let g = m.lock_timeout(Duration::from_secs(30)).unwrap();
            g.is_some()
        })
    };
    // It holds the buslock mutex while it waits for the legacy file, and
    // says so to everyone who looks.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // (Looked at until both agree: while it waits, the waiter may step
    // aside for a moment to leave the old program its turn.)
    while m
        .owner()
        .unwrap()
        .is_none_or(|o| o.pid != std::process::id())
        || !m.is_locked()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never shown as holder"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    old_program.kill().unwrap();
    old_program.wait().unwrap();
    assert!(
        waiter.join().unwrap(),
        "got both locks once the old program died"
    );
    assert!(m.owner().unwrap().is_none());
}
