//! `buslock doctor`: check the lock directory and every lock file, and say
//! what to fix. Read-only: it opens existing lock files only and never
//! takes a lock.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::ExitCode;

use buslock::{LockDir, LockView, ProcessState};
use rustix::fs::Access;
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::model::print_json;
use crate::render::{Style, escape};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Level {
    Ok,
    Info,
    Warn,
    Error,
}

#[derive(Serialize)]
struct Check {
    subject: String,
    level: Level,
    message: String,
}

#[derive(Serialize)]
struct DoctorJson {
    dir: Option<String>,
    dir_source: Option<&'static str>,
    checks: Vec<Check>,
    problems: usize,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, subject: impl Into<String>, level: Level, message: impl Into<String>) {
        self.checks.push(Check {
            subject: subject.into(),
            level,
            message: message.into(),
        });
    }

    fn problems(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| matches!(c.level, Level::Warn | Level::Error))
            .count()
    }
}

/// Name of uid/gid from `/etc/passwd` or `/etc/group`, else the number.
fn id_name(db: &str, id: u32) -> String {
    std::fs::read_to_string(db)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next();
                (f.next()?.parse::<u32>().ok()? == id).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| id.to_string())
}

fn check_dir(dir: &LockDir, r: &mut Report) {
    let path = dir.path();
    let subject = "directory";
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            r.add(
                subject,
                Level::Error,
                format!("cannot stat '{}': {e}", path.display()),
            );
            return;
        }
    };
    let mode = meta.mode() & 0o7777;
    let (uid, gid) = (meta.uid(), meta.gid());
    r.add(
        subject,
        Level::Ok,
        format!(
            "'{}' exists, mode {mode:04o}, owner {}, group {}",
            path.display(),
            id_name("/etc/passwd", uid),
            id_name("/etc/group", gid)
        ),
    );
    if mode & 0o002 != 0 {
        if mode & 0o1000 != 0 {
            r.add(
                subject,
                Level::Ok,
                "world-writable with the sticky bit (like /tmp)",
            );
        } else {
            r.add(
                subject,
                Level::Error,
                format!(
                    "world-writable without the sticky bit: anyone can delete or replace lock \
                     files; fix: chmod +t '{}'",
                    path.display()
                ),
            );
        }
    } else if mode & 0o020 != 0 {
        if mode & 0o2000 != 0 {
            r.add(
                subject,
                Level::Ok,
                "group-writable with setgid: lock files get the group",
            );
        } else {
            r.add(
                subject,
                Level::Warn,
                format!(
                    "group-writable without setgid: new lock files get their creator's group \
                     and other group members may not open them; fix: chmod g+s '{}'",
                    path.display()
                ),
            );
        }
    } else {
        r.add(
            subject,
            Level::Info,
            "private to its owner: only this user's programs share these locks",
        );
    }
    match rustix::fs::access(path, Access::WRITE_OK | Access::EXEC_OK) {
        Ok(()) => r.add(subject, Level::Ok, "you can create lock files in it"),
        Err(e) => r.add(
            subject,
            Level::Error,
            format!(
                "you cannot create lock files in it ({e}); fix: {}",
                access_fix(path, mode, gid)
            ),
        ),
    }
    match std::fs::read_to_string("/proc/sys/fs/protected_regular") {
        Ok(v) => {
            let v = v.trim();
            let sticky_shared = mode & 0o1000 != 0 && mode & 0o022 != 0;
            let note = if v != "0" && sticky_shared {
                "; buslock never opens existing lock files with O_CREAT, so other users' lock \
                 files here still open"
            } else {
                ""
            };
            r.add(
                subject,
                Level::Info,
                format!("fs.protected_regular = {v}{note}"),
            );
        }
        Err(_) => r.add(
            subject,
            Level::Info,
            "fs.protected_regular unknown (no /proc/sys)",
        ),
    }
}

/// Advice for a user who may not create files in the lock directory that
/// can work: joining a group helps only if the group may write there, and
/// the `root` group is never the answer.
fn access_fix(path: &Path, mode: u32, gid: u32) -> String {
    let group = id_name("/etc/group", gid);
    if mode & 0o020 != 0 && gid != 0 {
        format!(
            "add your user to group {group} (then log in again), or set BUSLOCK_DIR to a \
             directory of your own"
        )
    } else {
        format!(
            "ask the admin to give the lock directory to the bus users' group (as root: \
             chgrp GROUP '{0}' && chmod 2770 '{0}', see dist/buslock.conf), or set \
             BUSLOCK_DIR to a directory of your own",
            path.display()
        )
    }
}

