//! Dispatch: one function per subcommand, each returning the exit code.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::cmd;
use crate::demo;
use crate::error::CliError;

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let dir = cli.dir.as_deref();
    match cli.command {
        Command::List(a) => cmd::list::run(dir, a.json),
        Command::State(a) => cmd::state::run(dir, &cmd::lock_name(&a.name)?, a.json),
        Command::Watch(a) => cmd::watch::run(dir, &a),
        Command::Hold(mut a) => {
            a.name = cmd::lock_name(&a.name)?.into();
            cmd::hold::run(dir, &a)
        }
        Command::Run(mut a) => {
            a.name = cmd::lock_name(&a.name)?.into();
            cmd::run::run(dir, &a)
        }
        Command::Stats(a) => cmd::stats::run(dir, &a),
        Command::Doctor(a) => cmd::doctor::run(dir, a.json),
        Command::Order(a) => cmd::order::run(dir, a.json, a.reset),
        Command::Waits(a) => cmd::waits::run(dir, a.json),
        Command::Demo(a) => demo::run(dir, &a),
        Command::DemoWorker(a) => demo::worker::run(dir, &a),
    }
}
