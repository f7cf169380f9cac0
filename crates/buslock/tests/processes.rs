//! Cross-process behaviour with real processes (this test binary re-run as
//! helpers), real SIGKILLs and a temporary lock directory.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use buslock::{Mutex, ProcessState};
use common::{Bus, Helper, run_helper_if_requested, wait_until};

const NAME: &str = "SPI";
const PROCS: usize = 4;
const THREADS: usize = 4;
const ITERS: u64 = 400;

fn open(dir: &Path) -> Mutex {
    Mutex::builder(NAME).dir(dir).open().expect("open lock")
}

fn env_dir() -> std::path::PathBuf {
    std::env::var_os("BUSLOCK_DIR").expect("BUSLOCK_DIR").into()
}

fn roles(role: &str) -> i32 {
    let dir = env_dir();
    match role {
        // Hammer the bus from THREADS threads, half sharing one handle.
        "hammer" => {
            let shared = Arc::new(open(&dir));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let dir = dir.clone();
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let own;
                        let m: &Mutex = if t % 2 == 0 {
                            own = open(&dir);
                            &own
                        } else {
                            &shared
                        };
                        let bus = Bus::open(&dir);
                        let me = (u64::from(std::process::id()) << 8) | (t as u64 + 1);
                        for _ in 0..ITERS {
                            let g = m.lock().expect("lock");
                            m.assert_held();
                            bus.transaction(me);
                            drop(g);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("hammer thread");
            }
            0
        }
        // Take the lock and keep it until killed.
        "hold" => {
            let m = open(&dir);
            let _g = m.lock().expect("lock");
            println!("@locked");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // Block in lock() and report whether the previous owner died.
        "wait" => {
            let m = open(&dir);
            println!("@waiting");
            let g = m.lock().expect("lock");
            println!("@got died={}", g.previous_owner_died());
            0
        }
        // Take, fork, let the child drop its inherited guard.
        "fork" => fork_role(&dir),
        // Race to create the lock file at one instant, then use it.
        "create" => {
            let start: u128 = std::env::var("START_NS").unwrap().parse().unwrap();
            while SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                < start
            {
                std::hint::spin_loop();
            }
            let m = open(&dir);
            let g = m.lock().expect("lock");
            Bus::open(&dir).transaction(u64::from(std::process::id()));
            drop(g);
            let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(m.path()).unwrap());
            println!("@ok {ino}");
            0
        }
        // Keep the lock busy: hold 30 ms, release, ask again at once.
        "busy" => {
            let m = open(&dir);
            println!("@busy");
            loop {
                let g = m.lock().expect("lock");
                std::thread::sleep(Duration::from_millis(30));
                drop(g);
            }
        }
        // Wait interruptibly (in slices, like Python and the command) until
        // killed.
        "sliced" => {
            let m = open(&dir);
            println!("@waiting");
            let _ = m.lock_interruptible(None, || false);
            0
        }
        // Open by name only, as most programs will.
        "open_default" => match Mutex::open(NAME) {
            Ok(m) => {
                println!("@opened {}", m.path().display());
                0
            }
            Err(e) => {
                println!("@error {e}");
                0
            }
        },
        // Try to open the lock and print the error, if any.
        "open_report" => match Mutex::builder(NAME).dir(&dir).open() {
            Ok(_) => {
                println!("@opened");
                0
            }
            Err(e) => {
                println!("@error permission={} {e}", e.is_permission());
                0
            }
        },
        other => panic!("unknown role {other}"),
    }
}

fn fork_role(dir: &Path) -> i32 {
    let m = open(dir);
    let guard = m.lock().expect("lock");
    // SAFETY: the child only drops the guard, calls try_lock and exits; the
    // lock path reads /proc and allocates, which glibc makes safe after fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(guard); // must not unlock the parent's lock
        let code = match m.try_lock() {
            Ok(None) if !m.is_held_by_current_thread() => 0,
            Ok(None) => 2,
            Ok(Some(_)) => 3, // the parent's lock was released: a bug
            Err(_) => 4,
        };
        std::process::exit(code);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    let child_code = libc::WEXITSTATUS(status);
    let still_mine = m.is_held_by_current_thread();
    let owner_pid = m.owner().unwrap().map(|o| o.pid);
    drop(guard);
    let free_after = m.owner().unwrap().is_none();
    println!(
        "@fork child={child_code} still_mine={still_mine} owner_is_parent={} free_after={free_after}",
        owner_pid == Some(std::process::id())
    );
    0
}

