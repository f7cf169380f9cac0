//! Hostile file-system states at the lock path and in the lock directory:
//! a planted symlink (the target is never touched), a symlink swapped in
//! and out during creation, a FIFO, a directory, a symlinked lock
//! directory, a full tmpfs, a lock file from another PID namespace, and
//! (as root) another user with and without the lock group.

/// Print a line past the test harness's output capture, so that a skipped
/// test says so in every run, not only with `--nocapture`.
macro_rules! skipped {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use buslock::{Error, Mutex};
use common::{BIN, is_root, run_with_watchdog};

fn open(dir: &Path, name: &str) -> Result<Mutex, Error> {
    Mutex::builder(name).dir(dir).open()
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, i64, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let data = if md.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p, md.size(), md.mtime_nsec(), data)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn symlink_planted_at_lock_path_is_refused_and_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious");
    fs::write(&precious, b"do not touch").unwrap();
    symlink(&precious, dir.path().join("SPI.lock")).unwrap();
    // A dangling link must not make buslock create its target either.
    symlink(outside.path().join("created"), dir.path().join("I2C.lock")).unwrap();
    let before = snapshot(outside.path());
    for name in ["SPI", "I2C"] {
        let err = open(dir.path(), name).unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = Mutex::builder(name)
            .dir(dir.path())
            .create(false)
            .open()
            .unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }), "{name}: {err:?}");
    }
    assert_eq!(
        before,
        snapshot(outside.path()),
        "a file outside the lock dir changed"
    );
}

