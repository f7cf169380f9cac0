//! `buslock run NAME [--timeout DUR] -- CMD ARGS...`: run a command while
//! holding a lock, like flock(1).
//!
//! The command runs in buslock's process group, so Ctrl-C at a terminal
//! reaches it directly; buslock itself ignores `SIGINT` while it runs and
//! forwards `SIGTERM` and `SIGHUP`. The lock is released only after the
//! command has exited.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use crate::cli::RunArgs;
use crate::error::CliError;
use crate::exit;
use crate::signals::{self, Signals};

/// How often the wait for the command checks for signals to forward.
const POLL: Duration = Duration::from_millis(5);

/// Take the lock, run the command, release, exit with its status.
pub fn run(dir: Option<&Path>, args: &RunArgs) -> Result<ExitCode, CliError> {
    let sig = Signals::install()?;
    // Others see the command, not `buslock`, as the holder.
    let label = Path::new(&args.command[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let m = super::open_for_locking(dir, &args.name, label.as_deref())?;
    let guard = super::acquire(&m, args.timeout, &sig)?;
    if guard.previous_owner_died() {
        eprintln!("buslock: {}", super::died_warning(&args.name));
    }
    let program = &args.command[0];
    let mut child = Command::new(program)
        .args(&args.command[1..])
        .env("BUSLOCK_LOCK", &args.name)
        .env(
            "BUSLOCK_PREVIOUS_OWNER_DIED",
            if guard.previous_owner_died() {
                "1"
            } else {
                "0"
            },
        )
        .spawn()
        .map_err(|source| CliError::Spawn {
            program: program.to_string_lossy().into_owned(),
            source,
        })?;
    let status = wait_forwarding(&mut child, &sig)?;
    drop(guard);
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => exit::SIGNAL_BASE.saturating_add(s as u8),
        (None, None) => exit::CANNOT_EXECUTE,
    };
    Ok(ExitCode::from(code))
}

/// Wait for `child`, forwarding `SIGTERM` and `SIGHUP` to it.
fn wait_forwarding(child: &mut Child, sig: &Signals) -> Result<std::process::ExitStatus, CliError> {
    let pid = Pid::from_child(child);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(CliError::io("wait for the command"))?
        {
            return Ok(status);
        }
        for (num, signal) in [(signals::TERM, Signal::TERM), (signals::HUP, Signal::HUP)] {
            if sig.take(num) {
                let _ = kill_process(pid, signal);
            }
        }
        // SIGINT: the terminal sent it to the child as well; just keep
        // waiting (and keep the lock) until the child is done.
        let _ = sig.take(signal_hook::consts::SIGINT);
        std::thread::sleep(POLL);
    }
}
