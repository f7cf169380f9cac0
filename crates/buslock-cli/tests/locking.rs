//! `run`, `hold` and `state` against real processes in a temporary lock
//! directory: exclusion, holder identity, deaths, timeouts, signals.

mod support;

use std::path::Path;

use rustix::process::Signal;
use support::{Proc, buslock, eventually, run};

fn state_json(dir: &Path, name: &str) -> (i32, serde_json::Value) {
    let mut c = buslock(dir);
    c.args(["state", name, "--json"]);
    let out = run(c);
    (out.code(), out.json())
}

/// Start `buslock hold NAME` and wait until it says it holds the lock.
fn holder(dir: &Path, name: &str) -> Proc {
    let mut c = buslock(dir);
    c.args(["hold", name]);
    let mut p = Proc::spawn(c);
    p.expect_line(|l| l.starts_with("holding lock"));
    p
}

#[test]
fn run_serialises_concurrent_commands() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let busy = dir.path().join("busy");
    // Each critical section checks that nobody else is inside (the `busy`
    // marker), then logs begin/end around a pause.
    let script = format!(
        "if [ -e {busy} ]; then echo OVERLAP >> {log}; fi; touch {busy}; \
         echo \"begin $$\" >> {log}; sleep 0.03; echo \"end $$\" >> {log}; rm {busy}",
        busy = busy.display(),
        log = log.display()
    );
    let procs: Vec<Proc> = (0..6)
        .map(|_| {
            let mut c = buslock(dir.path());
            c.args(["run", "BUS", "--", "sh", "-c", &script]);
            Proc::spawn(c)
        })
        .collect();
    for p in procs {
        let out = p.finish();
        assert_eq!(out.code(), 0, "{out:?}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12, "{text}");
    for pair in lines.chunks(2) {
        let b = pair[0].strip_prefix("begin ").expect(&text);
        let e = pair[1].strip_prefix("end ").expect(&text);
        assert_eq!(b, e, "interleaved critical sections:\n{text}");
    }
    assert!(!text.contains("OVERLAP"), "{text}");
    let (_, s) = state_json(dir.path(), "BUS");
    assert_eq!(s["stats"]["acquisitions"], 6);
}

#[test]
fn run_exits_with_the_command_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["run", "BUS", "--", "sh", "-c", "exit 7"]);
    assert_eq!(run(c).code(), 7);
    let mut c = buslock(dir.path());
    c.args(["run", "BUS", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(run(c).code(), 128 + 15);
    let mut c = buslock(dir.path());
    c.args(["run", "BUS", "--", "/nonexistent/program"]);
    let out = run(c);
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(out.stderr.starts_with("buslock: cannot run"), "{out:?}");
    // Without `--` too, like flock(1); the command sees the lock's name.
    let mut c = buslock(dir.path());
    c.args([
        "run",
        "BUS",
        "sh",
        "-c",
        "echo $BUSLOCK_LOCK $BUSLOCK_PREVIOUS_OWNER_DIED",
    ]);
    let out = run(c);
    assert_eq!(out.stdout, "BUS 0\n", "{out:?}");
    let (code, s) = state_json(dir.path(), "BUS");
    assert_eq!((code, s["state"].as_str()), (0, Some("free")));
}

#[test]
fn hold_then_state_from_another_process_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path(), "SPI");
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!(code, 1, "state exits 1 while held: {s}");
    assert_eq!(s["state"], "held");
    assert_eq!(s["holder"]["pid"], h.pid());
    assert_eq!(s["holder"]["tid"], h.pid());
    assert_eq!(s["holder"]["program"], "buslock");
    assert_eq!(s["holder"]["alive"], true);
    let mut c = buslock(dir.path());
    c.args(["state", "SPI"]);
    let human = run(c);
    assert_eq!(human.code(), 1);
    assert!(
        human.stdout.contains(&format!("pid {}", h.pid())),
        "{human:?}"
    );
    assert!(human.stdout.contains("program buslock"), "{human:?}");
    h.signal(Signal::INT);
    let out = h.finish();
    assert_eq!(out.code(), 0, "Ctrl-C ends a hold normally: {out:?}");
    assert!(out.stdout.contains("released lock 'SPI'"), "{out:?}");
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!((code, s["state"].as_str()), (0, Some("free")));
}

#[test]
fn state_after_the_holder_is_sigkilled_shows_the_death() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path(), "SPI");
    let pid = h.pid();
    h.signal(Signal::KILL);
    let out = h.finish();
    assert_eq!(out.status.code(), None, "killed by SIGKILL");
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!(code, 0, "a dead holder's lock is free: {s}");
    assert_eq!(s["state"], "holder_died");
    assert_eq!(s["holder"]["pid"], pid);
    assert_eq!(s["holder"]["alive"], false);
    assert_eq!(s["holder"]["process_state"], "gone");
    let mut c = buslock(dir.path());
    c.args(["state", "SPI"]);
    let human = run(c);
    assert!(human.stdout.contains("died"), "{human:?}");
    // The next holder is told.
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI", "--for", "0s"]);
    let next = run(c);
    assert_eq!(next.code(), 0, "{next:?}");
    assert!(next.stdout.contains("died while holding it"), "{next:?}");
    let (_, s) = state_json(dir.path(), "SPI");
    assert_eq!(s["stats"]["owner_died"], 1);
    assert_eq!(s["state"], "free");
}

