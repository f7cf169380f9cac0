//! `buslock hold NAME [--for DUR] [--timeout DUR]`: take a lock and keep it.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::HoldArgs;
use crate::error::CliError;
use crate::exit;
use crate::output;
use crate::render::{self, Style};
use crate::signals::Signals;

/// How often a hold checks for signals.
const POLL: Duration = Duration::from_millis(10);

/// Take the lock, say so on standard output, keep it until `--for` expires
/// or a signal arrives, release it.
///
/// A closed standard output never ends the hold early: the hold is what
/// was asked for, the messages are extra. That standard output failed is
/// said on standard error, and the warning that the previous holder died
/// always goes to standard error too.
pub fn run(dir: Option<&Path>, args: &HoldArgs) -> Result<ExitCode, CliError> {
    let sig = Signals::install()?;
    let side = super::shared::Side::of(args.read, args.write);
    let m = super::shared::open(dir, &args.name, None, side)?;
    let guard = super::shared::take(&m, args.timeout, &sig)?;
    let start = Instant::now();
    let style = Style::detect();
    let mut stdout_ok = true;
    let mut say = |text: String| {
        if !stdout_ok {
            return;
        }
        if let Err(e) = output::out(&text) {
            stdout_ok = false;
            output::report(&format!(
                "cannot write to standard output ({e}); still holding lock '{}'",
                args.name
            ));
        }
    };
    say(format!(
        "{} lock '{}' (pid {}, waited {}){}\n",
        side.verb(),
        args.name,
        std::process::id(),
        render::duration(guard.waited()),
        match args.for_ {
            Some(d) => format!(" for {}", render::duration(d)),
            None => "; Ctrl-C to release".to_owned(),
        }
    ));
    if guard.previous_owner_died() {
        let warning = super::died_warning(&args.name);
        say(format!("{}\n", style.bad(&warning)));
        output::report(&warning);
    }
    let ended_by = loop {
        if let Some(s) = sig.received() {
            break Some(s);
        }
        let left = args.for_.map(|d| d.saturating_sub(start.elapsed()));
        if left.is_some_and(|l| l.is_zero()) {
            break None;
        }
        std::thread::sleep(left.map_or(POLL, |l| l.min(POLL)));
    };
    drop(guard);
    say(format!(
        "released lock '{}' after {}{}\n",
        args.name,
        render::duration(start.elapsed()),
        ended_by.map_or(String::new(), |s| format!(" ({})", crate::signals::name(s)))
    ));
    Ok(ExitCode::from(exit::OK))
}
