//! Who may create the system lock directory, for every start order of root,
//! `pi` and a second user after a boot, with and without the admin's group
//! setup.
//!
//! Each scenario runs the real `buslock` binary in a private mount
//! namespace whose `/run/lock` is a fresh tmpfs (mode 1777, as after a
//! boot), as real users: root and two unprivileged uids switched to with
//! `setpriv` (numeric ids, so nothing is added to `/etc/passwd` or
//! `/etc/group`). The namespace and its tmpfs vanish with its holder
//! process: the machine is left as it was. Needs root, `unshare`,
//! `nsenter` and `setpriv` (util-linux); skipped with a printed reason
//! otherwise.

/// Print a line past the test harness's output capture, so that a skipped
/// test says so in every run, not only with `--nocapture`.
macro_rules! skipped {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use support::{BIN, Output, Proc, eventually, run};

/// The unprivileged users: `pi` (in the lock group when there is one) and
/// a second user who is not.
const PI: u32 = 47101;
const OTHER: u32 = 47102;
/// The admin's lock group (`buslock` on a real system).
const GROUP: u32 = 47100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    Pi,
    Other,
}

const EVERYONE: [Who; 3] = [Who::Root, Who::Pi, Who::Other];

/// Every order in which the three can start.
fn orders() -> Vec<[Who; 3]> {
    let mut out = Vec::new();
    for a in EVERYONE {
        for b in EVERYONE {
            for c in EVERYONE {
                if a != b && b != c && a != c {
                    out.push([a, b, c]);
                }
            }
        }
    }
    out
}

/// Why these tests cannot run here, if they cannot.
fn unsupported() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (mount namespaces and switching users)".into());
    }
    for tool in ["unshare", "nsenter", "setpriv"] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!("`{tool}` (util-linux) is not available"));
        }
    }
    // The binary must be reachable by the unprivileged users.
    support::cannot_run_as(OTHER).map(|why| {
        format!("{BIN} cannot be run by an unprivileged user (is its directory private?): {why}")
    })
}

macro_rules! skip_unless_supported {
    ($name:literal) => {
        if let Some(why) = unsupported() {
            skipped!("SKIPPED {}: {why}", $name);
            return;
        }
    };
}

/// A private mount namespace with a fresh tmpfs on `/run/lock`, kept alive
/// by a shell that exits when this value (or the test process) goes away.
struct Boot {
    holder: Child,
}

impl Boot {
    fn new() -> Boot {
        // The shell reads its stdin until EOF: when the test dies, the
        // pipe closes and the namespace goes with the shell.
        let script = "set -e
            if [ -d /run/lock ]; then
                mount -t tmpfs -o mode=1777,size=1m tmpfs /run/lock
            else
                mount -t tmpfs -o mode=755,size=1m tmpfs /run
                mkdir -m 1777 /run/lock
            fi
            echo ready
            cat >/dev/null";
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start unshare");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read from the namespace holder");
        assert_eq!(line.trim(), "ready", "the private /run/lock was not set up");
        Boot { holder }
    }

    /// `/run/lock/<rel>` as seen inside the namespace.
    fn path(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/run/lock", self.holder.id())).join(rel)
    }

    /// Names in the namespace's `/run/lock`.
    fn run_lock(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(""))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// `buslock ARGS` run as `who` inside the namespace, with the default
    /// lock directory (no `BUSLOCK_DIR`) and a private `XDG_RUNTIME_DIR`
    /// that must stay empty.
    fn cmd(&self, who: Who, xdg: &std::path::Path, args: &[&str]) -> Command {
        let mut c = self.as_user(who);
        c.arg(BIN)
            .args(args)
            .env_remove("BUSLOCK_DIR")
            .env("XDG_RUNTIME_DIR", xdg)
            .env("NO_COLOR", "1")
            .current_dir("/");
        c
    }

    /// `nsenter ... setpriv ...`: what follows runs as `who` inside the
    /// namespace.
    fn as_user(&self, who: Who) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--target={}", self.holder.id()))
            .arg("--mount")
            .arg("--")
            .arg("setpriv");
        match who {
            Who::Root => c.arg("--reuid=0").arg("--regid=0").arg("--keep-groups"),
            Who::Pi => c
                .arg(format!("--reuid={PI}"))
                .arg(format!("--regid={PI}"))
                .arg(format!("--groups={GROUP}")),
            Who::Other => c
                .arg(format!("--reuid={OTHER}"))
                .arg(format!("--regid={OTHER}"))
                .arg("--clear-groups"),
        };
        c
    }

    fn run(&self, who: Who, xdg: &std::path::Path, args: &[&str]) -> Output {
        run(self.cmd(who, xdg, args))
    }

    /// The admin's setup at boot (what `dist/buslock.conf` does):
    /// `/run/lock/buslock` as `root:<group>` mode 2770.
    fn admin_setup(&self) {
        let dir = self.path("buslock");
        fs::create_dir(&dir).unwrap();
        rustix::fs::chown(
            &dir,
            Some(rustix::process::Uid::ROOT),
            Some(rustix::process::Gid::from_raw(GROUP)),
        )
        .unwrap();
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o2770)).unwrap();
    }
}

