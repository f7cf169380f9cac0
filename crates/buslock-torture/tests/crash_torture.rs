//! The crash torture as part of the test command: worker processes on one
//! lock, a killer that `SIGKILL`s them at random moments, at least 200
//! kills; every check of the harness must pass (see docs/RELIABILITY.md).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, run_with_watchdog};

fn number_after(text: &str, label: &str) -> u64 {
    let rest = &text[text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        + label.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{text}"))
}

#[test]
fn crash_torture_300_kills_no_violation_no_lost_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_watchdog(
        Command::new(BIN)
            .arg("crash")
            .args(["--workers", "4", "--kills", "300"])
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "crash torture failed:\n{stdout}");
    assert_eq!(number_after(&stdout, "kills:"), 300);
    // Only meaningful if kills landed inside the lock, not just on waiters.
    let inside = number_after(&stdout, "kills: 300 (");
    assert!(inside > 0, "no kill landed inside the lock:\n{stdout}");
    assert!(stdout.contains("result: PASS"), "{stdout}");
}

/// As above, with half the workers waiting in interruptible slices (as
/// Python and the command-line tool wait) and ABBA pairs on a second lock
/// mixed in: the kernel refuses each cycle to one side (`Error::Deadlock`),
/// which lets go and goes on; no worker aborts.
#[test]
fn crash_torture_with_sliced_waiters_and_abba_pairs_no_violation_no_lost_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_watchdog(
        Command::new(BIN)
            .arg("crash")
            .args(["--workers", "6", "--kills", "300", "--sliced", "--abba"])
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "crash torture failed:\n{stdout}");
    assert_eq!(number_after(&stdout, "kills:"), 300);
    assert!(number_after(&stdout, "kills: 300 (") > 0, "{stdout}");
    assert!(stdout.contains("half sliced"), "{stdout}");
    assert!(
        number_after(&stdout, "waits refused as deadlocks:") > 0,
        "no ABBA cycle was ever closed:\n{stdout}"
    );
    assert!(stdout.contains("worker lock errors: 0"), "{stdout}");
    assert!(stdout.contains("result: PASS"), "{stdout}");
}

#[test]
fn contention_64_processes_no_violation_no_starvation() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_watchdog(
        Command::new(BIN)
            .arg("contend")
            .args(["--procs", "64", "--count", "500", "--deadline-s", "240"])
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "contention run failed:\n{stdout}");
    assert_eq!(number_after(&stdout, "counter"), 64 * 500);
    assert!(stdout.contains("exclusion violations 0"), "{stdout}");
}
