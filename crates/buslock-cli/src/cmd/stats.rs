//! `buslock stats NAME [--reset]`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

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
    stats: StatsJson,
}

/// Print the statistics; with `--reset`, print them and then zero them.
pub fn run(dir: Option<&Path>, args: &StatsArgs) -> Result<ExitCode, CliError> {
    let m = super::open_existing(dir, &args.name)?;
    let stats = m.stats()?;
    if args.reset {
        // Wait for the lock interruptibly, then reset while holding it.
        let sig = Signals::install()?;
        let guard = super::acquire(&m, Some(args.timeout), &sig)?;
        guard.reset_stats();
        drop(guard);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = StatsDoc {
            name: args.name.clone(),
            reset: args.reset,
            stats: StatsJson::from(&stats),
        };
        print_json(&mut out, &doc)?;
    } else {
        out.write_all(super::state::stats_text(&stats, Style::detect()).as_bytes())?;
        if args.reset {
            writeln!(out, "statistics of lock '{}' reset", args.name)?;
        }
    }
    Ok(ExitCode::from(exit::OK))
}
