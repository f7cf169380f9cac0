//! `buslock`: see, trace, hold and run under a buslock mutex, and the demo.
//!
//! The binary is thin: [`cli`] parses, [`app::run`] does the work and
//! returns an exit code or an error, and [`main`] is the one place that
//! prints errors (`buslock: <message>`, through [`output`]) and maps them to the exit codes
//! documented in `docs/CLI.md` and [`exit`].

#![forbid(unsafe_code)]

mod app;
mod cli;
mod cmd;
mod demo;
mod error;
mod exit;
mod model;
mod output;
mod render;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match app::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if let Some(code) = err.quiet_exit() {
                return code;
            }
            output::report(&err.to_string());
            err.exit_code()
        }
    }
}
