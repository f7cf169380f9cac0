//! `buslock-torture`: crash torture and contention runs against a buslock
//! mutex, with real processes and real `SIGKILL`s.
//!
//! ```text
//! buslock-torture crash   --workers N --kills K --dir D [--hold-us H] [--pause-us P] [--gap-us G] [--stall-limit-ms S] [--sliced] [--abba]
//! buslock-torture contend --procs N --count C --dir D [--deadline-s S]
//! buslock-torture rwcrash --workers N --kills K --dir D [--hold-us H] [--gap-us G] [--stall-limit-ms S] [--seed X]
//! ```
//!
//! Both print a summary and exit 1 on any violation, 2 on a usage or setup
//! error. The subcommands starting with `__` are the worker and helper
//! processes the harnesses (and the integration tests) start by re-running
//! this binary; they are not meant to be run by hand.

#![forbid(unsafe_code)]

mod args;
mod clock;
mod contend;
mod crash;
mod futex;
mod helpers;
mod rwcrash;
mod shared;

use std::process::ExitCode;

use args::Args;

const USAGE: &str = "usage:
  buslock-torture crash   --workers N --kills K --dir D [--hold-us H] [--pause-us P] [--gap-us G] [--stall-limit-ms S] [--seed X] [--sliced] [--abba]
  buslock-torture contend --procs N --count C --dir D [--deadline-s S]
  buslock-torture rwcrash --workers N --kills K --dir D [--hold-us H] [--gap-us G] [--stall-limit-ms S] [--seed X]";

/// What a subcommand found: `Ok(true)` all checks passed, `Ok(false)` a
/// violation was found (already printed).
type Outcome = Result<bool, String>;

fn run(cmd: &str, args: &Args) -> Outcome {
    match cmd {
        "crash" => crash::run(&crash::Config::from_args(args)?),
        "contend" => contend::run(&contend::Config::from_args(args)?),
        "rwcrash" => rwcrash::run(&rwcrash::Config::from_args(args)?),
        "__rw-worker" => rwcrash::worker(args).map(|()| true),
        "__crash-worker" => crash::worker::run(args).map(|()| true),
        "__contend-worker" => contend::worker(args).map(|()| true),
        "__hold" => helpers::hold(args).map(|()| true),
        "__wait" => helpers::wait(args).map(|()| true),
        "__open" => helpers::open_helper(args),
        _ => Err(format!("unknown command {cmd:?}\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(cmd) = argv.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("buslock-torture: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&cmd, &args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("buslock-torture {cmd}: {e}");
            ExitCode::from(2)
        }
    }
}
