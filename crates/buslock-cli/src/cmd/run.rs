//! `buslock run NAME [--timeout DUR] -- CMD ARGS...`: run a command while
//! holding a lock.
//!
//! The lock is never free while any process started by the command still
//! runs:
//!
//! - `buslock` is a child subreaper (`PR_SET_CHILD_SUBREAPER`): processes
//!   the command leaves behind (a background worker, a daemon that forked)
//!   become its children, and it releases the lock only when every one of
//!   them has exited. Where the kernel refuses it (an emulator such as
//!   qemu-user; every Linux since 3.4 has it) `run` says so on stderr and
//!   waits for the command alone.
//! - It never dies of a signal it can catch: `SIGTERM`, `SIGHUP`,
//!   `SIGUSR1`... are forwarded to the command (to the processes it left
//!   behind once it has exited), and `buslock` keeps waiting for them.
//!   `SIGINT` and `SIGQUIT` are not forwarded: the terminal sends them to
//!   the whole foreground process group, the command included.
//! - The command gets `SIGKILL` from the kernel if `buslock` is killed
//!   anyway (`SIGKILL`, the OOM killer, a crash): `PR_SET_PDEATHSIG`.
//!
//! What remains (documented in docs/CLI.md): when `buslock` itself is
//! killed, processes the command started in the background do not get
//! that `SIGKILL` (only the command does), and the lock is free as soon as
//! `buslock` is gone; the next holder is told that the previous owner died.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};

use crate::cli::RunArgs;
use crate::error::CliError;
use crate::exit;
use crate::output;
use crate::signals::{self, Signals};

/// How often the wait for the command checks for signals to forward.
const POLL: Duration = Duration::from_millis(5);

/// Take the lock, run the command, wait for it and everything it started,
/// release, exit with the command's status.
pub fn run(dir: Option<&Path>, args: &RunArgs) -> Result<ExitCode, CliError> {
    let sig = Signals::install_all()?;
    // Others see the command, not `buslock`, as the holder.
    let label = Path::new(&args.command[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let side = super::shared::Side::of(args.read, args.write);
    let m = super::shared::open(dir, &args.name, label.as_deref(), side)?;
    let guard = super::shared::take(&m, args.timeout, &sig)?;
    if guard.previous_owner_died() {
        output::report(&super::died_warning(&args.name));
    }
    let program = &args.command[0];
    let mut command = Command::new(program);
    command
        .args(&args.command[1..])
        .env("BUSLOCK_LOCK", &args.name)
        .env(
            "BUSLOCK_PREVIOUS_OWNER_DIED",
            if guard.previous_owner_died() {
                "1"
            } else {
                "0"
            },
        );
    buslock::raw::sys::kill_with_parent(&mut command);
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        // Every Linux since 3.4 has it; an emulator (qemu-user) may not.
        // The command itself is still waited for; say what is lost.
        output::report(&format!(
            "warning: cannot become a child subreaper (prctl: {e}): processes that \
             '{}' leaves running in the background may outlive the lock",
            args.command[0].to_string_lossy()
        ));
    }
    let child = command.spawn().map_err(|source| CliError::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    let name = program.to_string_lossy();
    let status = supervise(Pid::from_child(&child), &name, &args.name, &sig)?;
    drop(guard);
    let code = match (status.exit_status(), status.terminating_signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => exit::SIGNAL_BASE.saturating_add(s as u8),
        (None, None) => exit::CANNOT_EXECUTE,
    };
    Ok(ExitCode::from(code))
}

/// Reap `command` and every process it leaves behind, forwarding signals;
/// return the command's own status once nothing is left.
fn supervise(
    command: Pid,
    program: &str,
    lock: &str,
    sig: &Signals,
) -> Result<rustix::process::WaitStatus, CliError> {
    let mut status = None;
    let mut told = false;
    loop {
        // Reap everything that has ended.
        loop {
            match waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((pid, st))) => {
                    if pid == command {
                        status = Some(st);
                    }
                }
                Ok(None) => break,
                Err(Errno::INTR) => {}
                Err(Errno::CHILD) => {
                    return status.ok_or_else(|| {
                        CliError::io("wait for the command")(std::io::Error::other(
                            "its exit status was lost",
                        ))
                    });
                }
                Err(e) => return Err(CliError::io("wait for the command")(e.into())),
            }
        }
        if status.is_some() && !told {
            let left: Vec<String> = children().iter().map(u32::to_string).collect();
            if !left.is_empty() {
                output::report(&format!(
                    "'{program}' exited; keeping lock '{lock}' until what it left running \
                     has exited (pid {})",
                    left.join(", ")
                ));
            }
            told = true;
        }
        for num in sig.take_all() {
            // The terminal sent these to the whole process group already.
            if num == signals::INT || num == signals::QUIT {
                continue;
            }
            let Some(signal) = Signal::from_named_raw(num) else {
                continue; // real-time signals: caught so as not to die, not forwarded
            };
            let targets = if status.is_none() {
                vec![command]
            } else {
                children()
                    .into_iter()
                    .filter_map(|p| Pid::from_raw(p as i32))
                    .collect()
            };
            for pid in targets {
                let _ = kill_process(pid, signal);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The processes whose parent is this one (the command's orphans, once it
/// has exited), from `/proc/*/stat`.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    // `pid (comm) state ppid ...`; comm may contain anything.
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(me)
        })
        .collect();
    out.sort_unstable();
    out
}
