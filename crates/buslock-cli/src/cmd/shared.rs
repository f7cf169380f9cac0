//! `hold NAME --read` and `run NAME --read`: a shared (read) hold of a
//! readers-writer lock, or, without `--read`, the mutex as before.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use buslock::{Mutex, MutexGuard, ReadGuard, RwLock, Wait};

use crate::error::CliError;
use crate::output;
use crate::signals::Signals;

/// The lock `hold` or `run` takes (one per process: the size difference
/// between the two does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Lock {
    /// A mutex, held alone.
    Mutex(Mutex),
    /// A readers-writer lock, read (shared).
    Read(RwLock),
}

/// A hold of a [`Lock`].
pub enum Guard<'a> {
    /// The mutex.
    Mutex(MutexGuard<'a>),
    /// A share of the readers-writer lock.
    Read(ReadGuard<'a>),
}

impl Guard<'_> {
    /// How long the acquisition waited.
    pub fn waited(&self) -> Duration {
        match self {
            Guard::Mutex(g) => g.waited(),
            Guard::Read(g) => g.waited(),
        }
    }

    /// Whether the previous holder (for a read: a writer) died holding it.
    pub fn previous_owner_died(&self) -> bool {
        match self {
            Guard::Mutex(g) => g.previous_owner_died(),
            Guard::Read(g) => g.previous_owner_died(),
        }
    }
}

/// Open lock `name` for `hold`/`run`: a readers-writer lock to read with
/// `read`, else a mutex.
pub fn open(
    dir: Option<&Path>,
    name: &str,
    label: Option<&str>,
    read: bool,
) -> Result<Lock, CliError> {
    if !read {
        return Ok(Lock::Mutex(super::open_for_locking(dir, name, label)?));
    }
    let mut builder = RwLock::builder(name);
    if let Some(dir) = dir {
        builder = builder.dir(dir);
    }
    if let Some(label) = label {
        builder = builder.label(label);
    }
    Ok(Lock::Read(builder.open()?))
}

/// Take `lock` as [`super::acquire`] takes a mutex: at most `timeout`,
/// giving up within one slice of a signal `sig` catches.
pub fn take<'a>(
    lock: &'a Lock,
    timeout: Option<Duration>,
    sig: &Signals,
) -> Result<Guard<'a>, CliError> {
    let rw = match lock {
        Lock::Mutex(m) => return super::acquire(m, timeout, sig).map(Guard::Mutex),
        Lock::Read(rw) => rw,
    };
    if let Some(g) = rw.try_read()? {
        return Ok(Guard::Read(g));
    }
    let writer = || -> Result<String, CliError> {
        Ok(match rw.writer()? {
            Some(w) => super::describe_holder(Some(&w)).replacen("held by", "written by", 1),
            None => "a writer waits for readers to leave".to_owned(),
        })
    };
    if std::io::stderr().is_terminal() {
        output::report(&format!(
            "waiting to read lock '{}', {}",
            rw.name(),
            writer()?
        ));
    }
    let mut interrupted = || sig.received_any(|_| true).is_some();
    let got = rw.acquire_read(Wait::Interruptible {
        timeout,
        interrupted: &mut interrupted,
    });
    super::waited(got, rw.name(), timeout, sig, writer).map(Guard::Read)
}

/// Whether a JSON `kind` is the mutex's (left out of the output, which
/// stays as it was before readers-writer locks).
pub fn is_mutex(kind: &&'static str) -> bool {
    *kind == "mutex"
}

/// The read side of a readers-writer lock's statistics, for `stats` (the
/// figures `stats` prints first are its writes).
pub fn read_stats_text(r: &buslock::RwStats) -> String {
    format!(
        "reads    {} reads, {} waited (total {}), {} timeouts, {} reader deaths; \
         the figures above are writes ({} writer deaths)\n",
        r.reads,
        r.reads_contended,
        crate::render::duration(r.read_wait),
        r.read_timeouts,
        r.reader_deaths,
        r.writer_deaths
    )
}