#[test]
fn run_timeout_while_held_exits_4_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path(), "SPI");
    let marker = dir.path().join("ran");
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--timeout", "200ms", "--", "touch"])
        .arg(&marker);
    let out = run(c);
    assert_eq!(out.code(), 4, "{out:?}");
    assert!(
        out.stderr.starts_with("buslock: timed out after 200ms"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(&format!("holder pid {} tid ", h.pid()))
            && out.stderr.contains(" (buslock), held for "),
        "{out:?}"
    );
    assert!(
        !marker.exists(),
        "the command must not run without the lock"
    );
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI", "--timeout", "100ms"]);
    assert_eq!(run(c).code(), 4);
    let (_, s) = state_json(dir.path(), "SPI");
    assert_eq!(s["stats"]["timeouts"], 2);
}

/// Start a waiter for `SPI` (held by `h`) and wait until the lock lists it.
fn waiting(dir: &Path, args: &[&str]) -> Proc {
    let mut c = buslock(dir);
    c.args(args);
    let p = Proc::spawn(c);
    let pid = p.pid();
    eventually("the waiter to be listed", || {
        let (_, s) = state_json(dir, "SPI");
        s["waiters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["pid"] == pid)
            .then_some(())
    });
    p
}

#[test]
fn sigint_to_a_waiting_hold_or_run_exits_130_holding_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = holder(dir.path(), "SPI");
    let marker = dir.path().join("ran");
    let marker_s = marker.display().to_string();
    for args in [
        vec!["hold", "SPI"],
        vec!["run", "SPI", "--", "touch", &marker_s],
    ] {
        let w = waiting(dir.path(), &args);
        w.signal(Signal::INT);
        let out = w.finish();
        assert_eq!(out.code(), 130, "{args:?}: {out:?}");
        assert!(out.stderr.contains("nothing is held"), "{out:?}");
    }
    let w = waiting(dir.path(), &["hold", "SPI"]);
    w.signal(Signal::TERM);
    assert_eq!(w.finish().code(), 128 + 15);
    assert!(!marker.exists());
    let (_, s) = state_json(dir.path(), "SPI");
    assert_eq!(s["holder"]["pid"], h.pid(), "the holder kept the lock");
    assert_eq!(s["waiters"].as_array().unwrap().len(), 0);
    h.signal(Signal::INT);
    assert_eq!(h.finish().code(), 0);
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!((code, s["state"].as_str()), (0, Some("free")));
    assert_eq!(s["stats"]["acquisitions"], 1, "no waiter ever took it");
}

#[test]
fn read_only_commands_never_create_lock_files() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["state", "SPI"],
        vec!["stats", "SPI"],
        vec!["watch", "SPI", "--count", "1"],
    ] {
        let mut c = buslock(dir.path());
        c.args(&args);
        let out = run(c);
        assert_eq!(out.code(), 3, "{args:?}: {out:?}");
        assert!(out.stderr.contains("does not exist"), "{out:?}");
    }
    let mut c = buslock(dir.path());
    c.arg("list");
    assert_eq!(run(c).code(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn dir_flag_overrides_buslock_dir() {
    let env_dir = tempfile::tempdir().unwrap();
    let flag_dir = tempfile::tempdir().unwrap();
    let mut c = buslock(env_dir.path());
    c.arg("--dir")
        .arg(flag_dir.path())
        .args(["run", "I2C-1", "--", "true"]);
    assert_eq!(run(c).code(), 0);
    assert!(flag_dir.path().join("I2C-1.lock").exists());
    assert!(!env_dir.path().join("I2C-1.lock").exists());
    // --dir also works after the subcommand.
    let mut c = buslock(env_dir.path());
    c.args(["state", "I2C-1", "--dir"]).arg(flag_dir.path());
    assert_eq!(run(c).code(), 0);
}

#[test]
fn sigterm_to_run_is_forwarded_and_the_lock_released_after_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    // The command announces itself, then sleeps until terminated.
    c.args([
        "run",
        "SPI",
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 30",
    ]);
    let mut r = Proc::spawn(c);
    r.expect_line(|l| l == "started");
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!(code, 1);
    assert_eq!(s["holder"]["pid"], r.pid(), "buslock itself holds the lock");
    r.signal(Signal::TERM);
    let out = r.finish();
    assert_eq!(out.code(), 128 + 15, "the command died of SIGTERM: {out:?}");
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!((code, s["state"].as_str()), (0, Some("free")));
}

#[test]
fn run_shows_the_command_as_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--", "sh", "-c", "echo inside; exec sleep 30"]);
    let mut p = Proc::spawn(c);
    p.expect_line(|l| l == "inside");
    let (code, s) = state_json(dir.path(), "SPI");
    assert_eq!(code, 1, "{s}");
    assert_eq!(s["holder"]["program"], "sh", "{s}");
    assert_eq!(s["holder"]["pid"], p.pid(), "{s}");
    p.signal(Signal::TERM);
    let _ = p.finish();
    let (code, _) = state_json(dir.path(), "SPI");
    assert_eq!(code, 0, "released once the command ended");
}
