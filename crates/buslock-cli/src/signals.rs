//! Signals as flags, so waits can give up between their 50 ms slices,
//! holds can end cleanly (releasing the lock), and `run` can forward them
//! to its command instead of dying while the command runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use libc as s;

use crate::error::CliError;

/// The signals `hold`, `watch`, `stats --reset` and waits stop on.
const STOPPING: [i32; 3] = [s::SIGINT, s::SIGTERM, s::SIGHUP];

/// Every signal whose default action ends the process and that can be
/// caught without risk: what `run` turns into flags so that it never dies
/// (and so never lets go of the lock) while its command runs.
///
/// Left out: `SIGPIPE`, which Rust programs ignore (a closed pipe is an
/// `EPIPE` error instead); `SIGKILL` and `SIGSTOP` (cannot be caught); `SIGSEGV`,
/// `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGABRT`, `SIGSYS` and `SIGTRAP`, which
/// report faults of the process itself, where returning from a handler
/// would repeat the fault forever. If `buslock` dies of one of those, the
/// kernel kills the command with it (see `run`).
const CATCHABLE: [i32; 14] = [
    s::SIGHUP,
    s::SIGINT,
    s::SIGQUIT,
    s::SIGUSR1,
    s::SIGUSR2,
    s::SIGALRM,
    s::SIGTERM,
    s::SIGXCPU,
    s::SIGXFSZ,
    s::SIGVTALRM,
    s::SIGPROF,
    s::SIGIO,
    s::SIGPWR,
    s::SIGSTKFLT,
];

/// Flags raised by signals once [`Signals::install`] (or
/// [`Signals::install_all`]) has replaced their default action.
#[derive(Debug)]
pub struct Signals {
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl Signals {
    /// Catch `SIGINT`, `SIGTERM` and `SIGHUP`.
    pub fn install() -> Result<Self, CliError> {
        Self::install_set(STOPPING.iter().copied())
    }

    /// Catch every signal that would otherwise end `buslock` and can be
    /// caught safely, real-time signals included (for `run`).
    pub fn install_all() -> Result<Self, CliError> {
        // glibc keeps the first two real-time signals for itself.
        let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
        Self::install_set(CATCHABLE.iter().copied().chain(realtime))
    }

    fn install_set(sigs: impl Iterator<Item = i32>) -> Result<Self, CliError> {
        let mut flags = Vec::new();
        for sig in sigs {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig, Arc::clone(&flag))
                .map_err(CliError::io(format!("install a handler for {}", name(sig))))?;
            flags.push((sig, flag));
        }
        Ok(Signals { flags })
    }

    /// The first stopping signal (`SIGINT`, `SIGTERM`, `SIGHUP`) received
    /// so far, if any; it stays set.
    pub fn received(&self) -> Option<i32> {
        self.received_any(|sig| STOPPING.contains(&sig))
    }

    /// The first caught signal received so far for which `which` is true;
    /// it stays set.
    pub fn received_any(&self, which: impl Fn(i32) -> bool) -> Option<i32> {
        self.flags
            .iter()
            .find(|(s, f)| which(*s) && f.load(Ordering::Relaxed))
            .map(|(s, _)| *s)
    }

    /// Every signal received since the last call, clearing them.
    pub fn take_all(&self) -> Vec<i32> {
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::Relaxed))
            .map(|(s, _)| *s)
            .collect()
    }
}

/// The conventional name of a signal number.
pub fn name(sig: i32) -> &'static str {
    match sig {
        s::SIGINT => "SIGINT (Ctrl-C)",
        s::SIGTERM => "SIGTERM",
        s::SIGHUP => "SIGHUP",
        s::SIGQUIT => "SIGQUIT",
        s::SIGUSR1 => "SIGUSR1",
        s::SIGUSR2 => "SIGUSR2",
        s::SIGPIPE => "SIGPIPE",
        s::SIGALRM => "SIGALRM",
        s::SIGXCPU => "SIGXCPU",
        s::SIGXFSZ => "SIGXFSZ",
        s::SIGVTALRM => "SIGVTALRM",
        s::SIGPROF => "SIGPROF",
        s::SIGIO => "SIGIO",
        s::SIGPWR => "SIGPWR",
        s::SIGSTKFLT => "SIGSTKFLT",
        _ => "a real-time signal",
    }
}

/// `SIGINT`'s number.
pub const INT: i32 = s::SIGINT;
/// `SIGQUIT`'s number.
pub const QUIT: i32 = s::SIGQUIT;
/// `SIGTERM`'s number.
pub const TERM: i32 = s::SIGTERM;