/// Race `open` against an attacker that plants a symlink to a file outside
/// the lock directory at the lock path and removes it again. Returns
/// (swaps, opens, refusals, vanished: opens that failed with a plain
/// "not found" I/O error), and checks that nothing outside changed.
fn swap_race(rounds: usize, limit: Duration) -> (u64, usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious");
    fs::write(&precious, vec![7u8; 100]).unwrap();
    let before = snapshot(outside.path());
    let lock = dir.path().join("RACE.lock");
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (lock, precious) = (lock.clone(), precious.clone());
        std::thread::spawn(move || {
            let spin = |max_ns: u64| {
                let end = std::time::Instant::now() + Duration::from_nanos(fastrand::u64(..max_ns));
                while std::time::Instant::now() < end {
                    std::hint::spin_loop();
                }
            };
            while !stop.load(Ordering::Relaxed) {
                // Plant a link to the precious file, leave it a moment,
                // take it away again.
                if symlink(&precious, &lock).is_ok() {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
                spin(2_000);
                let _ = fs::remove_file(&lock);
                spin(2_000);
            }
        })
    };
    let (mut opened, mut refused, mut vanished) = (0, 0, 0);
    let start = std::time::Instant::now();
    while (opened + refused + vanished < rounds || swaps.load(Ordering::Relaxed) < rounds as u64)
        && start.elapsed() < limit
    {
        match open(dir.path(), "RACE") {
            Ok(m) => {
                opened += 1;
                assert!(m.path().starts_with(dir.path()));
                // Make the next open create the file again.
                let _ = fs::remove_file(&lock);
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                vanished += 1;
            }
            Err(e) => {
                refused += 1;
                assert!(
                    matches!(
                        e,
                        Error::Symlink { .. }
                            | Error::NotFound { .. }
                            | Error::BadSize { .. }
                            | Error::Corrupt { .. }
                    ),
                    "unexpected error under a swap race: {e:?}"
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert_eq!(
        before,
        snapshot(outside.path()),
        "a file outside the lock dir changed"
    );
    (swaps.load(Ordering::Relaxed), opened, refused, vanished)
}

#[test]
fn symlink_swapped_in_during_creation_never_touches_the_target() {
    let (swaps, opened, refused, vanished) = swap_race(3000, Duration::from_secs(20));
    println!(
        "swap race: {swaps} swaps, {opened} opens, {refused} clear refusals, \
         {vanished} plain not-found errors"
    );
}

#[test]
fn open_racing_with_unlink_never_fails_with_a_bare_not_found() {
    // Regression: open used to fail with a bare ENOENT when the file
    // vanished between O_CREAT|O_EXCL (EEXIST) and the re-open. The window
    // is a few instructions wide: race for a while.
    let (_, _, _, vanished) = swap_race(usize::MAX, Duration::from_secs(5));
    assert_eq!(
        vanished, 0,
        "opens failed with a bare 'No such file or directory'"
    );
}

#[test]
fn fifo_at_lock_path_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        dir.path().join("FIFO.lock"),
        rustix::fs::Mode::from_raw_mode(0o666),
    )
    .unwrap();
    let err = open(dir.path(), "FIFO").unwrap_err();
    assert!(
        matches!(err, Error::NotRegularFile { kind: "FIFO", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn directory_at_lock_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("DIR.lock")).unwrap();
    let err = open(dir.path(), "DIR").unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotRegularFile {
                kind: "directory",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn symlinked_explicit_lock_directory_is_followed_into_its_target() {
    // An explicit directory (Builder::dir, BUSLOCK_DIR) is the user's
    // choice and links to it are followed; links at the lock file are not.
    let real = tempfile::tempdir().unwrap();
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("locks");
    symlink(real.path(), &link).unwrap();
    let m = open(&link, "SPI").unwrap();
    drop(m.lock().unwrap());
    assert!(real.path().join("SPI.lock").is_file());
    symlink("/etc/passwd", real.path().join("EVIL.lock")).unwrap();
    let err = open(&link, "EVIL").unwrap_err();
    assert!(matches!(err, Error::Symlink { .. }), "{err:?}");
}

/// A tiny tmpfs mounted in a private mount namespace, reached from here
/// through `/proc/PID/root`. The namespace lives as long as a shell that
/// reads its stdin: when this value is dropped, or the test process dies
/// however it dies, the pipe closes and the mount is gone with it. The
/// machine's own mounts are never touched.
struct TinyTmpfs {
    path: PathBuf,
    holder: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TinyTmpfs {
    fn mount() -> Result<TinyTmpfs, String> {
        use std::io::BufRead;
        if !is_root() {
            return Err("not root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=64k,mode=1777 tmpfs \"$1\" || exit 1; echo ready; \
                 cat >/dev/null",
            )
            .arg("sh")
            .arg(&mnt)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut line = String::new();
        let _ = std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "ready" {
            drop(holder.stdin.take());
            let out = holder.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "unshare --mount + mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let path = PathBuf::from(format!("/proc/{}/root", holder.id())).join(
            mnt.strip_prefix("/")
                .map_err(|_| "relative temporary directory".to_owned())?,
        );
        Ok(TinyTmpfs {
            path,
            holder,
            _dir: dir,
        })
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn full_tmpfs_gives_no_space_error() {
    let fs_ = match TinyTmpfs::mount() {
        Ok(t) => t,
        Err(why) => {
            skipped!("SKIPPED full_tmpfs_gives_no_space_error: {why}");
            return;
        }
    };
    // Fill it up.
    let filler = fs_.path.join("filler");
    let chunk = vec![0u8; 4096];
    let mut f = fs::File::create(&filler).unwrap();
    loop {
        use std::io::Write;
        if f.write_all(&chunk).and_then(|()| f.sync_all()).is_err() {
            break;
        }
    }
    let err = open(&fs_.path, "SPI").unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err:?}");
    assert!(err.to_string().contains("SPI.lock"), "{err}");
    // Once there is space, the half-created file is completed. (The space
    // comes back when the last descriptor of the filler closes; a child
    // that another test thread is spawning may hold a copy for a moment.)
    drop(f);
    fs::remove_file(&filler).unwrap();
    let mut last = None;
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            last = Some(open(&fs_.path, "SPI").map(|m| drop(m.lock().unwrap())));
            last.as_ref().is_some_and(Result::is_ok)
        }),
        "the lock file was not completed once space was free: {last:?}"
    );
}

/// Overwrite `bytes` at `offset` of lock `name`'s file in `dir`.
fn poke(dir: &Path, name: &str, offset: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(dir.join(format!("{name}.lock")))
        .unwrap();
    file.write_all_at(bytes, offset as u64).unwrap();
}

#[test]
fn lock_file_of_another_abi_or_layout_version_is_refused() {
    use buslock::raw::layout::{Header, LockPage};
    use std::mem::offset_of;
    let dir = tempfile::tempdir().unwrap();
    let header = offset_of!(LockPage, header);
    drop(open(dir.path(), "ABI").unwrap());
    let mut tag = [0u8; 32];
    tag[..22].copy_from_slice(b"aarch64-musl-mutex9999");
    poke(dir.path(), "ABI", header + offset_of!(Header, abi), &tag);
    let err = open(dir.path(), "ABI").unwrap_err();
    assert!(matches!(err, Error::Abi { .. }), "{err:?}");
    assert!(
        err.is_corrupt() && err.to_string().contains("aarch64-musl"),
        "{err}"
    );

    drop(open(dir.path(), "VER").unwrap());
    poke(
        dir.path(),
        "VER",
        header + offset_of!(Header, version),
        &999u32.to_le_bytes(),
    );
    let err = open(dir.path(), "VER").unwrap_err();
    assert!(matches!(err, Error::Version { found: 999, .. }), "{err:?}");

    drop(open(dir.path(), "MAG").unwrap());
    poke(
        dir.path(),
        "MAG",
        header + offset_of!(Header, magic),
        b"NOTALOCK",
    );
    let err = open(dir.path(), "MAG").unwrap_err();
    assert!(matches!(err, Error::BadMagic { .. }), "{err:?}");

    fs::write(dir.path().join("SHORT.lock"), [0u8; 100]).unwrap();
    let err = open(dir.path(), "SHORT").unwrap_err();
    assert!(matches!(err, Error::BadSize { size: 100, .. }), "{err:?}");
}

fn unshare_works() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "unshare --pid failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn lock_file_from_another_pid_namespace_is_refused_not_hung() {
    if let Err(why) = unshare_works() {
        skipped!("SKIPPED lock_file_from_another_pid_namespace_is_refused_not_hung: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Created here, opened from a new PID namespace.
    drop(open(dir.path(), "HOST").unwrap());
    let out = run_with_watchdog(
        Command::new("unshare")
            .args([
                "--pid", "--fork", BIN, "__open", "--lock", "--name", "HOST", "--dir",
            ])
            .arg(dir.path()),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("error PidNamespace:"), "{stdout}");
    assert!(stdout.contains("PID namespace"), "{stdout}");
    // Created in a new PID namespace, opened here.
    let out = run_with_watchdog(
        Command::new("unshare")
            .args([
                "--pid", "--fork", BIN, "__open", "--create", "--name", "NS", "--dir",
            ])
            .arg(dir.path()),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = open(dir.path(), "NS").unwrap_err();
    assert!(matches!(err, Error::PidNamespace { .. }), "{err:?}");
}

/// The other-user tests run as two unprivileged uids and one group id that
/// have no entries in `/etc/passwd` or `/etc/group`: the kernel needs none
/// to switch to them (`setpriv` with numeric ids), so these tests create no
/// users or groups and leave nothing behind.
const MEMBER: u32 = 47111;
const OTHER: u32 = 47112;
const SPI_GROUP: u32 = 47110;

/// Whether the other-user tests can run here (root, `setpriv`, a test
/// binary that other users can reach); the reason when not.
fn test_users() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    // The test binary must be reachable by those users (a private target
    // directory is not).
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER}"),
            &format!("--regid={OTHER}"),
            "--clear-groups",
            BIN,
            "__open",
        ])
        .args(["--name", "X", "--dir", "/nonexistent"])
        .output()
        .map_err(|e| format!("setpriv: {e}"))?;
    if !String::from_utf8_lossy(&out.stdout).starts_with("error") {
        return Err(format!(
            "{BIN} cannot be run by another user: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// `member` is in the lock group, `other` is not.
fn open_as(user: &str, dir: &Path, name: &str, create: bool) -> String {
    let (uid, groups) = match user {
        "member" => (MEMBER, format!("--groups={SPI_GROUP}")),
        "other" => (OTHER, "--clear-groups".to_owned()),
        _ => unreachable!("unknown test user {user}"),
    };
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        &groups,
        BIN,
        "__open",
        "--lock",
        "--name",
        name,
        "--dir",
    ])
    .arg(dir);
    if create {
        cmd.arg("--create");
    }
    let out = run_with_watchdog(&mut cmd, Duration::from_secs(30));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn group_shared_directory_members_share_locks_others_get_permission_error() {
    if let Err(why) = test_users() {
        skipped!("SKIPPED group_shared_directory_...: {why}");
        return;
    }
    // The tmpfiles layout: root:<group> mode 2770, reachable by everyone.
    let top = tempfile::tempdir().unwrap();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let shared = top.path().join("buslock");
    fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(0), Some(SPI_GROUP)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o2770)).unwrap();

    // Root creates a lock; a member uses it; a member creates another one
    // that root and other members can use.
    drop(open(&shared, "SPI").unwrap());
    assert_eq!(open_as("member", &shared, "SPI", false), "ok");
    assert_eq!(open_as("member", &shared, "I2C", true), "ok");
    let md = fs::metadata(shared.join("I2C.lock")).unwrap();
    assert_eq!(
        md.mode() & 0o777,
        0o660,
        "lock files in a group dir are 0660"
    );
    drop(open(&shared, "I2C").unwrap().lock().unwrap());

    // A non-member gets a permission error that says what to do.
    let out = open_as("other", &shared, "SPI", true);
    assert!(
        out.starts_with("error DirPermission:") || out.starts_with("error Permission:"),
        "{out}"
    );
    assert!(
        out.contains("permission denied") || out.contains("group"),
        "{out}"
    );
}

#[test]
fn protected_regular_existing_lock_of_another_user_still_opens() {
    if let Err(why) = test_users() {
        skipped!("SKIPPED protected_regular_...: {why}");
        return;
    }
    // The knob is global (not per namespace): flipping it would change
    // the machine for every other program while the test runs, and leave
    // it changed if the test were killed. Run only where it is already on
    // (systemd turns it on at boot).
    let knob = Path::new("/proc/sys/fs/protected_regular");
    match fs::read_to_string(knob).map(|v| v.trim().to_owned()) {
        Ok(v) if v != "0" => {}
        Ok(_) => {
            skipped!(
                "SKIPPED protected_regular_...: fs.protected_regular is 0 on this machine, \
                 and the tests change no sysctl"
            );
            return;
        }
        Err(e) => {
            skipped!(
                "SKIPPED protected_regular_...: cannot read {}: {e}",
                knob.display()
            );
            return;
        }
    }
    // A sticky world-writable directory (like /run/lock/buslock), a lock
    // file created there by another user.
    let top = tempfile::tempdir().unwrap();
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let sticky = top.path().join("buslock");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(open_as("member", &sticky, "SPI", true), "ok");
    // Root (and another user) open it; O_CREAT on it would fail here.
    open(&sticky, "SPI")
        .and_then(|m| m.lock().map(drop))
        .unwrap();
    assert_eq!(open_as("other", &sticky, "SPI", true), "ok");
}
