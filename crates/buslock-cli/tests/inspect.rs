//! `list`, `state`, `stats`, `watch` and `doctor`: their JSON shapes and
//! what they report about broken lock directories.

mod support;

use std::path::Path;

use ::buslock::raw::layout::FILE_SIZE;
use rustix::process::Signal;
use serde_json::Value;
use support::{Proc, buslock, eventually, run};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn use_lock(dir: &Path, name: &str) {
    let mut c = buslock(dir);
    c.args(["run", name, "--", "true"]);
    assert_eq!(run(c).code(), 0);
}

const HOLDER_KEYS: [&str; 9] = [
    "alive",
    "held_for_ms",
    "pid",
    "process_state",
    "program",
    "since",
    "tid",
    "took_over_from_dead",
    "torn",
];

const STATS_KEYS: [&str; 15] = [
    "acquisitions",
    "contended",
    "contention_ratio",
    "hold_histogram",
    "hold_p50_ns",
    "hold_p99_ns",
    "longest_hold",
    "owner_died",
    "since",
    "timeouts",
    "total_hold_ns",
    "total_wait_ns",
    "wait_histogram",
    "wait_p50_ns",
    "wait_p99_ns",
];

#[test]
fn json_outputs_parse_with_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    use_lock(dir.path(), "SPI");
    use_lock(dir.path(), "I2C-1");
    let mut h = {
        let mut c = buslock(dir.path());
        c.args(["hold", "SPI"]);
        Proc::spawn(c)
    };
    h.expect_line(|l| l.starts_with("holding"));

    let mut c = buslock(dir.path());
    c.args(["state", "SPI", "--json"]);
    let s = run(c).json();
    assert_eq!(
        keys(&s),
        ["holder", "name", "path", "state", "stats", "waiters"]
    );
    assert_eq!(keys(&s["holder"]), HOLDER_KEYS);
    assert_eq!(keys(&s["stats"]), STATS_KEYS);
    let bucket = &s["stats"]["hold_histogram"][0];
    assert_eq!(keys(bucket), ["count", "lower_ns", "upper_ns"]);
    assert_eq!(
        keys(&s["stats"]["longest_hold"]),
        ["at", "duration_ns", "pid", "program", "tid"]
    );

    let mut c = buslock(dir.path());
    c.args(["list", "--json"]);
    let l = run(c).json();
    assert_eq!(keys(&l), ["dir", "dir_source", "locks", "problems"]);
    assert_eq!(l["dir_source"], "from BUSLOCK_DIR");
    let locks = l["locks"].as_array().unwrap();
    let names: Vec<&str> = locks.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["I2C-1", "SPI"]);
    assert_eq!(
        keys(&locks[1]),
        [
            "acquisitions",
            "contended",
            "contention_ratio",
            "holder",
            "name",
            "owner_died",
            "path",
            "state",
            "waiters"
        ]
    );
    assert_eq!(locks[1]["state"], "held");
    assert_eq!(locks[1]["holder"]["pid"], h.pid());
    assert_eq!(locks[0]["state"], "free");
    assert_eq!(locks[0]["holder"], Value::Null);

    let mut c = buslock(dir.path());
    c.args(["stats", "I2C-1", "--json"]);
    let st = run(c).json();
    assert_eq!(keys(&st), ["name", "reset", "stats"]);
    assert_eq!(st["stats"]["acquisitions"], 1);

    let mut c = buslock(dir.path());
    c.args(["doctor", "--json"]);
    let d = run(c).json();
    assert_eq!(keys(&d), ["checks", "dir", "dir_source", "problems"]);
    assert_eq!(keys(&d["checks"][0]), ["level", "message", "subject"]);

    // watch --json: the current holder's acquire line, then its release.
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--json", "--count", "1", "--interval", "0s"]);
    let mut w = Proc::spawn(c);
    let acquire: Value = serde_json::from_str(&w.expect_line(|_| true)).unwrap();
    assert_eq!(
        keys(&acquire),
        [
            "pid",
            "program",
            "tid",
            "time",
            "took_over_from_dead",
            "type"
        ]
    );
    assert_eq!(acquire["type"], "acquire");
    assert_eq!(acquire["pid"], h.pid());
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
    let out = w.finish();
    assert_eq!(out.code(), 0, "{out:?}");
    let release: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        keys(&release),
        [
            "acquired",
            "held_ns",
            "pid",
            "previous_owner_died",
            "program",
            "seq",
            "tid",
            "time",
            "type",
            "waited_ns"
        ]
    );
    assert_eq!(release["type"], "release");
    assert_eq!(release["program"], "buslock");
}

