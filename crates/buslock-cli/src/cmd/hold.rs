//! `buslock hold NAME [--for DUR] [--timeout DUR]`: take a lock and keep it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::HoldArgs;
use crate::error::CliError;
use crate::exit;
use crate::render::{self, Style};
use crate::signals::Signals;

/// How often a hold checks for its end.
const POLL: Duration = Duration::from_millis(10);

/// Take the lock, say so on standard output, keep it until `--for` expires
/// or a signal arrives, release it.
pub fn run(dir: Option<&Path>, args: &HoldArgs) -> Result<ExitCode, CliError> {
    let sig = Signals::install()?;
    let m = super::open_for_locking(dir, &args.name, None)?;
    let guard = super::acquire(&m, args.timeout, &sig)?;
    let start = Instant::now();
    let style = Style::detect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "holding lock '{}' (pid {}, waited {}){}",
        args.name,
        std::process::id(),
        render::duration(guard.waited()),
        match args.for_ {
            Some(d) => format!(" for {}", render::duration(d)),
            None => "; Ctrl-C to release".to_owned(),
        }
    )?;
    if guard.previous_owner_died() {
        writeln!(out, "{}", style.bad(&super::died_warning(&args.name)))?;
    }
    out.flush()?;
    let ended_by = loop {
        if let Some(s) = sig.received() {
            break Some(s);
        }
        if args.for_.is_some_and(|d| start.elapsed() >= d) {
            break None;
        }
        std::thread::sleep(POLL);
    };
    drop(guard);
    writeln!(
        out,
        "released lock '{}' after {}{}",
        args.name,
        render::duration(start.elapsed()),
        ended_by.map_or(String::new(), |s| format!(" ({})", crate::signals::name(s)))
    )?;
    Ok(ExitCode::from(exit::OK))
}
