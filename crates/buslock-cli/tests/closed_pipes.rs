//! A closed standard output or standard error never ends a hold early,
//! never loses the "previous holder died" report and never panics
//! (issue 9, item 2).

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use rustix::process::Signal;
use support::{Proc, WATCHDOG, buslock, eventually, run, wait_with_watchdog};

fn state_json(dir: &std::path::Path) -> serde_json::Value {
    let mut c = buslock(dir);
    c.args(["state", "SPI", "--json"]);
    run(c).json()
}

/// The write end of a pipe whose read end is already closed: every write
/// to it fails with EPIPE from the first one on. (Closing the read end
/// after spawning raced with the child's first write, which then went into
/// the pipe buffer, and the test waited forever for the stderr line.)
///
/// Close-on-exec: a command that another test spawned between `pipe()` and
/// `drop(read)` inherited a read end made without it, the pipe had a
/// reader again, and `hold` wrote its line into the buffer and said
/// nothing on stderr (seen once in a full test run).
fn closed_pipe() -> Stdio {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    drop(read);
    Stdio::from(write)
}

#[test]
fn hold_with_a_closed_stdout_keeps_holding() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI", "--for", "1h"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // The first stderr line, read beside the test under the watchdog, so
    // that a hold that never says anything fails the test, not hangs it.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    let Ok(line) = rx.recv_timeout(WATCHDOG) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("hold said nothing on stderr within {WATCHDOG:?}");
    };
    assert!(
        line.contains("cannot write to standard output") && line.contains("still holding"),
        "hold must say on stderr that stdout is closed, and keep holding: {line:?}"
    );
    let s = state_json(dir.path());
    assert_eq!(s["state"], "held", "{s}");
    assert_eq!(s["holder"]["pid"], child.id());
    assert!(child.try_wait().unwrap().is_none(), "hold ended early");
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), Signal::TERM).unwrap();
    assert_eq!(wait_with_watchdog(&mut child).code(), Some(0));
    assert_eq!(state_json(dir.path())["state"], "free");
}

#[test]
fn state_with_a_closed_stderr_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["state", "NOPE"])
        .stdout(Stdio::null())
        .stderr(closed_pipe());
    let mut child = c.spawn().unwrap();
    assert_eq!(
        wait_with_watchdog(&mut child).code(),
        Some(3),
        "the documented exit code, not a panic (101)"
    );
}

#[test]
fn previous_owner_death_is_reported_whatever_pipe_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let kill_holder = || {
        let mut c = buslock(dir.path());
        c.args(["hold", "SPI"]);
        let mut h = Proc::spawn(c);
        h.expect_line(|l| l.starts_with("holding lock"));
        h.signal(Signal::KILL);
        let _ = h.finish();
    };
    // `run` with a closed stderr: no panic, the command is told.
    kill_holder();
    let mut c = buslock(dir.path());
    c.args([
        "run",
        "SPI",
        "--",
        "sh",
        "-c",
        "echo died=$BUSLOCK_PREVIOUS_OWNER_DIED",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(closed_pipe());
    let mut child = c.spawn().unwrap();
    let mut out = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    assert_eq!(wait_with_watchdog(&mut child).code(), Some(0));
    assert_eq!(out, "died=1\n");
    // `hold` with a closed stdout: the warning still reaches stderr.
    kill_holder();
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI", "--for", "0s"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(wait_with_watchdog(&mut child).code(), Some(0));
    assert!(err.contains("died while holding it"), "{err:?}");
    eventually("the stats to count both deaths", || {
        (state_json(dir.path())["stats"]["owner_died"] == 2).then_some(())
    });
}
