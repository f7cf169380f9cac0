//! Read-only commands need read access only: a user who may read a lock
//! file but not write it still sees who holds the bus (issue 9, item 10).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rustix::process::Signal;
use support::{BIN, Proc, buslock, cannot_run_as_nobody, run};

/// `buslock ARGS` as a user who can read but not write `SPI.lock`: as
/// root, drop to `nobody` with setpriv (no user is created); otherwise the
/// file's mode (0444) already denies writing to its owner.
fn reader(dir: &Path, args: &[&str]) -> Command {
    let mut c = if rustix::process::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    c.args(args).env("BUSLOCK_DIR", dir).env("NO_COLOR", "1");
    c
}

#[test]
fn state_list_watch_and_doctor_work_with_read_access_only() {
    if let Some(why) = cannot_run_as_nobody().filter(|_| rustix::process::geteuid().is_root()) {
        // Past the harness's output capture, so the skip shows in every run.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED state_list_watch_and_doctor_work_with_read_access_only: \
             {why}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI"]);
    let mut h = Proc::spawn(c);
    h.expect_line(|l| l.starts_with("holding lock"));
    let file = dir.path().join("SPI.lock");
    let mode = if rustix::process::geteuid().is_root() {
        0o644
    } else {
        0o444
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();

    let out = run(reader(dir.path(), &["state", "SPI", "--json"]));
    assert_eq!(out.code(), 1, "held: {out:?}");
    assert_eq!(out.json()["holder"]["pid"], h.pid());
    let out = run(reader(dir.path(), &["list", "--json"]));
    assert_eq!(out.code(), 0, "{out:?}");
    let l = out.json();
    assert_eq!(l["locks"][0]["state"], "held", "{l}");
    assert_eq!(l["problems"].as_array().unwrap().len(), 0, "{l}");
    let out = run(reader(
        dir.path(),
        &["watch", "SPI", "--json", "--for", "50ms", "--interval", "0"],
    ));
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("\"acquire\""), "{out:?}");
    let out = run(reader(dir.path(), &["stats", "SPI"]));
    assert_eq!(out.code(), 0, "{out:?}");
    let out = run(reader(dir.path(), &["doctor"]));
    assert!(out.stdout.contains("valid lock file"), "{out:?}");
    // Taking the lock needs write access: a clear error, not a crash.
    let out = run(reader(dir.path(), &["hold", "SPI", "--timeout", "10ms"]));
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
}
