//! The readers-writer lock's crash torture as part of the test command:
//! readers and writers in worker processes, `SIGKILL`ed at random points
//! (inspected while stopped); every check of the harness must pass.

mod common;

use std::time::Duration;

use common::harness;

/// The two numbers of a `label: A found, B ...` line.
fn found_and_counted(text: &str, label: &str) -> (u64, u64) {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn rw_torture_300_kills_no_violation_every_death_told_or_freed() {
    let (out, stdout) = harness(
        "rwcrash",
        &["--workers", "6", "--kills", "300", "--gap-us", "5000"],
        Duration::from_secs(240),
    );
    assert!(out.status.success(), "rw torture failed:\n{stdout}");
    assert!(stdout.contains("violations: 0"), "{stdout}");
    assert!(stdout.contains("stuck: 0"), "{stdout}");
    let (found, told) = found_and_counted(&stdout, "writer deaths:");
    assert_eq!(found, told, "{stdout}");
    let (found_r, freed) = found_and_counted(&stdout, "reader deaths:");
    assert_eq!(found_r, freed, "{stdout}");
    // Only meaningful if kills landed inside the lock, of both kinds.
    assert!(found > 0 && found_r > 0, "no kill landed inside:\n{stdout}");
    assert!(stdout.contains(", 0 readers left"), "{stdout}");
}
