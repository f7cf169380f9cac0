//! A lock file unlinked or replaced while in use: every user moves to the
//! file now at the path instead of silently splitting into two locks. For
//! mutexes and readers-writer locks alike (one lock-file handle follows
//! for both).

mod common;

use std::path::Path;
use std::time::Duration;

use buslock::{Mutex, RwLock};
use common::{Helper, run_helper_if_requested, wait_until};

fn open(dir: &Path) -> Mutex {
    Mutex::builder("SPI").dir(dir).open().expect("open lock")
}

fn open_rw(dir: &Path) -> RwLock {
    RwLock::builder("TABLE")
        .dir(dir)
        .open()
        .expect("open rwlock")
}

fn roles(role: &str) -> i32 {
    let dir: std::path::PathBuf = std::env::var_os("BUSLOCK_DIR").unwrap().into();
    match role {
        // Take and release the lock in a loop, as a bus user does.
        "user" => {
            let m = open(&dir);
            let mut first = true;
            loop {
                let g = m.lock().expect("lock");
                if first {
                    println!("@held");
                    first = false;
                }
                std::thread::sleep(Duration::from_millis(2));
                drop(g);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Write and read in turns, in a loop.
        "rw-user" => {
            let rw = open_rw(&dir);
            let mut first = true;
            loop {
                let w = rw.write().expect("write");
                if first {
                    println!("@held");
                    first = false;
                }
                std::thread::sleep(Duration::from_millis(2));
                drop(w);
                let r = rw.read().expect("read");
                std::thread::sleep(Duration::from_millis(2));
                drop(r);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn helper_entry() {
    run_helper_if_requested(roles);
}

/// Wait until `m` (on the file now at the path) sees `pid` holding it.
fn wait_for_holder(m: &Mutex, pid: u32) {
    wait_until("the other process to hold the new lock file", || {
        m.owner().unwrap().is_some_and(|o| o.pid == pid)
    });
}

#[test]
fn unlinked_lock_file_is_recreated_and_every_user_moves_there() {
    let dir = tempfile::tempdir().unwrap();
    let old_handle = open(dir.path());
    let mut user = Helper::spawn("user", dir.path(), &[]);
    user.expect("held");

    std::fs::remove_file(dir.path().join("SPI.lock")).unwrap();
    let fresh = open(dir.path()); // creates a new file at the path
    // The other process notices within its check interval and moves.
    wait_for_holder(&fresh, user.pid());

    // This process's old handle moves too, at its next acquisition: the
    // old file was retired by whoever noticed first.
    let g = old_handle.lock().unwrap();
    let me = fresh.owner().unwrap().expect("held on the new file");
    assert_eq!(me.pid, std::process::id());
    assert!(fresh.is_held_by_current_thread());
    drop(g);
    user.kill();
}

#[test]
fn lock_file_replaced_by_another_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mut user = Helper::spawn("user", dir.path(), &[]);
    user.expect("held");
    // Another valid lock file moved over the path (a careless `mv`).
    drop(Mutex::builder("OTHER").dir(dir.path()).open().unwrap());
    std::fs::rename(dir.path().join("OTHER.lock"), dir.path().join("SPI.lock")).unwrap();
    let fresh = open(dir.path());
    wait_for_holder(&fresh, user.pid());
    user.kill();
}

#[test]
fn a_waiter_moves_to_the_new_file_before_it_waits_once_the_check_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let old_a = open(dir.path());
    let old_b = std::sync::Arc::new(open(dir.path()));
    let g_old = old_a.lock().unwrap(); // held on the old file
    std::fs::remove_file(dir.path().join("SPI.lock")).unwrap();
    let fresh = open(dir.path());
    let g_new = fresh.lock().unwrap(); // held on the new file
    // The old handles check the path at their first wait after this long.
    std::thread::sleep(buslock::CHECK_INTERVAL + Duration::from_millis(10));

    // A waiter on the old handle must wait for the holder of the new file,
    // not take the old file's lock... which is held too, so check it is
    // listed as a waiter on the new file.
    let waiter = {
        let old_b = old_b.clone();
        std::thread::spawn(move || {
            let g = old_b.lock_timeout(common::WATCHDOG).unwrap().expect("lock");
            drop(g);
        })
    };
    wait_until("the waiter to queue on the new file", || {
        !fresh.waiters().unwrap().is_empty()
    });
    drop(g_new);
    waiter.join().unwrap();
    drop(g_old);
    assert_eq!(fresh.stats().unwrap().acquisitions, 2);
}

#[test]
fn a_symlink_planted_at_a_replaced_path_is_an_error_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    drop(m.lock().unwrap());
    let target = dir.path().join("target");
    std::fs::write(&target, b"keep").unwrap();
    std::fs::remove_file(dir.path().join("SPI.lock")).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("SPI.lock")).unwrap();
    // The first release after the check interval looks at the path; the
    // acquisition after it reports what it found.
    std::thread::sleep(buslock::CHECK_INTERVAL + Duration::from_millis(10));
    drop(m.lock().unwrap());
    let err = m.lock_timeout(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, buslock::Error::Symlink { .. }), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
}

#[test]
fn an_unlinked_rwlock_file_is_recreated_and_every_user_moves_there() {
    let dir = tempfile::tempdir().unwrap();
    let old_handle = open_rw(dir.path());
    let mut user = Helper::spawn("rw-user", dir.path(), &[]);
    user.expect("held");

    std::fs::remove_file(dir.path().join("TABLE.lock")).unwrap();
    let fresh = open_rw(dir.path()); // creates a new file at the path
    // The other process notices within its check interval and moves: it
    // writes and reads the new file.
    wait_until("the other process to write the new lock file", || {
        fresh.writer().unwrap().is_some_and(|w| w.pid == user.pid())
    });
    wait_until("the other process to read the new lock file", || {
        fresh.readers().iter().any(|r| r.pid == user.pid())
    });

    // This process's old handle moves too, at its next acquisition: the
    // old file was retired by whoever noticed first.
    let w = old_handle.write().unwrap();
    let me = fresh.writer().unwrap().expect("written on the new file");
    assert_eq!(me.pid, std::process::id());
    drop(w);
    let r = old_handle.read().unwrap();
    assert!(fresh.readers().iter().any(|r| r.pid == std::process::id()));
    drop(r);
    user.kill();
}

#[test]
fn a_reader_and_a_writer_move_to_the_new_rwlock_file_before_they_wait() {
    let dir = tempfile::tempdir().unwrap();
    let old_a = open_rw(dir.path());
    let old_b = open_rw(dir.path());
    let old_c = open_rw(dir.path());
    let g_old = old_a.write().unwrap(); // written on the old file
    std::fs::remove_file(dir.path().join("TABLE.lock")).unwrap();
    let fresh = open_rw(dir.path());
    let g_new = fresh.write().unwrap(); // written on the new file
    // The old handles check the path at their first wait after this long.
    std::thread::sleep(buslock::CHECK_INTERVAL + Duration::from_millis(10));

    // Waiters on the old handles must wait for the writer of the new file
    // (the old file's word is held too, so look where they are listed).
    std::thread::scope(|s| {
        let reader = s.spawn(|| drop(old_b.read_timeout(common::WATCHDOG).unwrap().expect("read")));
        let writer = s.spawn(|| {
            drop(
                old_c
                    .write_timeout(common::WATCHDOG)
                    .unwrap()
                    .expect("write"),
            )
        });
        wait_until("the waiters to queue on the new file", || {
            fresh.readers_waiting().len() == 1 && fresh.writers_waiting().len() == 1
        });
        drop(g_new);
        reader.join().unwrap();
        writer.join().unwrap();
    });
    drop(g_old);
    let stats = fresh.stats();
    assert_eq!(
        (stats.reads, stats.writes.acquisitions),
        (1, 2),
        "{stats:?}"
    );
}

#[test]
fn rwlock_inspection_follows_a_replaced_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = open_rw(dir.path());
    drop(old.read().unwrap());
    // Another valid lock file moved over the path (a careless `mv`).
    drop(RwLock::builder("OTHER").dir(dir.path()).open().unwrap());
    std::fs::rename(dir.path().join("OTHER.lock"), dir.path().join("TABLE.lock")).unwrap();
    let fresh = open_rw(dir.path());
    let r = fresh.read().unwrap();
    // Without taking anything, the old handle reports the new file.
    assert_eq!(old.readers().len(), 1);
    assert_eq!(old.stats().reads, 1, "the new file's count");
    // The move the inspection made is reported by follow(), once.
    assert!(old.follow().unwrap(), "the move was not reported");
    assert!(!old.follow().unwrap(), "reported twice");
    drop(r);
}

#[test]
fn a_mutex_file_moved_over_a_rwlock_path_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let rw = open_rw(dir.path());
    drop(open(dir.path()));
    std::fs::rename(dir.path().join("SPI.lock"), dir.path().join("TABLE.lock")).unwrap();
    let err = rw.follow().unwrap_err();
    assert!(matches!(err, buslock::Error::WrongKind { .. }), "{err}");
    // Acquisition reports it too: the first release after the check
    // interval looks at the path, the acquisitions after it say what it
    // found (and never take the mutex's word as a readers-writer lock's).
    std::thread::sleep(buslock::CHECK_INTERVAL + Duration::from_millis(10));
    drop(rw.write().unwrap());
    let err = rw.read().unwrap_err();
    assert!(matches!(err, buslock::Error::WrongKind { .. }), "{err}");
    // As for a mutex, the next look is one check interval later.
    std::thread::sleep(buslock::CHECK_INTERVAL + Duration::from_millis(10));
    drop(rw.read().unwrap());
    let err = rw.write().unwrap_err();
    assert!(matches!(err, buslock::Error::WrongKind { .. }), "{err}");
}