#[test]
fn helper_entry() {
    run_helper_if_requested(roles);
}

#[test]
fn processes_and_threads_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::create(dir.path());
    let helpers: Vec<_> = (0..PROCS)
        .map(|_| Helper::spawn("hammer", dir.path(), &[]))
        .collect();
    for h in helpers {
        assert!(h.wait().success(), "hammer helper failed");
    }
    let total = PROCS as u64 * THREADS as u64 * ITERS;
    assert_eq!(bus.violations(), 0, "exclusion violated");
    assert_eq!(bus.counter(), total, "lost updates");
    let stats = open(dir.path()).stats().unwrap();
    assert_eq!(stats.acquisitions, total);
    assert_eq!(stats.hold_histogram.count(), total);
    assert!(stats.contended > 0, "16 threads never contended?");
    assert_eq!(stats.wait_histogram.count(), stats.contended);
    assert_eq!(stats.owner_died, 0);
}

#[test]
fn sigkilled_holder_releases_to_blocked_waiter_who_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let mut holder = Helper::spawn("hold", dir.path(), &[]);
    holder.expect("locked");
    let holder_pid = holder.pid();
    let owner = m.owner().unwrap().expect("held");
    assert_eq!(owner.pid, holder_pid);
    assert!(owner.is_alive());

    let mut waiter = Helper::spawn("wait", dir.path(), &[]);
    waiter.expect("waiting");
    let waiter_pid = waiter.pid();
    wait_until("the waiter to block", || {
        m.waiters().unwrap().iter().any(|w| w.pid == waiter_pid)
    });
    holder.kill();
    assert_eq!(waiter.expect("got"), "died=true");
    assert!(waiter.wait().success());

    // A process that comes later gets a healthy lock and is not told.
    let g = m
        .lock_timeout(common::WATCHDOG)
        .unwrap()
        .expect("lock after recovery");
    assert!(!g.previous_owner_died());
    drop(g);
    let stats = m.stats().unwrap();
    assert_eq!(stats.owner_died, 1);
    assert!(m.waiters().unwrap().is_empty());
}

#[test]
fn sigkilled_holder_without_waiters_is_reported_to_the_next_opener() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = Helper::spawn("hold", dir.path(), &[]);
    holder.expect("locked");
    let pid = holder.pid();
    holder.kill();

    let m = open(dir.path());
    // The record still names the dead holder until the next acquisition.
    let owner = m.owner().unwrap().expect("dead holder still recorded");
    assert_eq!(owner.pid, pid);
    assert_eq!(owner.state, ProcessState::Gone);
    assert!(!m.is_locked());

    let g = m.try_lock().unwrap().expect("free after the holder died");
    assert!(g.previous_owner_died());
    drop(g);
    let g = m.try_lock().unwrap().expect("still usable");
    assert!(!g.previous_owner_died());
    drop(g);
    assert_eq!(m.stats().unwrap().owner_died, 1);
    let events = m.events_since(0).0;
    assert_eq!(events.len(), 2);
    assert!(events[0].previous_owner_died && !events[1].previous_owner_died);
}

#[test]
fn try_lock_timeout_and_owner_seen_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let mut holder = Helper::spawn("hold", dir.path(), &[]);
    holder.expect("locked");

    assert!(m.try_lock().unwrap().is_none());
    assert!(m.lock_timeout(Duration::from_millis(30)).unwrap().is_none());
    assert!(m.is_locked());
    assert!(!m.is_held_by_current_thread());
    let owner = m.owner().unwrap().expect("held");
    assert_eq!(owner.pid, holder.pid());
    assert_ne!(owner.tid, 0);
    assert_eq!(
        Some(owner.start_time),
        std::fs::read_to_string(format!("/proc/{}/stat", owner.pid))
            .ok()
            .and_then(|s| s
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(19)?
                .parse()
                .ok())
    );
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy();
    assert!(
        exe_name.starts_with(&owner.program),
        "{} vs {exe_name}",
        owner.program
    );
    assert!(!owner.torn);
    let stats = m.stats().unwrap();
    assert_eq!(stats.timeouts, 1);
    holder.kill();
}

