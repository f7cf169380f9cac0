//! Faults of the processes using a lock: a waiter killed while waiting, a
//! holder stopped, a holder that is a zombie, a holder that died in the
//! middle of writing its owner record.

mod common;

use std::fs::OpenOptions;
use std::mem::offset_of;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use buslock::raw::layout::{LockPage, OwnerRecord};
use buslock::{Mutex, ProcessState};
use common::{Helper, wait_until};
use rustix::process::Signal;

const WATCHDOG: Duration = Duration::from_secs(20);

fn open(dir: &std::path::Path, name: &str) -> Mutex {
    Mutex::builder(name).dir(dir).open().unwrap()
}

#[test]
fn waiter_killed_while_waiting_is_not_listed_and_lock_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), "W");
    let guard = m.lock().unwrap();
    let mut waiter = Helper::start("__wait", dir.path(), "W", &[]);
    assert_eq!(waiter.line(WATCHDOG), "waiting");
    let pid = waiter.pid();
    assert!(
        wait_until(WATCHDOG, || m
            .waiters()
            .unwrap()
            .iter()
            .any(|w| w.pid == pid)),
        "the waiter never showed up in waiters()"
    );
    waiter.signal(Signal::KILL);
    // Not yet reaped: a zombie is not a live waiter either.
    assert!(
        wait_until(WATCHDOG, || !m
            .waiters()
            .unwrap()
            .iter()
            .any(|w| w.pid == pid)),
        "a killed waiter is still listed: {:?}",
        m.waiters().unwrap()
    );
    waiter.kill();
    assert!(m.waiters().unwrap().iter().all(|w| w.pid != pid));
    // The queue still works for the next waiter, and nobody "died holding".
    let next = Helper::start("__wait", dir.path(), "W", &[]);
    assert_eq!(next.line(WATCHDOG), "waiting");
    drop(guard);
    assert_eq!(next.line(WATCHDOG), "locked false");
}

#[test]
fn stopped_holder_waiters_time_out_and_owner_says_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), "S");
    let mut holder = Helper::start("__hold", dir.path(), "S", &[]);
    assert_eq!(holder.line(WATCHDOG), "locked false");
    holder.signal(Signal::STOP);
    assert!(
        wait_until(WATCHDOG, || m
            .owner()
            .unwrap()
            .is_some_and(|o| o.state == ProcessState::Stopped)),
        "owner never reported Stopped: {:?}",
        m.owner()
    );
    let owner = m.owner().unwrap().unwrap();
    assert_eq!(owner.pid, holder.pid());
    assert!(owner.is_alive() && !owner.torn);
    assert!(m.is_locked());
    // Timeouts still work while the holder is stopped.
    assert!(
        m.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none()
    );
    assert!(m.try_lock().unwrap().is_none());
    assert!(m.stats().unwrap().timeouts >= 1);
    // Killing a stopped holder releases the lock, with the report.
    holder.kill();
    let guard = m.lock_timeout(WATCHDOG).unwrap().expect("lock after kill");
    assert!(guard.previous_owner_died());
}

#[test]
fn zombie_holder_is_reported_as_zombie_and_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), "Z");
    let mut holder = Helper::start("__hold", dir.path(), "Z", &["--exit"]);
    assert_eq!(holder.line(WATCHDOG), "locked false");
    let pid = holder.pid();
    // It exited holding the lock and nobody reaped it yet.
    assert!(
        wait_until(WATCHDOG, || m
            .owner()
            .unwrap()
            .is_some_and(|o| o.pid == pid && o.state == ProcessState::Zombie)),
        "owner never reported Zombie: {:?}",
        m.owner()
    );
    assert!(!m.is_locked(), "a zombie holds nothing");
    let guard = m.lock_timeout(WATCHDOG).unwrap().expect("take over");
    assert!(guard.previous_owner_died());
    drop(guard);
    holder.kill();
    assert!(m.owner().unwrap().is_none());
}

#[test]
fn holder_killed_mid_owner_record_write_reads_torn_then_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path(), "T");
    let mut holder = Helper::start("__hold", dir.path(), "T", &[]);
    assert_eq!(holder.line(WATCHDOG), "locked false");
    // Freeze the holder, make its record's sequence counter odd as if it
    // were in the middle of writing it, then kill it there.
    holder.signal(Signal::STOP);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path())
        .unwrap();
    let mut seq = [0u8; 4];
    let at = (offset_of!(LockPage, owner) + offset_of!(OwnerRecord, seq)) as u64;
    file.read_exact_at(&mut seq, at).unwrap();
    let odd = (u32::from_ne_bytes(seq) | 1).to_ne_bytes();
    file.write_all_at(&odd, at).unwrap();
    holder.kill();
    let owner = m.owner().unwrap().expect("a torn record is still reported");
    assert!(owner.torn, "{owner:?}");
    assert!(!owner.is_alive(), "{owner:?}");
    let guard = m.lock_timeout(WATCHDOG).unwrap().expect("take over");
    assert!(guard.previous_owner_died());
    let me = m.owner().unwrap().unwrap();
    assert!(!me.torn && me.pid == std::process::id(), "{me:?}");
    drop(guard);
    assert!(m.owner().unwrap().is_none());
}
