//! The errors `buslock` reports, each with its documented exit code.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use crate::exit;
use crate::render::duration as fmt_dur;

/// Everything that ends a `buslock` command unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library refused: bad name, unusable directory, corrupt file...
    #[error("{0}")]
    Lock(#[from] buslock::Error),

    /// The name is another kind of lock than the one the command asked
    /// for; `hint` says which flags take the kind it is.
    #[error("{source}; {hint}")]
    Kind {
        /// The library's [`buslock::Error::WrongKind`].
        source: buslock::Error,
        /// How to take the lock it is.
        hint: &'static str,
    },

    /// `--timeout` expired.
    #[error("timed out after {} waiting for lock '{name}': {holder}", fmt_dur(*timeout))]
    Timeout {
        /// Lock name.
        name: String,
        /// The timeout.
        timeout: Duration,
        /// Who holds it, in words.
        holder: String,
    },

    /// A signal stopped the wait before the lock was taken.
    #[error("gave up waiting for lock '{name}' on {signal_name}; nothing is held")]
    Interrupted {
        /// Lock name.
        name: String,
        /// The signal number.
        signal: i32,
        /// Its name.
        signal_name: &'static str,
    },

    /// `run` could not start its command.
    #[error("cannot run '{program}': {source}")]
    Spawn {
        /// The command.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Some other I/O failed (temporary files, the demo's bus file...).
    #[error("cannot {action}: {source}")]
    Io {
        /// What was attempted, naming the path.
        action: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(io::Error),

    /// The demo saw something wrong (an overlap, no recovery).
    #[error("demo failed: {0}")]
    Demo(String),
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Output(e)
    }
}

impl CliError {
    /// Build an [`CliError::Io`] naming what was attempted.
    pub fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> CliError {
        let action = action.into();
        move |source| CliError::Io { action, source }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Lock(buslock::Error::Interrupted { .. }) => exit::SIGNAL_BASE + 2,
            CliError::Lock(_)
            | CliError::Kind { .. }
            | CliError::Io { .. }
            | CliError::Output(_) => exit::LOCK_ERROR,
            CliError::Timeout { .. } => exit::TIMEOUT,
            CliError::Interrupted { signal, .. } => exit::SIGNAL_BASE + *signal as u8,
            CliError::Spawn { source, .. } => {
                if source.kind() == io::ErrorKind::NotFound {
                    exit::NOT_FOUND
                } else {
                    exit::CANNOT_EXECUTE
                }
            }
            CliError::Demo(_) => exit::HELD,
        })
    }

    /// Errors that end the program without a message: a closed pipe on
    /// standard output (`buslock list | head`) is not a failure.
    pub fn quiet_exit(&self) -> Option<ExitCode> {
        match self {
            CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                Some(ExitCode::from(exit::OK))
            }
            _ => None,
        }
    }
}