/// Which process, if any, runs in the PID namespace with inode `ns`.
enum NsUse {
    /// This process does.
    Used(u32),
    /// None of the processes this system shows.
    Unused,
    /// None of those we could inspect; others could not be inspected.
    Unknown,
}

fn pid_namespace_use(ns: u64) -> NsUse {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return NsUse::Unknown;
    };
    let mut unreadable = false;
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        match std::fs::metadata(format!("/proc/{pid}/ns/pid")) {
            Ok(m) if m.ino() == ns => return NsUse::Used(pid),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => unreadable = true,
        }
    }
    if unreadable {
        NsUse::Unknown
    } else {
        NsUse::Unused
    }
}

fn check_lock(dir: &LockDir, file: &str, name: &str, meta: &std::fs::Metadata, r: &mut Report) {
    let m = match LockView::open(dir, name) {
        Ok(m) => m,
        Err(e) => {
            let advice = match &e {
                buslock::Error::PidNamespace { path, found, .. } => {
                    Some(match pid_namespace_use(*found) {
                        NsUse::Used(pid) => format!(
                            "pid {pid} runs in that PID namespace and may use the lock: give \
                             the container its own lock directory"
                        ),
                        NsUse::Unused => format!(
                            "no process runs in that PID namespace any more, so nothing can \
                             be using this file; fix: rm '{}'",
                            path.display()
                        ),
                        NsUse::Unknown => format!(
                            "no process this user can inspect runs in that PID namespace; if \
                             the container that created the file is gone, remove it: rm '{}'",
                            path.display()
                        ),
                    })
                }
                _ => None,
            };
            r.add(file, Level::Error, e.to_string());
            if let Some(advice) = advice {
                r.add(file, Level::Info, advice);
            }
            return;
        }
    };
    let stale = m.stale_waiters().map(|w| w.len()).unwrap_or(0);
    let owner = m.owner().ok().flatten();
    let readers = m.readers().map(|r| r.len()).unwrap_or(0);
    let state = match &owner {
        None if readers > 0 => format!("read by {readers}"),
        None => "free".to_owned(),
        Some(o) if o.is_alive() => format!("held by {:#}", o.unescaped()),
        Some(_) => "free (holder died)".to_owned(),
    };
    let kind = match m.kind() {
        "mutex" => String::new(),
        kind => format!(" ({kind})"),
    };
    r.add(
        file,
        Level::Ok,
        format!("valid lock file{kind} (layout, ABI and PID namespace match), {state}"),
    );
    if let Some(o) = owner.as_ref().filter(|o| !o.is_alive()) {
        r.add(
            file,
            Level::Warn,
            format!(
                "its holder pid {} ({}) no longer exists ({}): the lock is free and the next \
                 holder is told that the previous owner died; check that program's logs",
                o.pid,
                o.program,
                o.state.as_str()
            ),
        );
    }
    if let Some(o) = owner.as_ref().filter(|o| o.state == ProcessState::Stopped) {
        r.add(
            file,
            Level::Warn,
            format!(
                "its holder pid {} ({}) is stopped (Ctrl-Z, SIGSTOP or a debugger) and keeps \
                 the lock until it continues; every other user of the lock waits; fix: kill \
                 -CONT {} (or end it)",
                o.pid, o.program, o.pid
            ),
        );
    }
    if owner.as_ref().is_some_and(|o| o.torn) {
        r.add(
            file,
            Level::Warn,
            "its owner record is torn (a holder died while writing it); the next holder repairs it",
        );
    }
    if stale > 0 {
        r.add(
            file,
            Level::Warn,
            format!(
                "{stale} waiter slot(s) of processes that no longer exist; the next \
                 acquisition clears them"
            ),
        );
    }
    let dir_mode = std::fs::metadata(dir.path()).map_or(0, |m| m.mode());
    let mode = meta.mode() & 0o777;
    let needs = buslock::lockfile::lock_file_mode(dir_mode);
    if mode & needs != needs {
        r.add(
            file,
            Level::Warn,
            format!(
                "mode {mode:04o}, but the directory is shared: other users of the lock cannot \
                 open it; fix: chmod {needs:o} '{}'",
                dir.path().join(file).display()
            ),
        );
    }
}

