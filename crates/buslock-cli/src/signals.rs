//! Ctrl-C and friends as flags, so waits can give up between their 50 ms
//! slices and holds can end cleanly (releasing the lock) instead of the
//! process dying.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::CliError;

/// Flags raised by `SIGINT`, `SIGTERM` and `SIGHUP` once [`Signals::install`]
/// has replaced their default action (dying).
#[derive(Debug)]
pub struct Signals {
    flags: [(i32, Arc<AtomicBool>); 3],
}

impl Signals {
    /// Register the flags (`signal_hook::flag::register`).
    pub fn install() -> Result<Self, CliError> {
        let flags = [SIGINT, SIGTERM, SIGHUP].map(|s| (s, Arc::new(AtomicBool::new(false))));
        for (sig, flag) in &flags {
            signal_hook::flag::register(*sig, Arc::clone(flag)).map_err(CliError::io(format!(
                "install a handler for {}",
                name(*sig)
            )))?;
        }
        Ok(Signals { flags })
    }

    /// The first signal received so far, if any.
    pub fn received(&self) -> Option<i32> {
        self.flags
            .iter()
            .find(|(_, f)| f.load(Ordering::Relaxed))
            .map(|(s, _)| *s)
    }

    /// Whether `sig` was received; clears it.
    pub fn take(&self, sig: i32) -> bool {
        self.flags
            .iter()
            .find(|(s, _)| *s == sig)
            .is_some_and(|(_, f)| f.swap(false, Ordering::Relaxed))
    }
}

/// The conventional name of a signal number.
pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT (Ctrl-C)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// `SIGTERM`'s number, for forwarding.
pub const TERM: i32 = SIGTERM;
/// `SIGHUP`'s number, for forwarding.
pub const HUP: i32 = SIGHUP;
