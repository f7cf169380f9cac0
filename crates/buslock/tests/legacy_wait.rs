//! Waiting for a legacy record lock (Dexter's file) held by an unmigrated
//! program blocks in the kernel instead of polling, also when the wait is
//! interruptible (as Python's is) or has a deadline, and a wait that gives
//! up leaves the file free.

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

/// Dexter's algorithm (a classic `lockf` lock) holding `file` for 400 ms,
/// started and holding when this returns.
fn old_program_holding_for_400ms(file: &std::path::Path) -> std::process::Child {
    let mut old = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.lockf(f, fcntl.LOCK_EX); \
             print('locked', flush=True); time.sleep(0.4)",
        ])
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(old.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    old
}

/// How a test waits for the legacy file.
enum HowToWait {
    Interruptible(Option<Duration>),
    Timeout(Duration),
}

/// Wait for the legacy file held 400 ms by an old program; the waiting
/// thread's voluntary context switches and how often `interrupted` was
/// asked.
fn wait_for_the_legacy_file(how: HowToWait) -> (u64, u32) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("DI_Mutex_SPI");
    let mut old = old_program_holding_for_400ms(&file);
    let m = buslock::Mutex::builder("SPI")
        .dir(dir.path())
        .legacy_record_lock(&file)
        .open()
        .unwrap();
    let (tx, rx) = channel();
    let seen = std::thread::scope(|s| {
        s.spawn(|| {
            let before = voluntary_switches();
            let mut asked = 0u32;
            let g = match how {
                HowToWait::Interruptible(timeout) => m.lock_interruptible(timeout, || {
                    asked += 1;
                    false
                }),
                HowToWait::Timeout(timeout) => m.lock_timeout(timeout),
            }
            .unwrap()
            .expect("the old program released within the timeout");
            let switches = voluntary_switches() - before;
            drop(g);
            tx.send((switches, asked)).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(30)).unwrap()
    });
    assert!(old.wait().unwrap().success());
    seen
}

/// Most context switches a wait that blocks in the kernel may show: 1 to 9
/// on a quiet machine, 21 seen under a loaded CI run (the short windows
/// left to pollers, preemption). Polling every 1 ms over the 400 ms wait
/// showed 288 to 352, so the line between the two is wide.
const BLOCKING_AT_MOST: u64 = 100;

#[test]
fn an_interruptible_wait_for_the_legacy_file_does_not_poll() {
    let (switches, asked) = wait_for_the_legacy_file(HowToWait::Interruptible(None));
    // Polling every 1 ms for 400 ms would be hundreds.
    assert!(
        switches < BLOCKING_AT_MOST,
        "{switches} context switches while waiting"
    );
    assert_eq!(asked, 0, "no signal arrived, so nothing had to be asked");
}

#[test]
fn a_wait_with_a_deadline_for_the_legacy_file_polled_every_millisecond() {
    let (switches, _) = wait_for_the_legacy_file(HowToWait::Timeout(Duration::from_secs(30)));
    // Polling every 1 ms for 400 ms would be hundreds.
    assert!(
        switches < BLOCKING_AT_MOST,
        "{switches} context switches while waiting"
    );
}

#[test]
fn an_interruptible_wait_with_a_deadline_for_the_legacy_file_does_not_poll() {
    let (switches, asked) =
        wait_for_the_legacy_file(HowToWait::Interruptible(Some(Duration::from_secs(30))));
    // One wake-up per interrupt slice (50 ms) is expected; polling every
    // 1 ms for 400 ms would be hundreds.
    assert!(
        switches < BLOCKING_AT_MOST + u64::from(asked),
        "{switches} context switches while waiting ({asked} slices)"
    );
}

/// An old program run as a separate process, taking commands on stdin:
/// `lock` (blocking `lockf`), `try` (non-blocking: says `got` or `busy`,
/// and releases again), `unlock`; it answers each with one line, and dies
/// after 60 s (its stdout closes: the test fails instead of hanging).
struct OldProgram {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl OldProgram {
    fn start(file: &std::path::Path) -> OldProgram {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl,signal,sys\n\
                 signal.alarm(60)\n\
                 f=open(sys.argv[1],'w')\n\
                 for cmd in sys.stdin:\n\
                 \x20   cmd=cmd.strip()\n\
                 \x20   if cmd=='lock': fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True)\n\
                 \x20   elif cmd=='unlock': fcntl.lockf(f, fcntl.LOCK_UN); print('unlocked', flush=True)\n\
                 \x20   elif cmd=='try':\n\
                 \x20       try: fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n\
                 \x20       except OSError: print('busy', flush=True); continue\n\
                 \x20       fcntl.lockf(f, fcntl.LOCK_UN); print('got', flush=True)",
            ])
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        OldProgram { child, lines }
    }

    fn say(&mut self, cmd: &str) -> String {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the old program did not answer {cmd:?}"))
    }
}

impl Drop for OldProgram {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_wait_with_a_deadline_that_gives_up_leaves_the_legacy_file_free() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("DI_Mutex_SPI");
    let mut old = OldProgram::start(&file);
    assert_eq!(old.say("lock"), "locked");
    let m = buslock::Mutex::builder("SPI")
        .dir(dir.path())
        .legacy_record_lock(&file)
        .open()
        .unwrap();
    // Both ways of giving up, while the old program holds the file.
    assert!(
        m.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        m.lock_interruptible(Some(Duration::from_secs(30)), || true),
        Err(buslock::Error::Interrupted { .. })
    ));
    assert!(!m.is_locked());
    // The old program releases; whatever waited for the file on behalf of
    // the waits that gave up must not keep it.
    assert_eq!(old.say("unlock"), "unlocked");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(old.say("try"), "got");
    assert_eq!(old.say("lock"), "locked");
    // A wait with a deadline that succeeds holds the file until its guard
    // drops, then frees it for the old program.
    let (got_tx, got_rx) = channel();
    let (done_tx, done_rx) = channel::<()>();
    let m = &m;
    std::thread::scope(|s| {
        s.spawn(move || {
            let g = m.lock_timeout(Duration::from_secs(30)).unwrap();
            got_tx.send(g.is_some()).unwrap();
            // Hold until the test has looked (or gave up looking).
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
            drop(g);
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(old.say("unlock"), "unlocked");
        let got = got_rx.recv_timeout(Duration::from_secs(30));
        let seen = old.say("try");
        done_tx.send(()).unwrap();
        assert_eq!(
            got,
            Ok(true),
            "the wait got the lock once the file was free"
        );
        assert_eq!(seen, "busy", "the guard holds the file");
    });
    assert_eq!(old.say("try"), "got", "the guard's release freed the file");
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
