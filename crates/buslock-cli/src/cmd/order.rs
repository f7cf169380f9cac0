//! `buslock order [--json] [--reset]`: the lock order learned in a lock
//! directory, every inversion with its witnesses, and clearing it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use buslock::LockDir;
use buslock::escape;
use buslock::lockdep::{self, REGISTRY_FILE, Registry, Witness, WitnessKind};
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::model::print_json;
use crate::render::{plural, timestamp, unix_seconds};

#[derive(Serialize)]
struct WitnessJson {
    /// `edge` (first taken) or `refused` (`error` mode refused it).
    kind: &'static str,
    from: String,
    to: String,
    pid: u32,
    tid: u32,
    program: String,
    /// Unix seconds.
    at: f64,
    /// Locks of this directory the thread held, oldest first.
    held: Vec<String>,
}

impl From<&Witness> for WitnessJson {
    fn from(w: &Witness) -> Self {
        WitnessJson {
            kind: match w.kind {
                WitnessKind::Edge => "edge",
                WitnessKind::Refused => "refused",
            },
            from: w.from.clone(),
            to: w.to.clone(),
            pid: w.pid,
            tid: w.tid,
            program: w.program.clone(),
            at: unix_seconds(w.at),
            held: w.held.clone(),
        }
    }
}

#[derive(Serialize)]
struct OrderJson {
    from: String,
    to: String,
    /// It closed a cycle when it was first taken.
    inverts: bool,
    /// `null` once the witness ring has overwritten it.
    witness: Option<WitnessJson>,
}

#[derive(Serialize)]
struct InversionJson {
    cycle: Vec<String>,
    witnesses: Vec<WitnessJson>,
    report: String,
}

#[derive(Serialize)]
struct OrderDoc {
    dir: String,
    registry: String,
    /// Whether a registry exists yet.
    exists: bool,
    reset: bool,
    locks: Vec<String>,
    orders: Vec<OrderJson>,
    inversions: Vec<InversionJson>,
}

fn who(w: &Witness) -> String {
    format!(
        "'{}' (pid {}, tid {}) at {}",
        escape(&w.program),
        w.pid,
        w.tid,
        timestamp(w.at)
    )
}

/// Print the graph and its inversions; with `reset`, clear it first
/// (under the registry lock), reinitialising a corrupted registry.
pub fn run(dir: Option<&Path>, json: bool, reset: bool) -> Result<ExitCode, CliError> {
    let dir = LockDir::resolve(dir)?;
    let path = dir.path().join(REGISTRY_FILE);
    if reset {
        match Registry::open(&dir, false) {
            Ok(Some(reg)) => reg.reset()?,
            Ok(None) => {}
            Err(buslock::Error::Lockdep { .. }) => Registry::reinitialise(&dir)?,
            Err(e) => return Err(e.into()),
        }
    }
    let reg = Registry::open(&dir, false)?;
    let shown_dir = dir.path().display().to_string();
    let mut doc = OrderDoc {
        dir: shown_dir.clone(),
        registry: path.display().to_string(),
        exists: reg.is_some(),
        reset,
        locks: Vec::new(),
        orders: Vec::new(),
        inversions: Vec::new(),
    };
    let mut witnesses = Vec::new();
    if let Some(reg) = &reg {
        let graph = reg.graph();
        witnesses = reg.witnesses();
        doc.locks = graph.classes.clone();
        for &(f, t) in &graph.edges {
            let (from, to) = (&graph.classes[f as usize], &graph.classes[t as usize]);
            let w = witnesses
                .iter()
                .find(|w| w.kind == WitnessKind::Edge && &w.from == from && &w.to == to);
            doc.orders.push(OrderJson {
                from: from.clone(),
                to: to.clone(),
                inverts: graph.cyclic.contains(&(f, t)),
                witness: w.map(WitnessJson::from),
            });
        }
        for inv in lockdep::inversions(reg, &shown_dir) {
            doc.inversions.push(InversionJson {
                cycle: inv.cycle,
                witnesses: inv.witnesses.iter().map(WitnessJson::from).collect(),
                report: inv.report,
            });
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        print_json(&mut out, &doc)?;
        return Ok(ExitCode::from(exit::OK));
    }
    if reset {
        writeln!(out, "lock order of '{}' reset", escape(&shown_dir))?;
    }
    if !doc.exists {
        writeln!(
            out,
            "no lock order recorded in '{}' yet: no program has nested buslock locks there",
            escape(&shown_dir)
        )?;
        return Ok(ExitCode::from(exit::OK));
    }
    writeln!(
        out,
        "lock order in '{}' ({}, {}):",
        escape(&shown_dir),
        plural(doc.locks.len() as u64, "lock"),
        plural(doc.orders.len() as u64, "order")
    )?;
    for o in &doc.orders {
        let (f, t) = (&o.from, &o.to);
        let w = witnesses
            .iter()
            .find(|w| w.kind == WitnessKind::Edge && &w.from == f && &w.to == t);
        let mark = if o.inverts { "  INVERTS" } else { "" };
        match w {
            Some(w) => writeln!(
                out,
                "  {f} -> {t}{mark}: first taken by {} holding {}",
                who(w),
                w.held.join(", ")
            )?,
            None => writeln!(out, "  {f} -> {t}{mark}: witness no longer in the ring")?,
        }
    }
    if doc.inversions.is_empty() {
        writeln!(out, "no inversions")?;
    } else {
        writeln!(out, "{}:", plural(doc.inversions.len() as u64, "inversion"))?;
        for inv in &doc.inversions {
            for line in inv.report.lines() {
                writeln!(out, "  {line}")?;
            }
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// What `buslock doctor` says about the directory's lock-order registry:
/// `(is a problem, message)` pairs.
pub fn doctor_notes(dir: &LockDir) -> Vec<(bool, String)> {
    let mut notes = Vec::new();
    match Registry::open(dir, false) {
        Ok(None) => notes.push((
            false,
            "no lock order recorded yet (no program nested buslock locks here); \
             `buslock order` will show it, `buslock waits` shows who waits for whom"
                .to_owned(),
        )),
        Ok(Some(reg)) => {
            let graph = reg.graph();
            let inversions = lockdep::inversions(&reg, &dir.path().display().to_string());
            notes.push((
                false,
                format!(
                    "registry '{}': {}, {}; `buslock order` shows them, `buslock waits` shows \
                     who waits for whom now",
                    escape(&reg.path().display().to_string()),
                    plural(graph.classes.len() as u64, "lock"),
                    plural(graph.edges.len() as u64, "order")
                ),
            ));
            if !inversions.is_empty() {
                notes.push((
                    true,
                    format!(
                        "{} recorded (possible deadlocks): see `buslock order`; fix the \
                         programs to take locks in one order, then `buslock order --reset`",
                        plural(inversions.len() as u64, "lock-order inversion")
                    ),
                ));
            }
        }
        Err(e) => notes.push((true, e.to_string())),
    }
    notes
}
