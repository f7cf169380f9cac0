//! `watch` tells what happens when it happens (issue 9, item 11).

mod support;

use rustix::process::Signal;
use support::{Proc, buslock};

fn holder(dir: &std::path::Path) -> Proc {
    let mut c = buslock(dir);
    c.args(["hold", "SPI"]);
    let mut h = Proc::spawn(c);
    h.expect_line(|l| l.starts_with("holding lock"));
    h
}

#[test]
fn watch_reports_a_holder_killed_holding_the_lock_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path());
    let pid = h.pid();
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--json", "--interval", "0"]);
    let mut w = Proc::spawn(c);
    w.expect_line(|l| l.contains("\"acquire\""));
    h.signal(Signal::KILL);
    let _ = h.finish();
    // No later acquisition happens: the death must show by itself.
    let line = w.expect_line(|l| l.contains("\"died\""));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["pid"], pid, "{v}");
    w.signal(Signal::INT);
    assert_eq!(w.finish().code(), 0);
}

#[test]
fn watch_summary_counts_a_hold_in_progress_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path());
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--json", "--interval", "100ms"]);
    let mut w = Proc::spawn(c);
    let line = w.expect_line(|l| l.contains("\"summary\""));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["holder"]["pid"], h.pid(), "{v}");
    assert!(
        v["held_ms"].as_f64().unwrap() > 0.0,
        "the lock was held throughout the window: {v}"
    );
    w.signal(Signal::INT);
    assert_eq!(w.finish().code(), 0);
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
}

#[test]
fn watch_interval_0_prints_no_summary() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path());
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--json", "--interval", "0", "--for", "50ms"]);
    let out = support::run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("\"acquire\""), "{out:?}");
    assert!(!out.stdout.contains("\"summary\""), "{out:?}");
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
}

#[test]
fn watch_follows_a_replaced_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = holder(dir.path());
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--json", "--interval", "0"]);
    let mut w = Proc::spawn(c);
    w.expect_line(|l| l.contains("\"acquire\"") && l.contains(&old.pid().to_string()));
    // Someone deletes the lock file; the next program creates a new one.
    std::fs::remove_file(dir.path().join("SPI.lock")).unwrap();
    let new = holder(dir.path());
    w.expect_line(|l| l.contains("\"replaced\""));
    let line = w.expect_line(|l| l.contains("\"acquire\""));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["pid"], new.pid(), "{v}");
    w.signal(Signal::INT);
    assert_eq!(w.finish().code(), 0);
    for h in [old, new] {
        h.signal(Signal::INT);
        assert_eq!(h.finish().code(), 0);
    }
}