#[test]
fn watch_prints_one_line_per_hold() {
    let dir = tempfile::tempdir().unwrap();
    use_lock(dir.path(), "SPI");
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--count", "3"]);
    let mut w = Proc::spawn(c);
    w.expect_line(|l| l.starts_with("TIME"));
    for _ in 0..3 {
        use_lock(dir.path(), "SPI");
    }
    let out = w.finish();
    assert_eq!(out.code(), 0, "{out:?}");
    let releases = out
        .stdout
        .lines()
        .filter(|l| l.contains(" release "))
        .count();
    assert_eq!(releases, 3, "{}", out.stdout);
}

#[test]
fn stats_reset_zeroes_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    use_lock(dir.path(), "SPI");
    use_lock(dir.path(), "SPI");
    let mut c = buslock(dir.path());
    c.args(["stats", "SPI", "--reset"]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    // Read under the lock just before zeroing: two uses and its own.
    assert!(out.stdout.contains("3 acquisitions"), "{out:?}");
    let mut c = buslock(dir.path());
    c.args(["stats", "SPI", "--json"]);
    let s = run(c).json();
    // The reset's own hold is the first one of the new period.
    assert_eq!(s["stats"]["acquisitions"], 1, "{s}");
    assert_eq!(hold_count(&s), 1, "{s}");
}

fn hold_count(stats_doc: &serde_json::Value) -> u64 {
    stats_doc["stats"]["hold_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn stats_reset_prints_the_numbers_it_reset_not_older_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI"]);
    let mut h = Proc::spawn(c);
    h.expect_line(|l| l.starts_with("holding lock"));
    // A waiter queued first, then the reset behind it.
    let w = queue(dir.path(), &["hold", "SPI", "--for", "0s"]);
    let r = queue(
        dir.path(),
        &["stats", "SPI", "--reset", "--json", "--timeout", "20s"],
    );
    h.signal(Signal::TERM);
    assert_eq!(h.finish().code(), 0);
    assert_eq!(w.finish().code(), 0);
    let out = r.finish();
    assert_eq!(out.code(), 0, "{out:?}");
    let printed = out.json();
    let mut c = buslock(dir.path());
    c.args(["stats", "SPI", "--json"]);
    let after = run(c).json();
    // Interruptible waits keep FIFO only to a slice, so the waiter may come
    // before or after the reset. Either way nothing is lost and nothing is
    // counted twice but the reset's own acquisition, which ends the old
    // period and starts the new one: holder + waiter + reset = 3, plus 1.
    let printed_n = printed["stats"]["acquisitions"].as_u64().unwrap();
    let after_n = after["stats"]["acquisitions"].as_u64().unwrap();
    assert_eq!(printed_n + after_n, 4, "printed {printed}\nafter {after}");
    assert!(
        printed_n >= 2,
        "the reset saw at least the holder and itself: {printed}"
    );
    assert_eq!(
        hold_count(&after),
        after_n,
        "one hold per acquisition: {after}"
    );
}

