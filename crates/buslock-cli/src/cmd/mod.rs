//! The subcommands, one module each, and what they share.

pub mod doctor;
pub mod hold;
pub mod legacy;
pub mod list;
pub mod order;
pub mod run;
pub mod shared;
pub mod state;
pub mod stats;
pub mod waits;
pub mod watch;

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use buslock::{LockDir, LockName, LockView, Mutex, MutexGuard, OpenMode, Owner};

use crate::error::CliError;
use crate::output;
use crate::signals::{self, Signals};

/// The lock a NAME argument means: a name as given, or, for an absolute
/// path such as `/dev/spidev0.1` or `/dev/i2c-1`, the lock of that
/// device's bus (`spi0`, `i2c-1`; see `buslock::bus_lock_name`). Names
/// never contain '/', so the two cannot be confused; a relative path stays
/// an invalid name.
pub fn lock_name(name: &str) -> Result<LockName, CliError> {
    if name.starts_with('/') {
        Ok(buslock::bus_lock_name(name)?)
    } else {
        Ok(LockName::new(name)?)
    }
}

/// Open an existing lock for inspection, read-only: never creates the
/// file, never takes the lock, needs read access only.
pub fn open_existing(dir: Option<&Path>, name: &LockName) -> Result<LockView, CliError> {
    let dir = LockDir::resolve(dir)?;
    Ok(LockView::open(&dir, name)?)
}

/// Open an existing lock to take it (`stats --reset`): never creates the
/// file.
pub fn open_existing_mutex(dir: Option<&Path>, name: &LockName) -> Result<Mutex, CliError> {
    let dir = LockDir::resolve(dir)?;
    Ok(Mutex::open_in(&dir, name, OpenMode::Existing)?)
}

/// Open a lock to take it, creating the file if needed. `label` is what
/// others see as the holder's program (default: `buslock`).
pub fn open_for_locking(
    dir: Option<&Path>,
    name: &str,
    label: Option<&str>,
) -> Result<Mutex, CliError> {
    let mut builder = Mutex::builder(name);
    if let Some(dir) = dir {
        builder = builder.dir(dir);
    }
    if let Some(label) = label {
        builder = builder.label(label);
    }
    Ok(builder.open()?)
}

/// The holder in words, in the library's wording ([`Owner`]'s `Display`):
/// `holder pid 1234 tid 1240 (motor), held for 2.31s`, or `it is free now`.
/// Not escaped: every message is escaped once where it is printed.
pub fn describe_holder(owner: Option<&Owner>) -> String {
    match owner {
        None => "it is free now".to_owned(),
        Some(o) => format!("holder {}", o.unescaped()),
    }
}

/// Take `m`, waiting at most `timeout` (`None`: forever), giving up within
/// one 50 ms slice of any signal `sig` catches (`SIGINT`, `SIGTERM`,
/// `SIGHUP`; for `run` every signal that would end the process).
///
/// Says on standard error whom it waits for when standard error is a
/// terminal.
pub fn acquire<'m>(
    m: &'m Mutex,
    timeout: Option<Duration>,
    sig: &Signals,
) -> Result<MutexGuard<'m>, CliError> {
    if let Some(g) = m.try_lock()? {
        return Ok(g);
    }
    if std::io::stderr().is_terminal() {
        output::report(&format!(
            "waiting for lock '{}', {}",
            m.name(),
            describe_holder(m.owner()?.as_ref())
        ));
    }
    let got = m.lock_interruptible(timeout, || sig.received_any(|_| true).is_some());
    waited(got, m.name(), timeout, sig, || {
        Ok(describe_holder(m.owner()?.as_ref()))
    })
}

/// The outcome of an interruptible wait for lock `name` as the command
/// reports it: the guard, a timeout naming the holder (`holder` says who,
/// asked only then), or the signal that ended the wait.
pub fn waited<G>(
    got: buslock::Result<Option<G>>,
    name: &str,
    timeout: Option<Duration>,
    sig: &Signals,
    holder: impl FnOnce() -> Result<String, CliError>,
) -> Result<G, CliError> {
    match got {
        Ok(Some(g)) => Ok(g),
        Ok(None) => Err(CliError::Timeout {
            name: name.to_owned(),
            timeout: timeout.unwrap_or_default(),
            holder: holder()?,
        }),
        Err(buslock::Error::Interrupted { name }) => {
            let signal = sig.received_any(|_| true).unwrap_or(signals::TERM);
            Err(CliError::Interrupted {
                name,
                signal,
                signal_name: signals::name(signal),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The standard warning after taking over from a dead holder.
pub fn died_warning(name: &str) -> String {
    format!(
        "the previous holder of lock '{name}' died while holding it; \
         reset the bus or device before using it"
    )
}