/// The defect: `buslock watch` (a `LockView` loop: `follow()`, then events,
/// then `owner()`) sometimes never printed its "replaced" line, because
/// `owner()` moved the view to the new file itself and the next `follow()`
/// said nothing had moved (seen under qemu-user in CI). A move made by an
/// inspection method is reported by the next `follow()`.
#[test]
fn a_view_moved_by_an_inspection_method_reports_the_move_to_follow() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let ld = buslock::LockDir::resolve(Some(dir.path())).unwrap();
    let view = buslock::LockView::open(&ld, "SPI").unwrap();
    assert!(!view.follow().unwrap(), "nothing moved yet");
    std::fs::remove_file(first.path()).unwrap();
    let second = open(dir.path());
    let g = second.lock().unwrap();
    // The inspection sees the new file's holder...
    let owner = view.owner().unwrap().expect("the new file's holder");
    assert_eq!(owner.tid, buslock::identity::tid());
    // ...and the next follow() says the view moved, once.
    assert!(view.follow().unwrap(), "the move was not reported");
    assert!(!view.follow().unwrap(), "reported twice");
    drop(g);
}

/// The same defect for a `Mutex` handle (and so `RwLock`, through the same
/// lock-file handle): a move made by `owner()` is reported by the next
/// `follow()`, once.
#[test]
fn a_mutex_moved_by_an_inspection_method_reports_the_move_to_follow() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let watcher = open(dir.path());
    assert!(!watcher.follow().unwrap(), "nothing moved yet");
    std::fs::remove_file(first.path()).unwrap();
    let second = open(dir.path());
    let g = second.lock().unwrap();
    let owner = watcher.owner().unwrap().expect("the new file's holder");
    assert_eq!(owner.tid, buslock::identity::tid());
    assert!(watcher.follow().unwrap(), "the move was not reported");
    assert!(!watcher.follow().unwrap(), "reported twice");
    drop(g);
}