/// Start `args` and wait until it waits for `SPI`.
fn queue(dir: &Path, args: &[&str]) -> Proc {
    let mut c = buslock(dir);
    c.args(args);
    let p = Proc::spawn(c);
    let pid = p.pid();
    eventually("the waiter to be listed", || {
        let mut c = buslock(dir);
        c.args(["state", "SPI", "--json"]);
        run(c).json()["waiters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["pid"] == pid)
            .then_some(())
    });
    p
}

#[test]
fn doctor_and_list_report_a_corrupt_file_and_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    use_lock(dir.path(), "SPI");
    std::fs::write(dir.path().join("BROKEN.lock"), vec![0xAB; FILE_SIZE]).unwrap();
    std::fs::write(dir.path().join("SHORT.lock"), b"not a lock").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("LINK.lock")).unwrap();

    let mut c = buslock(dir.path());
    c.arg("doctor");
    let out = run(c);
    assert_eq!(out.code(), 1, "problems found: {out:?}");
    let line = |file: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(&format!("{file}:")) && !l.starts_with("ok"))
            .unwrap_or_else(|| panic!("no finding for {file}: {}", out.stdout))
            .to_owned()
    };
    assert!(line("BROKEN.lock").starts_with("error"), "{}", out.stdout);
    assert!(
        line("SHORT.lock").contains(&FILE_SIZE.to_string()),
        "{}",
        out.stdout
    );
    let link = line("LINK.lock");
    assert!(
        link.starts_with("error") && link.contains("symbolic link"),
        "{link}"
    );
    assert!(link.contains("rm "), "says how to fix: {link}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("SPI.lock: valid")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("3 problem(s) found"), "{}", out.stdout);

    let mut c = buslock(dir.path());
    c.args(["list", "--json"]);
    let l = run(c).json();
    assert_eq!(l["locks"].as_array().unwrap().len(), 1);
    let problems: Vec<&str> = l["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(problems, ["BROKEN.lock", "LINK.lock", "SHORT.lock"]);
    // Nothing was changed or created by looking.
    assert_eq!(
        std::fs::read(dir.path().join("BROKEN.lock")).unwrap(),
        vec![0xAB; FILE_SIZE]
    );
}

#[test]
fn doctor_reports_a_dead_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI"]);
    let mut h = Proc::spawn(c);
    h.expect_line(|l| l.starts_with("holding"));
    h.signal(Signal::KILL);
    let _ = h.finish();
    let mut c = buslock(dir.path());
    c.arg("doctor");
    let out = run(c);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("warn") && l.contains("no longer exists")),
        "{}",
        out.stdout
    );
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The defect: in a process that had never taken a lock (every `state`,
/// `list` and `watch`), a holder's `since` and the times of `watch`'s
/// lines were the monotonic clock shown as wall-clock time (1970, a few
/// hours after the epoch): the wall clock's offset was measured only when
/// a lock was opened to be taken.
#[test]
fn times_are_wall_clock_times_in_a_process_that_never_took_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let before = unix_now();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI"]);
    let mut h = Proc::spawn(c);
    h.expect_line(|l| l.starts_with("holding lock"));
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--json", "--interval", "0", "--count", "1"]);
    let mut w = Proc::spawn(c);
    // Watching (it saw the hold) before the hold ends, however slow the
    // machine: the release is then one it waits for.
    w.expect_line(|l| l.contains("\"acquire\""));
    let mut c = buslock(dir.path());
    c.args(["state", "SPI", "--json"]);
    let state = run(c).json();
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
    let out = w.finish();
    let after = unix_now();
    let in_run = |what: &str, t: &Value| {
        let t = t.as_f64().unwrap_or_else(|| panic!("{what}: {t}"));
        assert!(
            (before..=after).contains(&t),
            "{what} {t} is not within the test's run [{before}, {after}]"
        );
    };
    in_run("state's holder since", &state["holder"]["since"]);
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        in_run(&format!("watch's {} line", v["type"]), &v["time"]);
        if v["type"] == "release" {
            in_run("the release's acquired", &v["acquired"]);
        }
    }
    assert!(out.stdout.contains("\"release\""), "{out:?}");
    // One hold, one acquire line (the wall-clock time of a hold differs by
    // nanoseconds from one read to the next: not a new hold).
    assert_eq!(out.stdout.matches("\"acquire\"").count(), 1, "{out:?}");
}
