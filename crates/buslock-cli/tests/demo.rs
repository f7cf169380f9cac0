//! `buslock demo`: worker processes share the simulated bus with no
//! overlapping transaction, and one killed while holding it is recovered.

mod support;

use support::{buslock, run};

#[test]
fn demo_finishes_with_zero_overlaps_and_a_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.arg("--dir").arg(dir.path()).args([
        "demo",
        "--duration",
        "1500ms",
        "--hold",
        "8ms",
        "--json",
    ]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    let d = out.json();
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["bus_overlaps"], 0);
    let workers = d["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 3);
    let names: Vec<&str> = workers
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["motor", "battery", "logger"]);
    let mut transactions = 0;
    let mut recovered = 0;
    for w in workers {
        assert_eq!(w["overlaps"], 0, "{w}");
        assert!(w["transactions"].as_u64().unwrap() > 0, "{w}");
        transactions += w["transactions"].as_u64().unwrap();
        recovered += w["recovered_deaths"].as_u64().unwrap();
    }
    assert_eq!(recovered, 1, "{d}");
    assert_eq!(d["owner_died"], 1, "{d}");
    assert_eq!(d["bus_transactions"].as_u64().unwrap(), transactions);
    assert_eq!(d["kill"]["worker"], "motor");
    assert_eq!(workers[0]["pids"].as_array().unwrap().len(), 2, "restarted");
    assert!(d["kill"]["recovered_by"].is_string(), "{d}");
}

#[test]
fn demo_human_output_has_the_table_and_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.arg("--dir").arg(dir.path()).args([
        "demo",
        "--workers",
        "2",
        "--duration",
        "1s",
        "--hold",
        "5ms",
        "--no-kill",
    ]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    for needle in [
        "WORKER",
        "WAIT p99",
        "OVERLAPS",
        "who held the bus",
        "motor ",
        "battery ",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    assert!(
        out.stdout.contains("OK: no overlapping transactions"),
        "{}",
        out.stdout
    );
}

#[test]
fn demo_with_one_worker_recovers_through_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.arg("--dir").arg(dir.path()).args([
        "demo",
        "--workers",
        "1",
        "--duration",
        "1500ms",
        "--hold",
        "8ms",
        "--json",
    ]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    let d = out.json();
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["owner_died"], 1, "{d}");
    let workers = d["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["recovered_deaths"], 1, "{d}");
    assert_eq!(workers[0]["pids"].as_array().unwrap().len(), 2, "restarted");
}