/// A program creating a lock file makes it (`O_CREAT|O_EXCL`, empty) a
/// moment before it takes the creation `flock` and sizes it. Plant such a
/// file at the path of a replaced lock and let a creator finish it a little
/// later.
fn create_late(dir: &Path, after: Duration) -> std::thread::JoinHandle<Mutex> {
    std::fs::File::create_new(dir.join("SPI.lock")).unwrap();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        open(&dir)
    })
}

/// The defect: `buslock watch` exited with "it is empty: whoever created it
/// stopped before sizing it" when it looked at a replaced lock's path in
/// the moment between the new file's creation and its sizing (seen under
/// qemu-user in CI, where that moment is long). A view waits for a file
/// that is being created.
#[test]
fn a_view_following_to_a_file_its_creator_has_not_sized_yet_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let ld = buslock::LockDir::resolve(Some(dir.path())).unwrap();
    let view = buslock::LockView::open(&ld, "SPI").unwrap();
    std::fs::remove_file(first.path()).unwrap();
    let creator = create_late(dir.path(), Duration::from_millis(300));
    assert!(view.follow().expect("follow a file being created"));
    assert!(view.owner().unwrap().is_none());
    let second = creator.join().unwrap();
    let g = second.lock().unwrap();
    assert_eq!(
        view.owner().unwrap().map(|o| o.tid),
        Some(buslock::identity::tid())
    );
    drop(g);
}

/// The same moment met by a fresh view and by a `Mutex` inspecting a
/// replaced file: both wait for the creator instead of calling the file
/// abandoned.
#[test]
fn inspection_opening_a_file_its_creator_has_not_sized_yet_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let ld = buslock::LockDir::resolve(Some(dir.path())).unwrap();
    let creator = create_late(dir.path(), Duration::from_millis(300));
    let view = buslock::LockView::open(&ld, "SPI").expect("open a file being created");
    assert!(view.owner().unwrap().is_none());
    let first = creator.join().unwrap();
    let watcher = open(dir.path());
    std::fs::remove_file(first.path()).unwrap();
    let creator = create_late(dir.path(), Duration::from_millis(300));
    assert!(watcher.follow().expect("follow a file being created"));
    drop(creator.join().unwrap());
}
