//! The adapters exclude real processes on a simulated bus whose every byte
//! goes to a shared file: each participant checks its own transactions
//! (and sessions) for foreign bytes, and each test checks the whole file.
//! A holder SIGKILLed mid-transaction is followed by the owner-died hook.

mod common;

use std::path::Path;
use std::time::Duration;

use buslock_hal::{BusLock, LockedI2c, LockedSpiDevice, SpiBusDevice};
use common::*;
use embedded_hal::i2c::I2c;
use embedded_hal::spi::{Operation, SpiDevice};
use rustix::fs::{FlockOperation, flock};

#[test]
fn helper_entry() {
    run_helper_if_requested(roles);
}

fn roles(role: &str) -> i32 {
    match role {
        "worker" => worker(),
        "tool" => tool(),
        other => {
            eprintln!("unknown role {other}");
            2
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn num(name: &str, default: u64) -> u64 {
    var(name).map_or(default, |v| v.parse().unwrap())
}

/// Wait until the test opens the start gate (`GO_FILE` exists), so that
/// all helpers start together however slowly they were spawned.
fn start_gate() {
    if let Some(go) = var("GO_FILE") {
        let deadline = std::time::Instant::now() + WATCHDOG;
        while !Path::new(&go).exists() {
            assert!(std::time::Instant::now() < deadline, "no start signal");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn recorder() -> Shared {
    Recorder::open(
        Path::new(&var("BUS_FILE").unwrap()),
        Duration::from_micros(num("DELAY_US", 50)),
        var("STALL_AFTER").map(|v| v.parse().unwrap()),
    )
}

/// Transactions through an adapter (or the bare simulated bus with
/// `LOCKED=0`), in sessions of three with `SESSION=1`.
fn worker() -> i32 {
    let rec = recorder();
    start_gate();
    let kind = var("KIND").unwrap();
    let count = num("COUNT", 20);
    let session = num("SESSION", 0) == 1;
    let locked = num("LOCKED", 1) == 1;
    let payload: Vec<u8> = (0..num("BYTES", 8) as u8).collect();
    let device = var("DEVICE").unwrap_or_else(|| "/dev/spidev0.0".into());
    let lock = || {
        let lock = BusLock::for_device(&device).unwrap();
        match var("NODE") {
            Some(node) => lock.flock_node(node).unwrap(),
            None => lock,
        }
    };
    let sessions = |rec: &Shared, mut one: Box<dyn FnMut() + '_>| {
        let mark = rec.borrow_mut().open_session();
        for _ in 0..3 {
            one();
        }
        rec.borrow_mut().close_session(mark);
    };
    for _ in 0..count {
        match (kind.as_str(), locked) {
            ("i2c", false) => SimI2c(rec.clone()).write(0x42, &payload).unwrap(),
            ("i2c", true) => {
                let mut dev = LockedI2c::new(SimI2c(rec.clone()), lock()).on_owner_died(|bus| {
                    bus.0.borrow_mut().reset();
                    Ok(())
                });
                if session {
                    let mut s = dev.session().unwrap();
                    sessions(&rec, Box::new(|| s.write(0x42, &payload).unwrap()));
                } else {
                    dev.write(0x42, &payload).unwrap();
                }
            }
            ("spibus", true) => {
                let mut dev = SpiBusDevice::new(SimSpiBus(rec.clone()), SimCs(rec.clone()), lock())
                    .unwrap()
                    .on_owner_died(|bus, _cs| {
                        bus.0.borrow_mut().reset();
                        Ok(())
                    });
                let mut read = [0u8; 2];
                let mut ops = [Operation::Write(&payload), Operation::Read(&mut read)];
                if session {
                    let mut s = dev.session().unwrap();
                    sessions(&rec, Box::new(|| s.transaction(&mut ops).unwrap()));
                } else {
                    dev.transaction(&mut ops).unwrap();
                    assert_eq!(read, [0xa5, 0xa5]);
                }
            }
            ("spidev", true) => {
                let mut dev = LockedSpiDevice::new(SimSpiDevice(rec.clone()), lock())
                    .on_owner_died(|dev| {
                        dev.0.borrow_mut().reset();
                        Ok(())
                    });
                if session {
                    let mut s = dev.session().unwrap();
                    sessions(&rec, Box::new(|| s.write(&payload).unwrap()));
                } else {
                    dev.write(&payload).unwrap();
                }
            }
            ("spidev", false) => SimSpiDevice(rec.clone()).write(&payload).unwrap(),
            other => panic!("unknown worker {other:?}"),
        }
    }
    let rec = rec.borrow();
    println!("@done {} {}", rec.violations, rec.resets);
    0
}

/// A tool that locks the device node itself with flock around each
/// exchange (as commaai/panda does).
fn tool() -> i32 {
    let rec = recorder();
    start_gate();
    let node = std::fs::File::open(var("NODE").unwrap()).unwrap();
    let payload: Vec<u8> = (0..num("BYTES", 8) as u8).collect();
    for _ in 0..num("COUNT", 20) {
        flock(&node, FlockOperation::LockExclusive).unwrap();
        let mut rec = rec.borrow_mut();
        rec.start();
        payload.iter().for_each(|&b| rec.byte(b));
        rec.end();
        drop(rec);
        flock(&node, FlockOperation::Unlock).unwrap();
    }
    let rec = rec.borrow();
    println!("@done {} {}", rec.violations, rec.resets);
    0
}

/// What a helper reported at the end: (foreign records it saw inside its
/// own transactions, resets it made).
fn done(mut h: Helper) -> (usize, usize) {
    let line = h.expect("done");
    let mut it = line.split(' ').map(|n| n.parse().unwrap());
    let r = (it.next().unwrap(), it.next().unwrap());
    h.wait_ok();
    r
}

struct Run {
    dir: tempfile::TempDir,
    bus: std::path::PathBuf,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("bus");
        Run { dir, bus }
    }

    fn spawn(&self, role: &str, env: &[(&str, &str)]) -> Helper {
        let mut env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        env.push(("BUS_FILE", self.bus.display().to_string()));
        env.push(("GO_FILE", self.go().display().to_string()));
        Helper::spawn(role, self.dir.path(), &env)
    }

    fn go(&self) -> std::path::PathBuf {
        self.dir.path().join("go")
    }

    /// Let every helper started so far (and later) begin.
    fn open_gate(&self) {
        std::fs::write(self.go(), b"").unwrap();
    }

    /// Start `n` workers with `env`, wait for them; the sum of what they
    /// saw, and the test's own verdict on the whole file.
    fn workers(&self, n: usize, env: &[(&str, &str)]) -> (usize, Verdict) {
        let helpers: Vec<Helper> = (0..n).map(|_| self.spawn("worker", env)).collect();
        self.open_gate();
        let seen = helpers.into_iter().map(|h| done(h).0).sum();
        (seen, verdict(&self.bus))
    }
}

fn assert_exclusive(kind: &str, session: &str) {
    let run = Run::new();
    let (seen, v) = run.workers(3, &[("KIND", kind), ("COUNT", "25"), ("SESSION", session)]);
    assert_eq!(
        seen, 0,
        "participants saw foreign bytes in their transactions"
    );
    assert_eq!(v.intrusions, 0, "{v:?}");
    let per = if session == "1" { 75 } else { 25 };
    assert_eq!(v.transactions.len(), 3, "{v:?}");
    assert!(v.transactions.values().all(|&n| n == per), "{v:?}");
    assert!(v.resets.is_empty(), "{v:?}");
}

#[test]
fn i2c_transactions_of_processes_never_interleave() {
    assert_exclusive("i2c", "0");
}

#[test]
fn spi_bus_with_chip_select_transactions_never_interleave() {
    assert_exclusive("spibus", "0");
}

#[test]
fn kernel_cs_spi_device_transactions_never_interleave() {
    assert_exclusive("spidev", "0");
}

#[test]
fn sessions_hold_the_bus_across_transactions() {
    for kind in ["i2c", "spibus", "spidev"] {
        assert_exclusive(kind, "1");
    }
}

/// The control: without the lock the same workload interleaves, and both
/// the participants and the file check see it (so the tests above can
/// fail).
#[test]
fn the_checks_see_interleaving_without_the_lock() {
    for kind in ["i2c", "spidev"] {
        let run = Run::new();
        let (seen, v) = run.workers(3, &[("KIND", kind), ("COUNT", "25"), ("LOCKED", "0")]);
        assert!(seen > 0, "{kind}: participants saw no interleaving");
        assert!(v.intrusions > 0, "{kind}: {v:?}");
    }
}

#[test]
fn a_holder_killed_mid_transaction_is_followed_by_the_owner_died_hook() {
    for kind in ["i2c", "spibus", "spidev"] {
        let run = Run::new();
        run.open_gate();
        let mut victim = run.spawn(
            "worker",
            &[("KIND", kind), ("COUNT", "1"), ("STALL_AFTER", "3")],
        );
        victim.expect("mid");
        let victim_pid = victim.pid();
        let next = run.spawn("worker", &[("KIND", kind), ("COUNT", "5")]);
        // The next worker waits for the bus; now the holder dies.
        victim.kill();
        let next_pid = next.pid();
        let (seen, resets) = done(next);
        assert_eq!(
            (seen, resets),
            (0, 1),
            "{kind}: one reset, then clean transactions"
        );
        let records = read_records(&run.bus, 0);
        let r = records.iter().position(|r| r.kind == RESET).unwrap();
        // The reset comes right after the victim's third byte, before any
        // byte of the next holder.
        assert_eq!(records[r].pid, next_pid, "{kind}");
        assert_eq!(
            (records[r - 1].kind, records[r - 1].pid),
            (BYTE, victim_pid),
            "{kind}: {records:?}"
        );
        assert!(records[..r].iter().all(|x| x.pid == victim_pid), "{kind}");
        let v = verdict(&run.bus);
        assert_eq!((v.intrusions, v.resets.len()), (0, 1), "{kind}: {v:?}");
        assert_eq!(v.transactions[&next_pid], 5, "{kind}");
    }
}

#[test]
fn flock_node_excludes_tools_that_flock_the_node() {
    for with_flock in [false, true] {
        let run = Run::new();
        let node = run.dir.path().join("spidev0.0");
        std::fs::write(&node, b"").unwrap();
        let node = node.display().to_string();
        let mut env = vec![("KIND", "spidev"), ("COUNT", "25"), ("NODE", node.as_str())];
        let tools: Vec<Helper> = (0..2).map(|_| run.spawn("tool", &env)).collect();
        if !with_flock {
            env.pop();
        }
        let workers: Vec<Helper> = (0..2).map(|_| run.spawn("worker", &env)).collect();
        run.open_gate();
        let seen: usize = tools.into_iter().chain(workers).map(|h| done(h).0).sum();
        let v = verdict(&run.bus);
        if with_flock {
            assert_eq!((seen, v.intrusions), (0, 0), "{v:?}");
        } else {
            // The control: buslock users and flock users do not exclude
            // each other unless the adapter also flocks the node.
            assert!(seen > 0 && v.intrusions > 0, "{v:?}");
        }
    }
}

#[test]
fn device_lock_names_follow_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let a = BusLock::for_device_in("/dev/spidev0.0", dir.path()).unwrap();
    let b = BusLock::for_device_in("/dev/spidev0.1", dir.path()).unwrap();
    let c = BusLock::for_device_in("/dev/i2c-1", dir.path()).unwrap();
    assert_eq!(a.mutex().name(), "spi0");
    assert_eq!(b.mutex().name(), "spi0");
    assert_eq!(c.mutex().name(), "i2c-1");
    let e = BusLock::for_device_in("/dev/ttyAMA0", dir.path()).unwrap_err();
    assert!(e.to_string().contains("'/dev/ttyAMA0'"), "{e}");
    let e = BusLock::for_device_in("/dev/i2c-1", dir.path())
        .unwrap()
        .flock_node(dir.path().join("missing"))
        .unwrap_err();
    assert!(e.to_string().contains("missing'"), "{e}");
}
