//! `hold --read`, `run --read`, `list` and `state` with readers-writer
//! locks, with real processes in a temporary lock directory.

mod support;

use std::path::Path;

use rustix::process::Signal;
use support::{Proc, buslock, eventually, run};

fn reader(dir: &Path, name: &str) -> Proc {
    let mut c = buslock(dir);
    c.args(["hold", name, "--read"]);
    let mut p = Proc::spawn(c);
    p.expect_line(|l| l.starts_with("reading lock"));
    p
}

/// Start `buslock hold table --read`, SIGKILL it while it reads, then
/// write (a writer frees the dead reader's share); the reader's pid.
fn kill_a_reader_then_write(dir: &Path, rw: &buslock::RwLock) -> u32 {
    let r = reader(dir, "table");
    let pid = r.pid();
    r.signal(Signal::KILL);
    let _ = r.finish();
    drop(
        rw.write_timeout(std::time::Duration::from_secs(60))
            .unwrap()
            .expect("write after the reader died"),
    );
    pid
}

/// Readers-writer lock `table` in `dir`, through the library.
fn open_table(dir: &Path) -> buslock::RwLock {
    buslock::RwLock::builder("table").dir(dir).open().unwrap()
}

fn state_json(dir: &Path, name: &str) -> (i32, serde_json::Value) {
    let mut c = buslock(dir);
    c.args(["state", name, "--json"]);
    let out = run(c);
    (out.code(), out.json())
}

#[test]
fn two_readers_hold_it_at_once_and_state_lists_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = reader(dir.path(), "table");
    let b = reader(dir.path(), "table");
    let (code, s) = state_json(dir.path(), "table");
    assert_eq!(code, 1, "held by readers: {s}");
    assert_eq!(s["kind"], "rwlock");
    let pids: Vec<u64> = s["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&u64::from(a.pid())) && pids.contains(&u64::from(b.pid())));
    let mut c = buslock(dir.path());
    c.args(["list", "--json"]);
    let list = run(c).json();
    assert_eq!(list["locks"][0]["kind"], "rwlock");
    assert_eq!(list["locks"][0]["readers"], 2);
    let mut c = buslock(dir.path());
    c.arg("list");
    let out = run(c);
    assert!(out.stdout.contains("table (rwlock)"), "{}", out.stdout);
    assert!(out.stdout.contains("read by 2"), "{}", out.stdout);
    let mut c = buslock(dir.path());
    c.arg("doctor");
    let out = run(c);
    assert!(
        out.stdout.contains("table.lock: valid lock file (rwlock)")
            && out.stdout.contains("read by 2"),
        "{}",
        out.stdout
    );
    let mut c = buslock(dir.path());
    c.args(["stats", "table"]);
    let out = run(c);
    assert!(out.stdout.contains("reads    2 reads"), "{}", out.stdout);
    a.signal(Signal::TERM);
    b.signal(Signal::TERM);
    assert_eq!(a.finish().code(), 0);
    assert_eq!(b.finish().code(), 0);
    assert_eq!(state_json(dir.path(), "table").0, 0);
}

#[test]
fn run_read_shares_and_a_killed_reader_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let r = reader(dir.path(), "table");
    // A second reader runs at once while the first reads.
    let mut c = buslock(dir.path());
    c.args(["run", "table", "--read", "--timeout", "10s", "--", "true"]);
    assert_eq!(run(c).code(), 0);
    // A writer (the library) cannot get in until the reader is gone.
    let rw = open_table(dir.path());
    assert!(rw.try_write().unwrap().is_none());
    r.signal(Signal::KILL);
    let _ = r.finish();
    let g = eventually("the killed reader freed", || {
        rw.write_timeout(std::time::Duration::from_millis(100))
            .unwrap()
    });
    drop(g);
    assert_eq!(rw.stats().reader_deaths, 1);
}

