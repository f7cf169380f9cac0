//! Waiting for a legacy record lock (Dexter's file) held by an unmigrated
//! program blocks in the kernel instead of polling, also when the wait is
//! interruptible (as Python's is).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

/// The calling thread's voluntary context switches so far: a thread that
/// sleeps 1 ms between tries makes one per try, a thread blocked in the
/// kernel one per wake-up.
fn voluntary_switches() -> u64 {
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn an_interruptible_wait_for_the_legacy_file_does_not_poll() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("DI_Mutex_SPI");
    // Dexter's algorithm holds the file (a classic lockf lock) for 400 ms.
    let mut old = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.lockf(f, fcntl.LOCK_EX); \
             print('locked', flush=True); time.sleep(0.4)",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(old.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let m = buslock::Mutex::builder("SPI")
        .dir(dir.path())
        .legacy_record_lock(&file)
        .open()
        .unwrap();
    let (tx, rx) = channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let before = voluntary_switches();
            let mut asked = 0u32;
            let g = m
                .lock_interruptible(None, || {
                    asked += 1;
                    false
                })
                .unwrap()
                .unwrap();
            let switches = voluntary_switches() - before;
            drop(g);
            tx.send((switches, asked)).unwrap();
        });
        let (switches, asked) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        // Polling every 1 ms for 400 ms would be hundreds.
        assert!(switches < 20, "{switches} context switches while waiting");
        assert_eq!(asked, 0, "no signal arrived, so nothing had to be asked");
    });
    assert!(old.wait().unwrap().success());
}

#[test]
fn a_buslock_user_coming_straight_back_leaves_a_polling_program_its_turn() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("DI_Mutex_SPI");
    // A long polling interval makes the window after a release long enough
    // that this test does not depend on scheduling.
    let m = buslock::Mutex::builder("SPI")
        .dir(dir.path())
        .legacy_record_lock(&file)
        .legacy_poll_interval(Duration::from_secs(10))
        .open()
        .unwrap();
    drop(m.lock().unwrap());
    // Coming straight back: a try declines, the file stays free for pollers.
    assert!(m.try_lock().unwrap().is_none());
    assert!(!m.is_locked());
    // Dexter's algorithm: poll lockf every 1 ms, hold 100 ms, release.
    let mut old = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time\n\
             while True:\n\
             \x20   f=open(sys.argv[1],'w')\n\
             \x20   try:\n\
             \x20       fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB); break\n\
             \x20   except OSError:\n\
             \x20       f.close(); time.sleep(0.001)\n\
             print('got', flush=True); time.sleep(0.1); print('releasing', flush=True); f.close()",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = old.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let g = m.lock().unwrap();
    // The blocking lock waited for the poller's whole turn: the poller
    // said both lines before it released (had the lock come first, the
    // poller could not take the file until `g` drops: the watchdog fails
    // the test).
    let said: Vec<String> = (0..2)
        .map_while(|_| rx.recv_timeout(Duration::from_secs(10)).ok())
        .collect();
    drop(g);
    assert_eq!(said, ["got", "releasing"]);
    assert!(old.wait().unwrap().success());
}