impl Drop for Boot {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A private `XDG_RUNTIME_DIR` readable by every test user.
fn xdg_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    dir
}

fn describe(who: Who, args: &[&str], out: &Output) -> String {
    format!(
        "{who:?} `buslock {}` exited {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        out.stdout,
        out.stderr
    )
}

/// Prove that `users` all get the same lock `SPI`: while `holder` holds it,
/// each of the others sees it held and times out trying to take it.
fn same_lock(boot: &Boot, xdg: &std::path::Path, holder: Who, users: &[Who]) {
    let mut hold = Proc::spawn(boot.cmd(holder, xdg, &["hold", "SPI", "--for", "60s"]));
    hold.expect_line(|l| l.contains("SPI"));
    for &who in users {
        eventually("the holder to show in `state`", || {
            (boot.run(who, xdg, &["state", "SPI"]).code() == 1).then_some(())
        });
        let args = ["run", "SPI", "--timeout", "50ms", "--", "true"];
        let out = boot.run(who, xdg, &args);
        assert_eq!(out.code(), 4, "{}", describe(who, &args, &out));
    }
    hold.signal(rustix::process::Signal::TERM);
    let out = hold.finish();
    assert!(out.status.success(), "{out:?}");
}

/// The fresh `/run/lock` holds nothing but (maybe) `buslock`, and the
/// per-user runtime directory stays empty: no second place for locks.
fn no_split(boot: &Boot, xdg: &std::path::Path) {
    let names = boot.run_lock();
    assert!(
        names.is_empty() || names == ["buslock"],
        "something besides buslock/ in /run/lock: {names:?}"
    );
    let stray: Vec<_> = fs::read_dir(xdg).unwrap().collect();
    assert!(
        stray.is_empty(),
        "locks were put in XDG_RUNTIME_DIR: {stray:?}"
    );
}

#[test]
fn without_setup_every_start_order_shares_one_root_owned_directory_or_says_what_to_run() {
    skip_unless_supported!(
        "without_setup_every_start_order_shares_one_root_owned_directory_or_says_what_to_run"
    );
    let xdg = xdg_dir();
    for order in orders() {
        let boot = Boot::new();
        let mut root_started = false;
        for who in order {
            // Read-only commands first: they never create anything.
            for args in [&["list"][..], &["state", "SPI"], &["doctor"]] {
                let before = boot.run_lock();
                let out = boot.run(who, xdg.path(), args);
                assert_eq!(before, boot.run_lock(), "{}", describe(who, args, &out));
                if !root_started && args[0] == "list" {
                    assert_eq!(out.code(), 3, "{}", describe(who, args, &out));
                    assert!(
                        out.stderr.contains("/run/lock/buslock")
                            && out.stderr.contains("does not exist"),
                        "{}",
                        describe(who, args, &out)
                    );
                }
            }
            let args = ["run", "SPI", "--", "true"];
            let out = boot.run(who, xdg.path(), &args);
            if who == Who::Root || root_started {
                assert_eq!(
                    out.code(),
                    0,
                    "order {order:?}: {}",
                    describe(who, &args, &out)
                );
                root_started = true;
            } else {
                // Not silently elsewhere: a clear error naming the fix.
                assert_eq!(
                    out.code(),
                    3,
                    "order {order:?}: {}",
                    describe(who, &args, &out)
                );
                assert!(
                    out.stderr
                        .contains("install -d -o root -g root -m 1777 /run/lock/buslock"),
                    "{}",
                    describe(who, &args, &out)
                );
                assert!(!boot.path("buslock").exists(), "order {order:?}");
            }
            no_split(&boot, xdg.path());
        }
        let md = fs::symlink_metadata(boot.path("buslock")).unwrap();
        assert!(md.is_dir());
        assert_eq!(md.uid(), 0, "order {order:?}: the directory is not root's");
        assert_eq!(md.mode() & 0o7777, 0o1777, "order {order:?}");
        let lock = fs::metadata(boot.path("buslock/SPI.lock")).unwrap();
        assert_eq!(lock.mode() & 0o777, 0o666, "order {order:?}");
        // Everyone gets the same lock, whoever holds it.
        same_lock(&boot, xdg.path(), order[0], &order[1..]);
        same_lock(&boot, xdg.path(), order[2], &order[..2]);
        // Users started before root now work too, and a lock file created by
        // a user (I2C) is one that root and the other user can use.
        for who in order {
            let args = ["run", "I2C", "--", "true"];
            let out = boot.run(who, xdg.path(), &args);
            assert_eq!(
                out.code(),
                0,
                "order {order:?}: {}",
                describe(who, &args, &out)
            );
        }
        no_split(&boot, xdg.path());
    }
}