#[test]
fn a_mutex_name_is_not_read_and_a_rwlock_name_is_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let _rw = open_table(dir.path());
    let mut c = buslock(dir.path());
    c.args(["hold", "table", "--for", "0s"]);
    let out = run(c);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr.contains("holds a rwlock, not a mutex")
            && out
                .stderr
                .contains("add --read to share it or --write to hold it alone"),
        "{}",
        out.stderr
    );
    let _m = buslock::Mutex::builder("SPI")
        .dir(dir.path())
        .open()
        .unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI", "--read", "--for", "0s"]);
    let out = run(c);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr.contains("holds a mutex, not a rwlock")
            && out.stderr.contains("leave out --read and --write"),
        "{}",
        out.stderr
    );
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--write", "--", "true"]);
    assert_eq!(run(c).code(), 3, "the documented code of a lock error");
}

#[test]
fn watch_shows_reads_writes_and_a_killed_reader_of_a_rwlock() {
    let dir = tempfile::tempdir().unwrap();
    // A label with a control character: printed escaped.
    let rw = buslock::RwLock::builder("table")
        .dir(dir.path())
        .label("lib\u{1b}[31m")
        .open()
        .unwrap();
    let watch = |json: bool| {
        let mut c = buslock(dir.path());
        if json {
            // Its first summary says it has read the ring's head.
            c.args(["watch", "table", "--interval", "20ms", "--json"]);
        } else {
            c.args(["watch", "table", "--interval", "0"]);
        }
        let mut w = Proc::spawn(c);
        w.expect_line(|l| l.contains(if json { "\"summary\"" } else { "PROGRAM" }));
        w
    };
    let mut json = watch(true);
    let mut text = watch(false);
    drop(rw.read().unwrap());
    drop(rw.write().unwrap());
    let pid = kill_a_reader_then_write(dir.path(), &rw);

    let line = |w: &mut Proc, what: &str| {
        let l = w.expect_line(|l| l.contains(what));
        serde_json::from_str::<serde_json::Value>(&l).unwrap()
    };
    let v = line(&mut json, "\"release\"");
    assert_eq!(v["kind"], "read", "{v}");
    assert_eq!(v["program"], "lib\u{1b}[31m", "{v}");
    let v = line(&mut json, "\"release\"");
    assert_eq!(v["kind"], "write", "{v}");
    let v = line(&mut json, "\"death\"");
    assert_eq!(
        (v["kind"].as_str(), v["pid"].as_u64()),
        (Some("read"), Some(u64::from(pid))),
        "{v}"
    );
    let v = line(&mut json, "\"release\"");
    assert_eq!(v["kind"], "write", "{v}");

    let l = text.expect_line(|l| l.contains(" read "));
    assert!(
        l.contains("lib\\e[31m") && !l.contains('\u{1b}'),
        "escaped: {l:?}"
    );
    text.expect_line(|l| l.contains(" write "));
    let l = text.expect_line(|l| l.contains("died"));
    assert!(
        l.contains(&pid.to_string()) && l.contains("reader died"),
        "{l}"
    );
    for w in [json, text] {
        w.signal(Signal::INT);
        assert_eq!(w.finish().code(), 0);
    }
}

