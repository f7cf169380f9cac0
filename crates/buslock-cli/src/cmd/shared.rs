//! `hold NAME --read|--write` and `run NAME --read|--write`: a shared
//! (read) or exclusive (write) hold of a readers-writer lock, or, without
//! either, the mutex as before.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use buslock::{Mutex, MutexGuard, ReadGuard, RwLock, Wait, WriteGuard};

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
    /// A readers-writer lock, written (alone).
    Write(RwLock),
}

/// How `hold` or `run` takes its lock, from `--read` and `--write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A mutex.
    Mutex,
    /// A readers-writer lock, shared.
    Read,
    /// A readers-writer lock, alone.
    Write,
}

impl Side {
    /// The side the flags ask for (clap refuses both at once).
    pub fn of(read: bool, write: bool) -> Side {
        match (read, write) {
            (true, _) => Side::Read,
            (false, true) => Side::Write,
            (false, false) => Side::Mutex,
        }
    }

    /// What `hold` says it does: "holding", "reading", "writing".
    pub fn verb(self) -> &'static str {
        match self {
            Side::Mutex => "holding",
            Side::Read => "reading",
            Side::Write => "writing",
        }
    }
}

/// A hold of a [`Lock`].
pub enum Guard<'a> {
    /// The mutex.
    Mutex(MutexGuard<'a>),
    /// A share of the readers-writer lock.
    Read(ReadGuard<'a>),
    /// The readers-writer lock, alone.
    Write(WriteGuard<'a>),
}

impl Guard<'_> {
    /// How long the acquisition waited.
    pub fn waited(&self) -> Duration {
        match self {
            Guard::Mutex(g) => g.waited(),
            Guard::Read(g) => g.waited(),
            Guard::Write(g) => g.waited(),
        }
    }

    /// Whether the previous holder (of a readers-writer lock: a writer)
    /// died holding it.
    pub fn previous_owner_died(&self) -> bool {
        match self {
            Guard::Mutex(g) => g.previous_owner_died(),
            Guard::Read(g) => g.previous_owner_died(),
            Guard::Write(g) => g.previous_owner_died(),
        }
    }
}

/// Open lock `name` for `hold`/`run`: a readers-writer lock to read or
/// write, or a mutex, as `side` says.
pub fn open(
    dir: Option<&Path>,
    name: &str,
    label: Option<&str>,
    side: Side,
) -> Result<Lock, CliError> {
    let kind = |e: CliError| match e {
        CliError::Lock(source @ buslock::Error::WrongKind { .. }) => CliError::Kind {
            source,
            hint: if side == Side::Mutex {
                "add --read to share it or --write to hold it alone"
            } else {
                "leave out --read and --write to hold a mutex"
            },
        },
        e => e,
    };
    if side == Side::Mutex {
        return Ok(Lock::Mutex(
            super::open_for_locking(dir, name, label).map_err(kind)?,
        ));
    }
    let mut builder = RwLock::builder(name);
    if let Some(dir) = dir {
        builder = builder.dir(dir);
    }
    if let Some(label) = label {
        builder = builder.label(label);
    }
    let rw = builder.open().map_err(|e| kind(e.into()))?;
    Ok(if side == Side::Read {
        Lock::Read(rw)
    } else {
        Lock::Write(rw)
    })
}

/// Take `lock` as [`super::acquire`] takes a mutex: at most `timeout`,
/// giving up within one slice of a signal `sig` catches.
pub fn take<'a>(
    lock: &'a Lock,
    timeout: Option<Duration>,
    sig: &Signals,
) -> Result<Guard<'a>, CliError> {
    let (rw, read) = match lock {
        Lock::Mutex(m) => return super::acquire(m, timeout, sig).map(Guard::Mutex),
        Lock::Read(rw) => (rw, true),
        Lock::Write(rw) => (rw, false),
    };
    let taken = if read {
        rw.try_read()?.map(Guard::Read)
    } else {
        rw.try_write()?.map(Guard::Write)
    };
    if let Some(g) = taken {
        return Ok(g);
    }
    let holders = || -> Result<String, CliError> { Ok(describe_rw_holders(rw)) };
    if std::io::stderr().is_terminal() {
        output::report(&format!(
            "waiting to {} lock '{}', {}",
            if read { "read" } else { "write" },
            rw.name(),
            holders()?
        ));
    }
    let mut interrupted = || sig.received_any(|_| true).is_some();
    let wait = Wait::Interruptible {
        timeout,
        interrupted: &mut interrupted,
    };
    if read {
        let got = rw.acquire_read(wait);
        super::waited(got, rw.name(), timeout, sig, holders).map(Guard::Read)
    } else {
        let got = rw.acquire_write(wait);
        super::waited(got, rw.name(), timeout, sig, holders).map(Guard::Write)
    }
}

/// Who keeps a waiter of readers-writer lock `rw` waiting, in words: its
/// writer, else its readers, else a queued writer.
pub fn describe_rw_holders(rw: &RwLock) -> String {
    match rw.writer() {
        Ok(Some(w)) => format!("writer {}", w.unescaped()),
        _ => match rw.readers().len() {
            0 => "a writer waits for its turn".to_owned(),
            n => format!(
                "it is read by {}",
                crate::render::plural(n as u64, "reader")
            ),
        },
    }
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