fn check_files(dir: &LockDir, r: &mut Report) {
    let entries = match std::fs::read_dir(dir.path()) {
        Ok(rd) => {
            let mut v: Vec<_> = rd.flatten().collect();
            v.sort_by_key(|e| e.file_name());
            v
        }
        Err(e) => {
            r.add("directory", Level::Error, format!("cannot list it: {e}"));
            return;
        }
    };
    let mut locks = 0;
    for entry in entries {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file == buslock::lockdep::REGISTRY_FILE {
            continue; // checked under "lock order"
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        let lockish = file.ends_with(".lock");
        if ft.is_symlink() {
            r.add(
                &file,
                Level::Error,
                format!(
                    "symbolic link{}: buslock never follows links in the lock directory; \
                     fix: rm '{}' if nobody placed it on purpose",
                    std::fs::read_link(&path)
                        .map(|t| format!(" to '{}'", t.display()))
                        .unwrap_or_default(),
                    path.display()
                ),
            );
            continue;
        }
        if !lockish {
            r.add(
                &file,
                Level::Info,
                "not a lock file (no .lock suffix); ignored",
            );
            continue;
        }
        if !ft.is_file() {
            let kind = if ft.is_dir() {
                "directory"
            } else if ft.is_fifo() {
                "FIFO"
            } else if ft.is_socket() {
                "socket"
            } else {
                "special file"
            };
            r.add(
                &file,
                Level::Error,
                format!(
                    "a {kind}, not a lock file; fix: remove '{}'",
                    path.display()
                ),
            );
            continue;
        }
        let stem = file.trim_end_matches(".lock");
        if buslock::validate_name(stem).is_err() {
            r.add(
                &file,
                Level::Warn,
                "not a valid lock name; buslock ignores it; fix: rename or remove it",
            );
            continue;
        }
        locks += 1;
        check_lock(dir, &file, stem, &meta, r);
    }
    if locks == 0 {
        r.add("lock files", Level::Info, "no lock files yet");
    }
}

/// Run every check; exit 0 when nothing needs fixing, 1 otherwise.
pub fn run(dir: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let mut r = Report::default();
    let resolved = match LockDir::resolve(dir) {
        Ok(d) => {
            r.add(
                "directory",
                Level::Ok,
                format!("resolved ({})", d.source().describe()),
            );
            check_dir(&d, &mut r);
            check_files(&d, &mut r);
            for (problem, message) in super::order::doctor_notes(&d) {
                let level = if problem { Level::Warn } else { Level::Info };
                r.add("lock order", level, message);
            }
            Some(d)
        }
        Err(e) => {
            r.add("directory", Level::Error, e.to_string());
            None
        }
    };
    let problems = r.problems();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = DoctorJson {
            dir: resolved.as_ref().map(|d| d.path().display().to_string()),
            dir_source: resolved.as_ref().map(|d| d.source().describe()),
            checks: r.checks,
            problems,
        };
        print_json(&mut out, &doc)?;
    } else {
        let style = Style::detect();
        for c in &r.checks {
            let level = match c.level {
                Level::Ok => style.good("ok   "),
                Level::Info => style.dim("info "),
                Level::Warn => style.warn("warn "),
                Level::Error => style.bad("error"),
            };
            writeln!(
                out,
                "{level}  {}: {}",
                style.bold(&escape(&c.subject)),
                escape(&c.message)
            )?;
        }
        if problems == 0 {
            writeln!(out, "{}", style.good("no problems found"))?;
        } else {
            writeln!(
                out,
                "{}",
                style.bad(&format!("{problems} problem(s) found"))
            )?;
        }
    }
    Ok(ExitCode::from(if problems == 0 {
        exit::OK
    } else {
        exit::HELD
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_for_an_unwritable_directory_never_names_group_root() {
        let dir = Path::new("/run/lock/buslock");
        let advice = access_fix(dir, 0o755, 0);
        assert!(!advice.contains("group root"), "{advice}");
        assert!(
            advice.contains("chmod 2770 '/run/lock/buslock'"),
            "{advice}"
        );
        // Group-writable but owned by group root: joining root is no fix.
        assert!(!access_fix(dir, 0o775, 0).contains("group root"));
        // A group that may write there: joining it works.
        let gid = 4242; // not in /etc/group: shown as the number
        assert!(access_fix(dir, 0o2770, gid).starts_with("add your user to group 4242"));
        // Not group-writable: joining the group would not help.
        assert!(!access_fix(dir, 0o755, gid).contains("add your user"));
    }
}