#[test]
fn stats_json_shows_the_read_side_of_a_rwlock() {
    let dir = tempfile::tempdir().unwrap();
    let open = || open_table(dir.path());
    let rw = open();
    drop(rw.read().unwrap());
    // A read that waits for a writer, and one that gives up.
    let w = rw.write().unwrap();
    std::thread::scope(|s| {
        let waiting = s.spawn(|| drop(open().read().unwrap()));
        eventually("the reader queued", || {
            (rw.readers_waiting().len() == 1).then_some(())
        });
        let gave_up = s
            .spawn(|| {
                open()
                    .read_timeout(std::time::Duration::from_millis(1))
                    .unwrap()
                    .is_none()
            })
            .join()
            .unwrap();
        assert!(gave_up);
        drop(w);
        waiting.join().unwrap();
    });
    // A reader (the command) killed while it reads, freed by a writer.
    kill_a_reader_then_write(dir.path(), &rw);

    let mut c = buslock(dir.path());
    c.args(["stats", "table", "--json"]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    let v = out.json();
    let reads = &v["reads"];
    assert_eq!(reads["acquisitions"], 3, "{v}");
    assert_eq!(reads["contended"], 1, "{v}");
    assert_eq!(reads["timeouts"], 1, "{v}");
    assert_eq!(reads["reader_deaths"], 1, "{v}");
    assert_eq!(reads["writer_deaths"], 0, "{v}");
    assert!(reads["total_wait_ns"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["stats"]["acquisitions"], 2, "the writes: {v}");

    // A mutex's document is unchanged: no "reads".
    drop(
        buslock::Mutex::builder("SPI")
            .dir(dir.path())
            .open()
            .unwrap(),
    );
    let mut c = buslock(dir.path());
    c.args(["stats", "SPI", "--json"]);
    let v = run(c).json();
    assert!(v.get("reads").is_none(), "{v}");
    assert!(v.get("stats").is_some(), "{v}");
}

/// The defect: `stats --reset` of a readers-writer lock failed with "is a
/// rwlock, not a mutex". It resets both sides under a write hold and
/// prints what it reset.
#[test]
fn stats_reset_of_a_rwlock_zeroes_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let rw = open_table(dir.path());
    drop(rw.read().unwrap());
    drop(rw.read().unwrap());
    kill_a_reader_then_write(dir.path(), &rw);
    let mut c = buslock(dir.path());
    c.args(["stats", "table", "--reset", "--json"]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["reset"], true, "{v}");
    assert_eq!(v["reads"]["acquisitions"], 3, "what it reset: {v}");
    assert_eq!(v["reads"]["reader_deaths"], 1, "{v}");
    // The writes: the one that freed the dead reader, and the reset's own.
    assert_eq!(v["stats"]["acquisitions"], 2, "{v}");
    let after = rw.stats();
    assert_eq!(after.reads, 0, "{after:?}");
    assert_eq!(after.reader_deaths, 0, "{after:?}");
    // The reset's own write is the first of the new period.
    assert_eq!(after.writes.acquisitions, 1, "{after:?}");
    // A reader holding it: the reset waits, and a timeout says why.
    let r = reader(dir.path(), "table");
    let mut c = buslock(dir.path());
    c.args(["stats", "table", "--reset", "--timeout", "100ms"]);
    let out = run(c);
    assert_eq!(out.code(), 4, "the documented timeout code: {out:?}");
    assert!(out.stderr.contains("it is read by 1 reader"), "{out:?}");
    r.signal(Signal::TERM);
    assert_eq!(r.finish().code(), 0);
}

/// The defect: an updater script could not take a readers-writer lock
/// alone from the shell (`run NAME` is the mutex's, and a rwlock's name
/// was refused). `run --write` / `hold --write` wait for the readers to
/// leave, keep readers out while they hold it, and a writer killed while
/// it holds it is told to the next holder.
#[test]
fn run_write_waits_for_readers_and_holds_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let r = reader(dir.path(), "table");
    let mut c = buslock(dir.path());
    c.args([
        "run",
        "table",
        "--write",
        "--timeout",
        "100ms",
        "--",
        "true",
    ]);
    let out = run(c);
    assert_eq!(out.code(), 4, "a reader holds it: {out:?}");
    assert!(out.stderr.contains("it is read by 1 reader"), "{out:?}");
    r.signal(Signal::TERM);
    assert_eq!(r.finish().code(), 0);

    // While `run --write` runs its command, no reader gets in.
    let mut c = buslock(dir.path());
    c.args([
        "run",
        "table",
        "--write",
        "--",
        "sh",
        "-c",
        "echo in; exec sleep 60",
    ]);
    let mut w = Proc::spawn(c);
    w.expect_line(|l| l == "in");
    let rw = open_table(dir.path());
    assert!(rw.try_read().unwrap().is_none(), "read while written");
    let writer = rw.writer().unwrap().expect("a writer");
    assert_eq!(writer.program, "sh");
    // Killed while writing: the next holder (a reader) is told.
    w.signal(Signal::KILL);
    let _ = w.finish();
    let mut c = buslock(dir.path());
    c.args(["hold", "table", "--read", "--for", "0s", "--timeout", "30s"]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("died"), "the death is told: {out:?}");

    let mut c = buslock(dir.path());
    c.args(["hold", "table", "--write", "--for", "0s"]);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.starts_with("writing lock 'table'"), "{out:?}");
}
