//! `state` tells the truth about a legacy companion lock: while a buslock
//! user holds the mutex but waits for Dexter's file (or a global_lock
//! semaphore) that a program not using buslock holds, it names that
//! program (or says it cannot be known), instead of only showing the
//! buslock user as the holder.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc::channel;

use buslock::raw::semaphore::{NamedSemaphore, SemWait};
use support::{Proc, buslock, eventually, run};

fn state(dir: &Path) -> serde_json::Value {
    try_state(dir).expect("state --json")
}

/// `state --json`, or None before the lock file exists.
fn try_state(dir: &Path) -> Option<serde_json::Value> {
    let mut c = buslock(dir);
    c.args(["state", "SPI", "--json"]);
    let out = run(c);
    matches!(out.code(), 0 | 1).then(|| out.json())
}

/// A buslock user in a thread: holds the mutex, then waits for the
/// companion; reports when it holds both, and keeps them until the test
/// says `release` (however slow the machine: a fixed hold time ran out
/// before a `state` started under a loaded emulator could look).
struct BuslockUser {
    held: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

fn buslock_user(builder: buslock::Builder) -> BuslockUser {
    let (tx, held) = channel();
    let (release, rx) = channel::<()>();
    std::thread::spawn(move || {
        let m = builder.open().unwrap();
        let g = m.lock().unwrap();
        let _ = tx.send(());
        let _ = rx.recv_timeout(support::WATCHDOG);
        drop(g);
    });
    BuslockUser { held, release }
}

#[test]
fn state_names_the_unmigrated_program_holding_dexters_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("DI_Mutex_SPI");
    // Dexter's algorithm: a classic POSIX lock through fcntl.lockf.
    let mut old = Command::new("python3");
    old.args([
        "-c",
        "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.lockf(f, fcntl.LOCK_EX); \
         print('locked', flush=True); time.sleep(60)",
    ])
    .arg(&file);
    let mut old = Proc::spawn(old);
    old.expect_line(|l| l == "locked");
    let held = buslock_user(
        buslock::Mutex::builder("SPI")
            .dir(dir.path())
            .legacy_record_lock(&file),
    );
    let doc = eventually("the buslock user to hold the mutex", || {
        let doc = try_state(dir.path())?;
        (doc["state"] == "held").then_some(doc)
    });
    assert_eq!(doc["holder"]["pid"], std::process::id(), "{doc}");
    let legacy = &doc["legacy"];
    assert_eq!(legacy["kind"], "record-lock", "{doc}");
    assert_eq!(legacy["lock"], file.display().to_string(), "{doc}");
    assert_eq!(legacy["holder"], "program", "{doc}");
    assert_eq!(legacy["pid"], old.pid(), "{doc}");
    assert_eq!(legacy["program"], "python3", "{doc}");
    let mut c = buslock(dir.path());
    c.args(["state", "SPI"]);
    let text = run(c).stdout;
    assert!(
        text.contains(&format!(
            "held by pid {} (python3), a program not using buslock; the holder above waits for it",
            old.pid()
        )),
        "{text}"
    );
    drop(old); // kills it: its lock goes
    held.held.recv_timeout(support::WATCHDOG).unwrap();
    let doc = state(dir.path());
    assert_eq!(doc["legacy"]["holder"], "buslock", "{doc}");
    held.release.send(()).unwrap();
}

#[test]
fn state_says_a_global_lock_semaphore_holder_cannot_be_known() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("/buslock-cli-test-{}", std::process::id());
    let old = NamedSemaphore::open(&name).unwrap();
    assert_eq!(old.try_wait().unwrap(), SemWait::Taken);
    let held = buslock_user(
        buslock::Mutex::builder("SPI")
            .dir(dir.path())
            .legacy_semaphore(&name),
    );
    let doc = eventually("the buslock user to hold the mutex", || {
        let doc = try_state(dir.path())?;
        (doc["state"] == "held").then_some(doc)
    });
    assert_eq!(doc["legacy"]["kind"], "semaphore", "{doc}");
    assert_eq!(doc["legacy"]["holder"], "unknown", "{doc}");
    old.post().unwrap();
    held.held.recv_timeout(support::WATCHDOG).unwrap();
    let doc = state(dir.path());
    assert_eq!(doc["legacy"]["holder"], "buslock", "{doc}");
    held.release.send(()).unwrap();
    // Once the buslock user released both, the semaphore is free again.
    eventually("the semaphore to be free", || {
        (state(dir.path())["legacy"]["holder"] == "free").then_some(())
    });
    NamedSemaphore::unlink(&name).unwrap();
}
