//! The `global_lock` companion: a POSIX named semaphore taken after the
//! buslock mutex, against "old programs" that use the semaphore directly
//! (this test process), with real helper processes and real SIGKILLs.

mod common;

use buslock::Mutex;
use buslock::raw::semaphore::{NamedSemaphore, SemWait};
use common::{Helper, run_helper_if_requested};
use std::time::Duration;

#[test]
fn helper_entry() {
    run_helper_if_requested(roles);
}

fn roles(role: &str) -> i32 {
    let sem = std::env::var("SEM").unwrap();
    let m = Mutex::builder("NCSPI")
        .legacy_semaphore(&sem)
        .open()
        .unwrap();
    if role == "wait" {
        println!("@waiting");
    }
    // Held until this process is killed.
    let _guard = m.lock().unwrap();
    println!("@held");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A uniquely named semaphore, unlinked at the end of the test.
struct Sem(String);

impl Sem {
    fn new(tag: &str) -> Sem {
        Sem(format!("/buslock-test-{tag}-{}", std::process::id()))
    }
    fn old_program(&self) -> NamedSemaphore {
        NamedSemaphore::open(&self.0).unwrap()
    }
}

impl Drop for Sem {
    fn drop(&mut self) {
        let _ = NamedSemaphore::unlink(&self.0);
    }
}

fn open(dir: &std::path::Path, sem: &Sem) -> Mutex {
    Mutex::builder("NCSPI")
        .dir(dir)
        .legacy_semaphore(&sem.0)
        .open()
        .unwrap()
}

#[test]
fn global_lock_dropin_waits_for_an_old_program_holding_the_semaphore() {
    let dir = tempfile::tempdir().unwrap();
    let sem = Sem::new("old");
    let old = sem.old_program();
    let m = open(dir.path(), &sem);
    assert_eq!(m.legacy_semaphore(), Some(sem.0.as_str()));
    assert_eq!(m.legacy_path(), None);
    assert_eq!(old.try_wait().unwrap(), SemWait::Taken);
    assert!(m.try_lock().unwrap().is_none());
    assert!(m.lock_timeout(Duration::from_millis(30)).unwrap().is_none());
    let mut asked = 0;
    let r = m.lock_interruptible(None, || {
        asked += 1;
        asked == 2
    });
    assert!(
        matches!(r, Err(buslock::Error::Interrupted { .. })),
        "{r:?}"
    );
    // The buslock mutex is free again after each failed attempt.
    assert!(!m.is_locked());
    old.post().unwrap();
    let g = m.lock().unwrap();
    assert_eq!(old.try_wait().unwrap(), SemWait::Busy);
    assert_eq!(old.value().unwrap(), 0);
    drop(g);
    assert_eq!(old.value().unwrap(), 1);
}

#[test]
fn a_buslock_holder_killed_holding_the_semaphore_is_healed() {
    let dir = tempfile::tempdir().unwrap();
    let sem = Sem::new("heal");
    let old = sem.old_program();
    let mut holder = Helper::spawn("hold", dir.path(), &[("SEM", sem.0.clone())]);
    holder.expect("held");
    holder.kill();
    // The kernel does not give a semaphore back: old programs are locked out.
    assert_eq!(old.value().unwrap(), 0);
    let m = open(dir.path(), &sem);
    let g = m.lock().unwrap();
    assert!(g.previous_owner_died());
    assert_eq!(old.value().unwrap(), 0, "held by the new holder");
    drop(g);
    assert_eq!(old.value().unwrap(), 1, "healed");
    assert_eq!(old.try_wait().unwrap(), SemWait::Taken);
    old.post().unwrap();
}

#[test]
fn a_holder_killed_while_waiting_for_the_semaphore_is_not_healed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let sem = Sem::new("nodouble");
    let old = sem.old_program();
    assert_eq!(old.try_wait().unwrap(), SemWait::Taken);
    let mut waiter = Helper::spawn("wait", dir.path(), &[("SEM", sem.0.clone())]);
    waiter.expect("waiting");
    let m = open(dir.path(), &sem);
    // The waiter holds the buslock mutex and waits for the semaphore.
    common::wait_until("the waiter holds the mutex", || m.is_locked());
    waiter.kill();
    old.post().unwrap();
    let g = m.lock().unwrap();
    assert!(g.previous_owner_died());
    assert_eq!(old.value().unwrap(), 0);
    drop(g);
    // Posted once, by this holder's release: still a lock, not a count of 2.
    assert_eq!(old.value().unwrap(), 1);
}
