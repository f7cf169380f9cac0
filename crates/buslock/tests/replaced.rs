//! A lock file unlinked or replaced while in use: every user moves to the
//! file now at the path instead of silently splitting into two locks.

mod common;

use std::path::Path;
use std::time::Duration;

use buslock::Mutex;
use common::{Helper, run_helper_if_requested, wait_until};

fn open(dir: &Path) -> Mutex {
    Mutex::builder("SPI").dir(dir).open().expect("open lock")
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