#[test]
fn forked_child_does_not_inherit_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let mut helper = Helper::spawn("fork", dir.path(), &[]);
    let line = helper.expect("fork");
    assert_eq!(
        line,
        "child=0 still_mine=true owner_is_parent=true free_after=true"
    );
    assert!(helper.wait().success());
}

#[test]
fn eight_processes_create_the_same_lock_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::create(dir.path());
    let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(500);
    let env = [("START_NS", start.as_nanos().to_string())];
    let mut helpers: Vec<_> = (0..8)
        .map(|_| Helper::spawn("create", dir.path(), &env))
        .collect();
    let inodes: Vec<String> = helpers.iter_mut().map(|h| h.expect("ok")).collect();
    for h in helpers {
        assert!(h.wait().success());
    }
    assert!(inodes.iter().all(|i| i == &inodes[0]), "{inodes:?}");
    assert_eq!(bus.counter(), 8);
    assert_eq!(bus.violations(), 0);
    let names = buslock::LockDir::resolve(Some(dir.path()))
        .unwrap()
        .lock_names()
        .unwrap();
    assert_eq!(names, vec![NAME.to_owned()]);
}

#[test]
fn another_user_without_write_access_gets_a_permission_error() {
    use std::os::unix::fs::PermissionsExt;
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run a helper as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(open(dir.path())); // root creates it: mode 0600 in a 0755 directory
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            "helper_entry",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(common::ROLE_ENV, "open_report")
        .env("BUSLOCK_DIR", dir.path())
        .output()
        .expect("setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains('@') {
        eprintln!("skipped: the test binary cannot run as nobody here: {stdout}");
        return;
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("@error"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("permission=true"), "{line}");
    assert!(
        line.contains(&dir.path().join("SPI.lock").display().to_string()),
        "{line}"
    );
}

#[test]
fn buslock_dir_chooses_the_directory_and_a_missing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Helper::spawn("open_default", dir.path(), &[]);
    assert_eq!(
        h.expect("opened"),
        dir.path().join("SPI.lock").display().to_string()
    );
    assert!(h.wait().success());

    let missing = dir.path().join("missing");
    let mut h = Helper::spawn("open_default", &missing, &[]);
    let line = h.expect("error");
    assert!(
        line.contains("does not exist") && line.contains("BUSLOCK_DIR"),
        "{line}"
    );
    assert!(line.contains(&missing.display().to_string()), "{line}");
    assert!(h.wait().success());
    assert!(
        !missing.exists(),
        "a missing BUSLOCK_DIR must not be created"
    );
}

#[test]
fn a_killed_waiter_leaves_a_stale_entry_that_readers_remove() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mutex::builder(NAME)
        .dir(dir.path())
        .label("inspector")
        .open()
        .unwrap();
    let g = m.lock().unwrap();
    assert_eq!(m.owner().unwrap().unwrap().program, "inspector");
    let mut waiter = Helper::spawn("wait", dir.path(), &[]);
    waiter.expect("waiting");
    let pid = waiter.pid();
    wait_until("the waiter to queue", || {
        m.waiters().unwrap().iter().any(|w| w.pid == pid)
    });
    let listed = m.waiters().unwrap();
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy();
    assert!(exe_name.starts_with(&listed[0].program), "{listed:?}");
    assert!(m.stale_waiters().unwrap().is_empty());

    waiter.kill();
    let stale = m.stale_waiters().unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].pid, pid);
    assert_eq!(stale[0].state, ProcessState::Gone);
    assert!(
        m.stale_waiters().unwrap().len() == 1,
        "looking does not remove"
    );
    assert!(
        m.waiters().unwrap().is_empty(),
        "a dead waiter is not a waiter"
    );
    assert!(
        m.stale_waiters().unwrap().is_empty(),
        "waiters() removed it"
    );
    drop(g);
}

