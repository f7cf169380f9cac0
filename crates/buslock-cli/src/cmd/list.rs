//! `buslock list`: every lock in the directory, like lslocks(8).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use buslock::{LockDir, LockView};
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::model::{HolderJson, LockState, print_json};
use crate::render::{self, Cell, Style, Table, escape};

/// One lock in `list --json`.
#[derive(Serialize)]
struct LockJson {
    name: String,
    path: String,
    /// "rwlock" for a readers-writer lock (whose holder is its writer);
    /// left out for a mutex.
    #[serde(skip_serializing_if = "super::shared::is_mutex")]
    kind: &'static str,
    state: LockState,
    holder: Option<HolderJson>,
    /// Readers of a readers-writer lock holding it now (left out for a
    /// mutex).
    #[serde(skip_serializing_if = "Option::is_none")]
    readers: Option<usize>,
    waiters: usize,
    acquisitions: u64,
    contended: u64,
    contention_ratio: f64,
    owner_died: u64,
}

/// A file that looks like a lock but cannot be used.
#[derive(Serialize)]
struct ProblemJson {
    file: String,
    path: String,
    error: String,
}

#[derive(Serialize)]
struct ListJson {
    dir: String,
    dir_source: &'static str,
    locks: Vec<LockJson>,
    problems: Vec<ProblemJson>,
}

/// Every `*.lock` entry of the directory, sorted, with the lock name when
/// the file name is a valid one.
fn lock_entries(dir: &LockDir) -> Result<Vec<(String, Option<String>)>, CliError> {
    let rd = std::fs::read_dir(dir.path()).map_err(CliError::io(format!(
        "list lock directory '{}'",
        dir.path().display()
    )))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix(".lock") {
            let name = buslock::validate_name(stem).ok().map(|()| stem.to_owned());
            out.push((file, name));
        }
    }
    out.sort();
    Ok(out)
}

/// List the locks of the directory and the files that cannot be read.
pub fn run(dir: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let dir = LockDir::resolve(dir)?;
    let mut locks = Vec::new();
    let mut problems = Vec::new();
    for (file, name) in lock_entries(&dir)? {
        let path = dir.path().join(&file);
        let Some(name) = name else {
            problems.push(ProblemJson {
                error: format!("'{file}' is not named like a lock (NAME.lock with a valid NAME)"),
                file,
                path: path.display().to_string(),
            });
            continue;
        };
        match LockView::open(&dir, &name) {
            Ok(m) => {
                let owner = m.owner()?;
                let stats = m.stats()?;
                locks.push(LockJson {
                    path: m.path().display().to_string(),
                    kind: m.kind(),
                    readers: (m.kind() != "mutex").then_some(m.readers()?.len()),
                    state: LockState::of(owner.as_ref()),
                    holder: owner.as_ref().map(HolderJson::from),
                    waiters: m.waiters()?.len(),
                    acquisitions: stats.acquisitions,
                    contended: stats.contended,
                    contention_ratio: stats.contention_ratio(),
                    owner_died: stats.owner_died,
                    name,
                });
            }
            Err(e) => problems.push(ProblemJson {
                file,
                path: path.display().to_string(),
                error: e.to_string(),
            }),
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let doc = ListJson {
            dir: dir.path().display().to_string(),
            dir_source: dir.source().describe(),
            locks,
            problems,
        };
        print_json(&mut out, &doc)?;
        return Ok(ExitCode::from(exit::OK));
    }
    let style = Style::detect();
    writeln!(
        out,
        "{} {} ({})",
        style.bold("lock directory"),
        escape(&dir.path().display().to_string()),
        dir.source().describe()
    )?;
    if locks.is_empty() && problems.is_empty() {
        writeln!(out, "no locks")?;
        return Ok(ExitCode::from(exit::OK));
    }
    if !locks.is_empty() {
        let mut t = Table::new(&[
            "NAME",
            "STATE",
            ">PID",
            "PROGRAM",
            ">HELD FOR",
            ">WAITERS",
            ">ACQUIRED",
            ">CONTENDED",
            ">DEATHS",
        ]);
        for l in &locks {
            let (pid, program, held) = match &l.holder {
                Some(h) => (
                    h.pid.to_string(),
                    h.program.clone(),
                    render::duration(std::time::Duration::from_secs_f64(h.held_for_ms / 1e3)),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let state = match l.state {
                LockState::Free if l.readers.is_some_and(|n| n > 0) => {
                    Cell::styled(format!("read by {}", l.readers.unwrap_or(0)), Style::warn)
                }
                LockState::Free => Cell::styled("free", Style::good),
                LockState::Held => Cell::styled("held", Style::warn),
                LockState::HolderDied => Cell::styled("died", Style::bad),
            };
            let deaths = if l.owner_died > 0 {
                Cell::styled(l.owner_died.to_string(), Style::bad)
            } else {
                Cell::new("0")
            };
            let name = match l.kind {
                "mutex" => l.name.clone(),
                kind => format!("{} ({kind})", l.name),
            };
            t.row(vec![
                name.into(),
                state,
                pid.into(),
                program.into(),
                held.into(),
                l.waiters.to_string().into(),
                l.acquisitions.to_string().into(),
                format!("{:.1}%", l.contention_ratio * 100.0).into(),
                deaths,
            ]);
        }
        out.write_all(t.render(style, "").as_bytes())?;
    }
    if !problems.is_empty() {
        writeln!(out, "{}", style.bad("unreadable lock files:"))?;
        for p in &problems {
            writeln!(out, "  {}: {}", escape(&p.file), escape(&p.error))?;
        }
    }
    Ok(ExitCode::from(exit::OK))
}
