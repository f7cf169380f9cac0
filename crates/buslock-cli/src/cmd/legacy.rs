//! What `state` shows about a lock's legacy companion (Dexter's lock file or
//! a `global_lock` semaphore): who holds it, as the kernel tells.

use std::path::Path;

use buslock::legacy::{Companion, LegacyHolder};
use serde::Serialize;

use crate::render::{Style, escape};

/// A legacy companion in `state --json`.
#[derive(Serialize)]
pub struct LegacyJson {
    /// "record-lock" or "semaphore".
    kind: &'static str,
    /// The file or the semaphore name.
    lock: String,
    /// "free", "buslock" (the holder above), "program" (one not using
    /// buslock, `pid`/`program` say which) or "unknown" (a program not
    /// using buslock; a semaphore does not record which).
    holder: &'static str,
    pid: Option<u32>,
    program: Option<String>,
}

/// The legacy companion recorded beside lock `name` (whose file is
/// `path`), and who holds it.
pub fn of(path: &Path, name: &str) -> Option<(Companion, LegacyHolder)> {
    let dir = path.parent()?;
    let companion = Companion::recorded(dir, name)?;
    let holder = companion.holder(dir, name).ok()?;
    Some((companion, holder))
}

pub fn json((c, h): &(Companion, LegacyHolder)) -> LegacyJson {
    let (kind, lock) = match c {
        Companion::RecordLock(p) => ("record-lock", p.display().to_string()),
        Companion::Semaphore(s) => ("semaphore", s.clone()),
    };
    let (holder, pid, program) = match h {
        LegacyHolder::Free => ("free", None, None),
        LegacyHolder::Buslock => ("buslock", None, None),
        LegacyHolder::Program { pid, name } => ("program", Some(*pid), name.clone()),
        LegacyHolder::Unknown => ("unknown", None, None),
    };
    LegacyJson {
        kind,
        lock,
        holder,
        pid,
        program,
    }
}

/// One line saying who holds the legacy companion; `held`: whether a
/// buslock user holds the mutex (and so has or waits for the companion).
pub fn text((c, h): &(Companion, LegacyHolder), held: bool, style: Style) -> String {
    let what = match c {
        Companion::RecordLock(p) => escape(&p.display().to_string()).into_owned(),
        Companion::Semaphore(s) => format!("semaphore {}", escape(s)),
    };
    let waits = if held {
        "; the holder above waits for it"
    } else {
        ""
    };
    let who = match h {
        LegacyHolder::Free if held => "free (the holder above is taking it)".to_owned(),
        LegacyHolder::Free => "free".to_owned(),
        LegacyHolder::Buslock => "held by the holder above".to_owned(),
        LegacyHolder::Program { pid, name } => style.warn(&format!(
            "held by pid {pid} ({}), a program not using buslock{waits}",
            escape(name.as_deref().unwrap_or("exited"))
        )),
        LegacyHolder::Unknown => style.warn(&format!(
            "taken by a program not using buslock (a semaphore does not record which){waits}"
        )),
    };
    format!("{what}: {who}")
}