#[test]
fn with_the_admins_group_setup_members_and_root_share_and_others_are_told_why() {
    skip_unless_supported!(
        "with_the_admins_group_setup_members_and_root_share_and_others_are_told_why"
    );
    let xdg = xdg_dir();
    for order in orders() {
        let boot = Boot::new();
        boot.admin_setup();
        for who in order {
            let args = ["run", "SPI", "--", "true"];
            let out = boot.run(who, xdg.path(), &args);
            if who == Who::Other {
                assert_eq!(
                    out.code(),
                    3,
                    "order {order:?}: {}",
                    describe(who, &args, &out)
                );
                // Told which group to join, for taking and for looking.
                let advice = format!("`sudo usermod -aG {GROUP} USER`");
                assert!(
                    out.stderr.contains("/run/lock/buslock") && out.stderr.contains(&advice),
                    "{}",
                    describe(who, &args, &out)
                );
                let out = boot.run(who, xdg.path(), &["list"]);
                assert_eq!(out.code(), 3, "{}", describe(who, &["list"], &out));
                assert!(
                    out.stderr.contains(&advice),
                    "{}",
                    describe(who, &["list"], &out)
                );
            } else {
                assert_eq!(
                    out.code(),
                    0,
                    "order {order:?}: {}",
                    describe(who, &args, &out)
                );
            }
            no_split(&boot, xdg.path());
        }
        let md = fs::metadata(boot.path("buslock")).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, GROUP), "the setup was changed");
        assert_eq!(md.mode() & 0o7777, 0o2770, "the setup was changed");
        let lock = fs::metadata(boot.path("buslock/SPI.lock")).unwrap();
        assert_eq!(lock.gid(), GROUP, "lock files belong to the group");
        assert_eq!(lock.mode() & 0o777, 0o660);
        same_lock(&boot, xdg.path(), Who::Root, &[Who::Pi]);
        same_lock(&boot, xdg.path(), Who::Pi, &[Who::Root]);
    }
}

#[test]
fn a_directory_made_by_a_user_before_root_is_refused_by_everyone() {
    skip_unless_supported!("a_directory_made_by_a_user_before_root_is_refused_by_everyone");
    let xdg = xdg_dir();
    for taker in [Who::Pi, Who::Other] {
        let boot = Boot::new();
        // The user makes the directory by hand (older buslock versions did
        // it for `list`); it would let them delete everyone's lock files.
        let out = run({
            let mut mk = boot.as_user(taker);
            mk.args(["mkdir", "-m", "1777", "/run/lock/buslock"]);
            mk
        });
        assert!(out.status.success(), "{out:?}");
        for who in EVERYONE {
            let args = ["run", "SPI", "--", "true"];
            let out = boot.run(who, xdg.path(), &args);
            assert_eq!(out.code(), 3, "{}", describe(who, &args, &out));
            assert!(
                out.stderr.contains("not root") && out.stderr.contains("rm -r /run/lock/buslock"),
                "{}",
                describe(who, &args, &out)
            );
        }
        assert!(fs::read_dir(boot.path("buslock")).unwrap().next().is_none());
        no_split(&boot, xdg.path());
    }
}

#[test]
fn relative_buslock_dir_is_refused_with_a_clear_error() {
    // Needs no root: a plain user's run.
    let top = tempfile::tempdir().unwrap();
    fs::create_dir(top.path().join("locks")).unwrap();
    let out = run({
        let mut c = support::buslock(std::path::Path::new("locks"));
        c.args(["run", "SPI", "--", "true"]).current_dir(top.path());
        c
    });
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(
        out.stderr.contains(
            "BUSLOCK_DIR 'locks' is a relative path: programs started in different directories \
             would silently use different locks; set it to an absolute path"
        ),
        "{out:?}"
    );
    assert!(
        fs::read_dir(top.path().join("locks"))
            .unwrap()
            .next()
            .is_none(),
        "a lock file was created in the relative directory"
    );
}
