//! `buslock order` and `buslock waits` against real processes and a real
//! registry in a temporary lock directory.

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use buslock::lockdep::{Mode, REGISTRY_FILE};
use buslock::{Mutex, Waiter};
use rustix::process::{Pid, Signal, kill_process_group};
use support::{buslock, eventually, run};

/// A process group started from a shell line, killed (whole group) on drop
/// so that no `buslock` it started is left waiting.
struct Group(Child);

impl Group {
    fn spawn(dir: &Path, script: &str) -> Group {
        let child = Command::new("sh")
            .args(["-c", script])
            .env("BUSLOCK_DIR", dir)
            .env("PATH", path_with_buslock())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        Group(child)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.0.id() as i32) {
            let _ = kill_process_group(pid, Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

fn path_with_buslock() -> String {
    let bin = Path::new(support::BIN)
        .parent()
        .unwrap()
        .display()
        .to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

fn waiters(dir: &Path, name: &str) -> Vec<Waiter> {
    match Mutex::builder(name).dir(dir).create(false).open() {
        Ok(m) => m.waiters().unwrap(),
        Err(_) => Vec::new(),
    }
}

/// Set in a re-executed test binary: the lock names to take, nested.
const NEST_ENV: &str = "BUSLOCK_CLI_TEST_NEST";

/// Re-executed as a helper process: take the locks named in
/// [`NEST_ENV`] nested, in order (lock-order mode `warn`), and exit.
#[test]
fn helper_entry() {
    let Ok(names) = std::env::var(NEST_ENV) else {
        return;
    };
    let dir = std::env::var("BUSLOCK_DIR").unwrap();
    let locks: Vec<Mutex> = names
        .split(',')
        .map(|n| {
            Mutex::builder(n)
                .dir(&dir)
                .lockdep(Mode::Warn)
                .open()
                .unwrap()
        })
        .collect();
    let _guards: Vec<_> = locks.iter().map(|m| m.lock().unwrap()).collect();
}

/// Take `names` (comma-separated) nested in a new process that exits.
fn nest_in_process(dir: &Path, names: &str) {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "helper_entry", "--test-threads=1", "-q"])
        .env("BUSLOCK_DIR", dir)
        .env(NEST_ENV, names);
    let out = run(c);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn order_shows_an_inversion_with_both_witnesses_and_reset_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(buslock(d).args(["order"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("no lock order recorded"), "{out:?}");

    // A then B in one process that exits, B then A later in another
    // (warn: both proceed).
    nest_in_process(d, "A,B");
    nest_in_process(d, "B,A");

    let out = run(buslock(d).args(["order"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    let text = &out.stdout;
    assert!(text.contains("(2 locks, 2 orders)"), "{text}");
    assert!(
        text.contains("  A -> B: first taken by 'lockdep-"),
        "{text}"
    );
    assert!(text.contains("  B -> A  INVERTS: first taken by"), "{text}");
    assert!(text.contains("1 inversion:"), "{text}");
    assert!(text.contains("holds 'A', wants 'B'"), "{text}");
    assert!(text.contains("holds 'B', wants 'A'"), "{text}");

    let out = run(buslock(d).args(["order", "--json"]).take_cmd());
    let doc = out.json();
    let orders = doc["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    let tids: Vec<u64> = orders
        .iter()
        .map(|o| o["witness"]["tid"].as_u64().unwrap())
        .collect();
    let pids: Vec<u64> = orders
        .iter()
        .map(|o| o["witness"]["pid"].as_u64().unwrap())
        .collect();
    assert_ne!(pids[0], pids[1], "each order has its own witness process");
    assert_ne!(tids[0], tids[1]);
    let inv = &doc["inversions"][0];
    assert_eq!(inv["cycle"], serde_json::json!(["A", "B"]));
    assert_eq!(inv["witnesses"].as_array().unwrap().len(), 2);

    // doctor flags it.
    let out = run(buslock(d).args(["doctor"]).take_cmd());
    assert!(
        out.stdout.contains("1 lock-order inversion recorded"),
        "{out:?}"
    );

    let out = run(buslock(d).args(["order", "--reset"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("reset"), "{out:?}");
    assert!(out.stdout.contains("(2 locks, 0 orders)"), "{out:?}");
    assert!(out.stdout.contains("no inversions"), "{out:?}");
}

#[test]
fn corrupted_registry_is_reported_by_doctor_and_reset_by_order_reset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(REGISTRY_FILE), vec![0x5au8; 100]).unwrap();
    let out = run(buslock(d).args(["doctor"]).take_cmd());
    assert!(out.stdout.contains(".lockdep' is unusable"), "{out:?}");
    assert!(out.stdout.contains("buslock order --reset"), "{out:?}");
    let out = run(buslock(d).args(["order"]).take_cmd());
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out.stderr.contains("is 100 bytes"), "{out:?}");
    // Locking still works meanwhile.
    let out = run(buslock(d).args(["run", "A", "--", "true"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    let out = run(buslock(d).args(["order", "--reset"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    let out = run(buslock(d).args(["order"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("0 orders"), "{out:?}");
}

#[test]
fn order_reset_refuses_a_symlinked_registry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let victim = d.join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, d.join(REGISTRY_FILE)).unwrap();
    let out = run(buslock(d).args(["order", "--reset"]).take_cmd());
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out.stderr.contains("symbolic link"), "{out:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}

#[test]
fn waits_shows_a_three_process_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // P1 holds A. P2 holds B and its child waits for A. P3 waits for B.
    let _p1 = Group::spawn(d, "exec buslock hold A");
    eventually("A held", || {
        Mutex::builder("A")
            .dir(d)
            .create(false)
            .open()
            .ok()
            .filter(Mutex::is_locked)
    });
    let _p2 = Group::spawn(d, "exec buslock run B -- buslock hold A");
    eventually("a waiter for A", || {
        (!waiters(d, "A").is_empty()).then_some(())
    });
    let _p3 = Group::spawn(d, "exec buslock hold B");
    eventually("a waiter for B", || {
        (!waiters(d, "B").is_empty()).then_some(())
    });

    let out = run(buslock(d).args(["waits"]).take_cmd());
    assert_eq!(out.code(), 0, "no cycle: {out:?}");
    let text = &out.stdout;
    assert!(text.contains("(2 waiters)"), "{text}");
    assert!(text.contains("waits for 'B'"), "{text}");
    assert!(text.contains("(holding 'B') through its child"), "{text}");
    assert!(text.contains("waits for 'A'"), "{text}");
    assert!(!text.contains("DEADLOCK"), "{text}");

    let doc = run(buslock(d).args(["waits", "--json"]).take_cmd()).json();
    let chains = doc["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 1, "{doc}");
    let chain: Vec<String> = chains[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            doc["waits"][i.as_u64().unwrap() as usize]["lock"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(chain, vec!["B", "A"]);
    assert!(doc["cycles"].as_array().unwrap().is_empty());
}

#[test]
fn waits_flags_the_nested_run_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Each takes its outer lock, then (once both hold one) its inner one:
    // the classic nested `buslock run` deadlock, invisible to the kernel.
    let _p1 = Group::spawn(
        d,
        "exec buslock run A -- sh -c 'sleep 0.5; exec buslock run B -- true'",
    );
    let _p2 = Group::spawn(
        d,
        "exec buslock run B -- sh -c 'sleep 0.5; exec buslock run A -- true'",
    );
    eventually("both inner runs waiting", || {
        (!waiters(d, "A").is_empty() && !waiters(d, "B").is_empty()).then_some(())
    });
    let out = run(buslock(d).args(["waits"]).take_cmd());
    assert_eq!(out.code(), 1, "a cycle exits 1: {out:?}");
    assert!(out.stdout.contains("DEADLOCK: a cycle of waits"), "{out:?}");
    assert!(out.stdout.contains("through its child"), "{out:?}");
    let doc = run(buslock(d).args(["waits", "--json"]).take_cmd()).json();
    assert_eq!(doc["cycles"].as_array().unwrap().len(), 1, "{doc}");
}

#[test]
fn waits_with_nobody_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(buslock(dir.path()).args(["waits"]).take_cmd());
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("nobody waits"), "{out:?}");
}

/// `Command` builders return `&mut Command`; `run` wants the value.
trait TakeCmd {
    fn take_cmd(&mut self) -> Command;
}

impl TakeCmd for Command {
    fn take_cmd(&mut self) -> Command {
        std::mem::replace(self, Command::new("false"))
    }
}
