//! A lock file saved or copied while held (issue 8): `state` tells the
//! truth about it and `run` takes it over, telling the command's user that
//! the previous holder died; nothing aborts or blocks.

mod support;

use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::process::Signal;
use support::{Proc, buslock, run};

/// Offset of the lock word in a lock file.
const WORD_OFFSET: u64 = 128;

fn state_json(dir: &Path, name: &str) -> (i32, serde_json::Value) {
    let mut c = buslock(dir);
    c.args(["state", name, "--json"]);
    let out = run(c);
    (out.code(), out.json())
}

/// A copy, in a new directory, of a lock file held by `buslock hold`; the
/// holder is then SIGKILLed.
fn saved_copy() -> (tempfile::TempDir, tempfile::TempDir, u32) {
    let live = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let mut c = buslock(live.path());
    c.args(["hold", "SPI"]);
    let mut p = Proc::spawn(c);
    p.expect_line(|l| l.starts_with("holding lock"));
    let pid = p.pid();
    std::fs::copy(live.path().join("SPI.lock"), saved.path().join("SPI.lock")).unwrap();
    p.signal(Signal::KILL);
    let _ = p.finish();
    (live, saved, pid)
}

fn run_takes_it_over(dir: &Path) {
    let mut c = buslock(dir);
    c.args(["run", "SPI", "--timeout", "30s", "--", "true"]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("died"), "the user is told: {out:?}");
    let (code, s) = state_json(dir, "SPI");
    assert_eq!((code, s["state"].as_str()), (0, Some("free")), "{s}");
    assert_eq!(s["stats"]["owner_died"], 1, "{s}");
}

#[test]
fn saved_lock_file_whose_holder_is_gone_is_free_in_state_and_taken_over_by_run() {
    let (_live, saved, pid) = saved_copy();
    let (code, s) = state_json(saved.path(), "SPI");
    assert_eq!(code, 0, "not held: {s}");
    assert_eq!(s["state"], "holder_died", "{s}");
    assert_eq!(s["holder"]["pid"], pid, "{s}");
    assert_eq!(s["holder"]["alive"], false, "{s}");
    run_takes_it_over(saved.path());
}

#[test]
fn saved_lock_file_naming_a_live_unrelated_thread_is_free_in_state_and_taken_over_by_run() {
    let (_live, saved, _pid) = saved_copy();
    // The dead holder's TID now names an unrelated live process.
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(saved.path().join("SPI.lock"))
        .unwrap();
    file.write_all_at(&stranger.id().to_le_bytes(), WORD_OFFSET)
        .unwrap();
    drop(file);
    let (code, s) = state_json(saved.path(), "SPI");
    assert_eq!(code, 0, "not held: {s}");
    assert_eq!(s["holder"]["alive"], false, "{s}");
    run_takes_it_over(saved.path());
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger is undisturbed"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}

/// The same, seen by a user who cannot read the stranger's memory map
/// (`/proc/PID/maps` of another user's process): the word is taken over
/// once it has been unconfirmed for a second (see RELIABILITY.md). Needs
/// root to run the command as `nobody`; skipped otherwise.
#[test]
fn saved_lock_file_naming_another_users_thread_is_taken_over_by_run() {
    if let Some(why) = support::cannot_run_as_nobody() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED saved_lock_file_naming_another_users_thread_is_taken_over_by_run: {why}"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let (_live, saved, _pid) = saved_copy();
    let lock = saved.path().join("SPI.lock");
    std::fs::set_permissions(saved.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    file.write_all_at(&stranger.id().to_le_bytes(), WORD_OFFSET)
        .unwrap();
    drop(file);
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        support::BIN,
    ])
    .args(["run", "SPI", "--timeout", "30s", "--", "true"])
    .env("BUSLOCK_DIR", saved.path())
    .env("NO_COLOR", "1");
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("died"), "the user is told: {out:?}");
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger is undisturbed"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}