#[test]
fn an_interruptible_waiter_is_not_starved_by_a_long_queue() {
    // Four processes that each hold 30 ms and ask again at once keep about
    // 90 ms of waiters ahead of anyone who queues: more than one 50 ms
    // slice, so a waiter that queues again after every slice would never
    // reach the front (it used to time out here every time).
    let dir = tempfile::tempdir().unwrap();
    let mut busy: Vec<Helper> = (0..4)
        .map(|_| Helper::spawn("busy", dir.path(), &[]))
        .collect();
    for b in &mut busy {
        b.expect("busy");
    }
    let m = open(dir.path());
    for _ in 0..3 {
        let g = m
            .lock_interruptible(Some(common::WATCHDOG), || false)
            .unwrap();
        assert!(g.is_some(), "the interruptible waiter starved");
    }
    for b in busy {
        b.kill();
    }
}

#[test]
fn a_starving_waiter_that_dies_does_not_hold_up_others() {
    use buslock::lockfile::{LockFile, OpenMode};
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let g = m.lock().unwrap();
    let mut sliced = Helper::spawn("sliced", dir.path(), &[]);
    sliced.expect("waiting");
    let pid = sliced.pid();
    let ld = buslock::LockDir::resolve(Some(dir.path())).unwrap();
    let file = LockFile::open(&ld, NAME, OpenMode::Existing).unwrap();
    let header = &file.map.page().header;
    // After STARVING_AFTER (100 ms) it posts its request.
    wait_until("the sliced waiter's request", || {
        let tid = header
            .starving_tid
            .load(std::sync::atomic::Ordering::Acquire);
        tid != 0 && std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
    });
    sliced.kill();
    drop(g);
    // Its request goes stale; a newer acquirer steps aside only until then.
    let other = std::thread::scope(|s| {
        s.spawn(|| m.lock_timeout(common::WATCHDOG).unwrap().is_some())
            .join()
            .unwrap()
    });
    assert!(other, "a dead waiter's request blocked the lock");
    assert_eq!(
        header
            .starving_tid
            .load(std::sync::atomic::Ordering::Acquire),
        0
    );
}

#[test]
fn a_death_found_by_an_acquirer_that_steps_aside_is_reported_once() {
    // A holder process dies while an interruptible waiter (this process)
    // has asked newer acquirers to step aside and another process waits
    // in lock(). Whichever the kernel hands the dead holder's lock to,
    // the death is reported exactly once, and to this waiter: the other
    // process, if it got the lock first, stepped aside and passed the
    // notice on.
    if !buslock::raw::robust::available() {
        // The kernel wakes a queued waiter without marking the word, so
        // nobody can be told (scripts/test.d/arm.sh lists this test).
        eprintln!("skipped: no robust list here (emulator?), the kernel cannot mark deaths");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(open(dir.path()));
    let mut holder = Helper::spawn("hold", dir.path(), &[]);
    holder.expect("locked");
    let waiter = {
        let m = m.clone();
        std::thread::spawn(move || {
            let g = m
                .lock_interruptible(Some(common::WATCHDOG), || false)
                .unwrap()
                .expect("lock");
            g.previous_owner_died()
        })
    };
    let ld = buslock::LockDir::resolve(Some(dir.path())).unwrap();
    let file = buslock::lockfile::LockFile::open(&ld, NAME, buslock::OpenMode::Existing).unwrap();
    let header = &file.map.page().header;
    wait_until("the interruptible waiter's request", || {
        header
            .starving_tid
            .load(std::sync::atomic::Ordering::Acquire)
            != 0
    });
    let mut other = Helper::spawn("wait", dir.path(), &[]);
    other.expect("waiting");
    let other_pid = other.pid();
    wait_until("the other process to queue", || {
        m.waiters().unwrap().iter().any(|w| w.pid == other_pid)
    });
    holder.kill();
    assert!(
        waiter.join().unwrap(),
        "the interruptible waiter was not told"
    );
    assert_eq!(other.expect("got"), "died=false");
    assert!(other.wait().success());
    assert_eq!(m.stats().unwrap().owner_died, 1);
}
