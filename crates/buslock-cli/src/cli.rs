//! Command-line arguments, parsed with clap.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Parse `250ms`, `2s`, `1m`, `1h 30m`.
fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// A named, crash-safe, fair, system-wide mutex for processes sharing a bus.
///
/// Exit codes: 0 ok (state: free), 1 state: held, 2 usage, 3 lock or
/// directory error, 4 timeout, 130 interrupted by Ctrl-C (128+signal), and
/// `run` exits with its command's status.
#[derive(Debug, Parser)]
#[command(
    name = "buslock",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Lock directory [default: $BUSLOCK_DIR (an absolute path), else
    /// /run/lock/buslock]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every lock in the directory: state, holder, waiters, contention.
    List(JsonArg),
    /// One lock in full: holder, waiters, statistics and histograms.
    /// Exits 0 when free, 1 when held. Never takes the lock.
    State(NameJson),
    /// Live trace of a lock: one line per hold, and a periodic summary.
    Watch(WatchArgs),
    /// Take a lock and keep it for a while or until Ctrl-C / SIGTERM.
    Hold(HoldArgs),
    /// Run a command while holding a lock, like flock(1).
    Run(RunArgs),
    /// Contention statistics of a lock; --reset zeroes them.
    Stats(StatsArgs),
    /// Check the lock directory and every lock file, and say what to fix.
    Doctor(JsonArg),
    /// The lock order learned in the directory and every inversion, with
    /// who took each order and when; --reset forgets it.
    Order(OrderArgs),
    /// Who waits for which lock, held by whom, who in turn waits; deadlock
    /// cycles flagged (exit 1).
    Waits(JsonArg),
    /// Three workers share a simulated SPI bus; one is killed holding it.
    Demo(DemoArgs),
    /// A demo worker (started by `buslock demo`).
    #[command(name = "__demo-worker", hide = true)]
    DemoWorker(WorkerArgs),
}

/// `--json` alone.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON (stable shape, see docs/CLI.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A lock name and `--json`.
#[derive(Debug, Args)]
pub struct NameJson {
    /// Lock name (SPI, I2C-1, ...).
    pub name: String,
    /// Print JSON (stable shape, see docs/CLI.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Lock name.
    pub name: String,
    /// Print a summary line this often (e.g. 500ms, 2s); 0 for never.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = duration)]
    pub interval: Duration,
    /// Stop after N completed holds.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this long.
    #[arg(long = "for", value_name = "DUR", value_parser = duration)]
    pub for_: Option<Duration>,
    /// Print one JSON object per line (JSON Lines).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hold`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// Lock name, or a bus device node (/dev/spidev0.1 locks spi0, /dev/i2c-1
    /// locks i2c-1).
    pub name: String,
    /// Keep the lock this long (default: until Ctrl-C or SIGTERM).
    #[arg(long = "for", value_name = "DUR", value_parser = duration)]
    pub for_: Option<Duration>,
    /// Give up (exit 4) if the lock is not free within DUR.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub timeout: Option<Duration>,
    /// NAME is a readers-writer lock: take a shared (read) hold.
    #[arg(long, conflicts_with = "write")]
    pub read: bool,
    /// NAME is a readers-writer lock: hold it alone (to write), once its
    /// readers have left.
    #[arg(long)]
    pub write: bool,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Lock name, or a bus device node (/dev/spidev0.1 locks spi0, /dev/i2c-1
    /// locks i2c-1).
    pub name: String,
    /// Give up (exit 4) if the lock is not free within DUR.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub timeout: Option<Duration>,
    /// NAME is a readers-writer lock: run with a shared (read) hold.
    #[arg(long, conflicts_with = "write")]
    pub read: bool,
    /// NAME is a readers-writer lock: run holding it alone (to write),
    /// once its readers have left.
    #[arg(long)]
    pub write: bool,
    /// The command and its arguments (put them after `--`).
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Lock name.
    pub name: String,
    /// Zero the statistics (takes the lock briefly).
    #[arg(long)]
    pub reset: bool,
    /// Give up (exit 4) if --reset cannot take the lock within DUR.
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "5s")]
    pub timeout: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `order`.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Forget every recorded order and inversion (under the registry's
    /// lock; reinitialises a corrupted registry).
    #[arg(long)]
    pub reset: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of worker processes (1 to 8).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub workers: u32,
    /// How long the workers run.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = duration)]
    pub duration: Duration,
    /// How long one bus transaction holds the lock.
    #[arg(long, value_name = "DUR", default_value = "20ms", value_parser = duration)]
    pub hold: Duration,
    /// Do not kill a worker while it holds the bus.
    #[arg(long)]
    pub no_kill: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the hidden demo worker.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Worker name (motor, battery, ...).
    #[arg(long)]
    pub worker: String,
    /// Worker id written on the bus (1-based).
    #[arg(long)]
    pub id: u64,
    /// Lock name.
    #[arg(long)]
    pub lock: String,
    /// Simulated bus file.
    #[arg(long)]
    pub bus: PathBuf,
    /// Log file, one line per transaction.
    #[arg(long)]
    pub log: PathBuf,
    /// Common time origin, ns since the Unix epoch.
    #[arg(long)]
    pub epoch_ns: u64,
    /// Stop at this time, ns since the Unix epoch.
    #[arg(long)]
    pub until_ns: u64,
    /// Hold time per transaction.
    #[arg(long, value_parser = duration)]
    pub hold: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
