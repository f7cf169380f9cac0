//! The crash torture as part of the test command: worker processes on one
//! lock, a killer that `SIGKILL`s them at random moments, at least 200
//! kills; every check of the harness must pass (see docs/RELIABILITY.md).

mod common;

use std::time::Duration;

use common::harness;

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
    let (out, stdout) = harness(
        "crash",
        &["--workers", "4", "--kills", "300"],
        Duration::from_secs(240),
    );
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
    let (out, stdout) = harness(
        "crash",
        &["--workers", "6", "--kills", "300", "--sliced", "--abba"],
        Duration::from_secs(240),
    );
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
    let (out, stdout) = harness(
        "contend",
        &["--procs", "64", "--count", "500", "--deadline-s", "240"],
        Duration::from_secs(300),
    );
    assert!(out.status.success(), "contention run failed:\n{stdout}");
    assert_eq!(number_after(&stdout, "counter"), 64 * 500);
    assert!(stdout.contains("exclusion violations 0"), "{stdout}");
}
