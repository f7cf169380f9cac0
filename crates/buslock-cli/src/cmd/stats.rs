//! `buslock stats NAME [--reset]`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use buslock::{LockName, RwLock, Wait};
use serde::Serialize;

use crate::cli::StatsArgs;
use crate::error::CliError;
use crate::exit;
use crate::model::{StatsJson, print_json};
use crate::render::Style;
use crate::signals::Signals;

#[derive(Serialize)]
struct StatsDoc {
    name: String,
    reset: bool,
    /// For a readers-writer lock, its writes.
    stats: StatsJson,
    /// A readers-writer lock's read side (absent for a mutex, whose JSON
    /// stays as it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    reads: Option<ReadsJson>,
}

/// The read side of a readers-writer lock's statistics.
#[derive(Serialize)]
struct ReadsJson {
    /// Read acquisitions.
    acquisitions: u64,
    /// Read acquisitions that waited.
    contended: u64,
    /// Sum of read waits.
    total_wait_ns: u64,
    /// Read waits that gave up at their timeout.
    timeouts: u64,
    /// Readers found dead holding it (their shares freed).
    reader_deaths: u64,
    /// Writers that died holding it, as told to the next holder (the
    /// same number as `stats.owner_died`).
    writer_deaths: u64,
}

impl From<&buslock::RwStats> for ReadsJson {
    fn from(r: &buslock::RwStats) -> Self {
        ReadsJson {
            acquisitions: r.reads,
            contended: r.reads_contended,
            total_wait_ns: crate::model::ns_of(r.read_wait),
            timeouts: r.read_timeouts,
            reader_deaths: r.reader_deaths,
            writer_deaths: r.writer_deaths,
        }
    }
}

/// Print the statistics; with `--reset`, take the lock, read them, zero
/// them, and print what was read.
pub fn run(dir: Option<&Path>, args: &StatsArgs) -> Result<ExitCode, CliError> {
    let name = LockName::new(&args.name)?;
    let view = super::open_existing(dir, &name)?;
    let (stats, reads) = if !args.reset {
        (view.stats()?, view.rw_stats()?)
    } else if view.kind() == "rwlock" {
        let s = reset_rwlock(dir, &name, args)?;
        (s.writes.clone(), Some(s))
    } else {
        (reset_mutex(dir, &name, args)?, None)
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = StatsDoc {
            name: args.name.clone(),
            reset: args.reset,
            stats: StatsJson::from(&stats),
            reads: reads.as_ref().map(ReadsJson::from),
        };
        print_json(&mut out, &doc)?;
    } else {
        out.write_all(super::state::stats_text(&stats, Style::detect()).as_bytes())?;
        if let Some(r) = reads {
            // A readers-writer lock: the figures above are its writes.
            out.write_all(super::shared::read_stats_text(&r).as_bytes())?;
        }
        if args.reset {
            writeln!(out, "statistics of lock '{}' reset", args.name)?;
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// Wait for the mutex interruptibly; under it, take the snapshot that is
/// printed and reset, so that no acquisition falls between.
fn reset_mutex(
    dir: Option<&Path>,
    name: &LockName,
    args: &StatsArgs,
) -> Result<buslock::Stats, CliError> {
    let m = super::open_existing_mutex(dir, name)?;
    let sig = Signals::install()?;
    let guard = super::acquire(&m, Some(args.timeout), &sig)?;
    let stats = m.stats()?;
    guard.reset_stats();
    Ok(stats)
}

/// The same for a readers-writer lock, under a write hold: both sides'
/// figures are read and zeroed with no reader or writer in between.
fn reset_rwlock(
    dir: Option<&Path>,
    name: &LockName,
    args: &StatsArgs,
) -> Result<buslock::RwStats, CliError> {
    let mut builder = RwLock::builder(name.as_str()).create(false);
    if let Some(dir) = dir {
        builder = builder.dir(dir);
    }
    let rw = builder.open()?;
    let sig = Signals::install()?;
    let mut interrupted = || sig.received_any(|_| true).is_some();
    let got = rw.acquire_write(Wait::Interruptible {
        timeout: Some(args.timeout),
        interrupted: &mut interrupted,
    });
    let guard = super::waited(got, rw.name(), Some(args.timeout), &sig, || {
        Ok(super::shared::describe_rw_holders(&rw))
    })?;
    let stats = rw.stats();
    guard.reset_stats();
    Ok(stats)
}
