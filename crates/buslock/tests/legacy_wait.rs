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
