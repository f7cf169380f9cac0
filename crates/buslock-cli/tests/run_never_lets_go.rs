//! `buslock run` keeps the lock while anything it started still runs, and
//! takes its command along when it is killed (issue 9, item 1).

mod support;

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;
use support::{Proc, buslock, eventually, run};

fn state_code(dir: &Path, name: &str) -> i32 {
    let mut c = buslock(dir);
    c.args(["state", name, "--json"]);
    run(c).code()
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
    }
}

/// Wait for the pid the command wrote to `path`; the process is killed
/// when the returned guard drops, so a failing test leaves nothing behind.
fn read_pid(path: &Path) -> Stray {
    Stray(eventually("the command to write its pid", || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }))
}

/// A process the test started indirectly; killed on drop.
struct Stray(u32);

impl Drop for Stray {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
}

#[test]
fn run_killed_with_sigkill_takes_its_command_along() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--", "sh", "-c"]).arg(format!(
        "echo $$ > {}; exec sleep 60 >/dev/null 2>&1",
        pidfile.display()
    ));
    let r = Proc::spawn(c);
    let command = read_pid(&pidfile);
    assert!(!ended(command.0));
    r.signal(Signal::KILL);
    let out = r.finish();
    assert_eq!(out.status.code(), None, "buslock was killed: {out:?}");
    eventually("the command to die with buslock", || {
        ended(command.0).then_some(())
    });
}

#[test]
fn run_survives_sigusr1_and_forwards_it_to_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let got = dir.path().join("got");
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--", "sh", "-c"]).arg(format!(
        "exec >/dev/null 2>&1; trap 'echo USR1 > {got}; exit 5' USR1; echo $$ > {ready}; \
         while :; do sleep 0.01; done",
        got = got.display(),
        ready = ready.display()
    ));
    let r = Proc::spawn(c);
    let _command = read_pid(&ready);
    r.signal(Signal::USR1);
    let out = r.finish();
    assert_eq!(
        out.status.code(),
        Some(5),
        "buslock must not die of SIGUSR1 but exit with its command's status: {out:?}"
    );
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "USR1\n");
    assert_eq!(state_code(dir.path(), "SPI"), 0);
}

#[test]
fn run_keeps_the_lock_until_background_workers_exit() {
    let dir = tempfile::tempdir().unwrap();
    let shpid = dir.path().join("shpid");
    let go = dir.path().join("go");
    let done = dir.path().join("done");
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--", "sh", "-c"]).arg(format!(
        "exec >/dev/null 2>&1; \
         (while [ ! -e {go} ]; do sleep 0.01; done; echo worker > {done}) & \
         echo $! > {shpid}.worker; echo $$ > {shpid}; exit 0",
        go = go.display(),
        done = done.display(),
        shpid = shpid.display()
    ));
    let r = Proc::spawn(c);
    let command = read_pid(&shpid);
    let _worker = read_pid(&dir.path().join("shpid.worker"));
    eventually("the command to exit", || ended(command.0).then_some(()));
    // The worker it left behind still runs: the lock must stay held.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        state_code(dir.path(), "SPI"),
        1,
        "the lock was freed while the command's background worker runs"
    );
    assert!(!done.exists());
    std::fs::write(&go, "").unwrap();
    let out = r.finish();
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "worker\n");
    assert!(
        out.stderr
            .contains("keeping lock 'SPI' until what it left running"),
        "{out:?}"
    );
    assert_eq!(state_code(dir.path(), "SPI"), 0);
}

#[test]
fn sigterm_reaches_what_the_command_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let shpid = dir.path().join("shpid");
    let mut c = buslock(dir.path());
    c.args(["run", "SPI", "--", "sh", "-c"]).arg(format!(
        "exec >/dev/null 2>&1; sleep 60 & echo $! > {0}.worker; echo $$ > {0}; exit 0",
        shpid.display()
    ));
    let r = Proc::spawn(c);
    let command = read_pid(&shpid);
    let worker = read_pid(&dir.path().join("shpid.worker"));
    eventually("the command to exit", || ended(command.0).then_some(()));
    assert_eq!(state_code(dir.path(), "SPI"), 1);
    r.signal(Signal::TERM);
    let out = r.finish();
    assert_eq!(out.code(), 0, "the command's own status: {out:?}");
    assert!(ended(worker.0), "the worker got SIGTERM");
    assert_eq!(state_code(dir.path(), "SPI"), 0);
}
