//! `doctor`'s advice is safe and able to work (issue 9, item 9).

mod support;

use std::process::Command;

use rustix::process::Signal;
use support::{BIN, Proc, buslock, run};

#[test]
fn doctor_warns_about_a_stopped_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI"]);
    let mut h = Proc::spawn(c);
    h.expect_line(|l| l.starts_with("holding lock"));
    h.signal(Signal::STOP);
    support::eventually("the holder to be stopped", || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", h.pid())).ok()?;
        stat[stat.rfind(')')? + 1..]
            .trim_start()
            .starts_with('T')
            .then_some(())
    });
    let mut c = buslock(dir.path());
    c.arg("doctor");
    let out = run(c);
    h.signal(Signal::CONT);
    assert_eq!(out.code(), 1, "a stopped holder is a problem: {out:?}");
    assert!(out.stdout.contains("is stopped"), "{out:?}");
    assert!(
        out.stdout.contains(&format!("kill -CONT {}", h.pid())),
        "{out:?}"
    );
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
}

#[test]
fn doctor_says_a_file_from_a_vanished_pid_namespace_may_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    // Create the lock file in a PID namespace that ends right after.
    let made = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
        ])
        .arg(BIN)
        .args(["hold", "SPI", "--for", "0s"])
        .env("BUSLOCK_DIR", dir.path())
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            // No user namespaces here (a hardened kernel, a container):
            // nothing to test with. Say so rather than pass silently.
            eprintln!("SKIPPED: cannot create a PID namespace: {other:?}");
            return;
        }
    }
    let mut c = buslock(dir.path());
    c.arg("doctor");
    let out = run(c);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout.contains("PID namespace"), "{out:?}");
    let path = dir.path().join("SPI.lock");
    assert!(
        out.stdout.contains(&format!("rm '{}'", path.display())),
        "doctor must say the file may be removed: {out:?}"
    );
}
