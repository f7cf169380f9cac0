//! The options every lock builder shares ([`Builder`](crate::Builder),
//! [`RwBuilder`](crate::RwBuilder)): the name, the lock directory, whether
//! to create the lock file, the label and lock-order checking. Each
//! builder holds one [`Options`] and its public setters, with the docs
//! users read, delegate here.

use std::path::PathBuf;

use crate::lockdep::Mode;
use crate::lockfile::{IntoLockName, NameArg, OpenMode};
use crate::raw::layout::TEXT_BYTES;

/// What a builder was told, before it opens the lock.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The lock name, checked when the lock is opened.
    pub(crate) name: NameArg,
    /// The lock directory, if not the default.
    pub(crate) dir: Option<PathBuf>,
    /// Whether a missing lock file is created.
    pub(crate) mode: OpenMode,
    /// Shown instead of the program name.
    label: Option<String>,
    /// Lock-order checking, if not from `$BUSLOCK_LOCKDEP`.
    pub(crate) lockdep: Option<Mode>,
}

impl Options {
    /// The defaults: the default directory, create if missing, no label,
    /// lock-order checking from the environment.
    pub(crate) fn new(name: impl IntoLockName) -> Self {
        Options {
            name: NameArg::new(name),
            dir: None,
            mode: OpenMode::Create,
            label: None,
            lockdep: None,
        }
    }

    /// Use lock directory `dir`.
    pub(crate) fn dir(&mut self, dir: PathBuf) {
        self.dir = Some(dir);
    }

    /// Whether to create the lock file if it does not exist.
    pub(crate) fn create(&mut self, create: bool) {
        self.mode = if create {
            OpenMode::Create
        } else {
            OpenMode::Existing
        };
    }

    /// Show `label` instead of the program name.
    pub(crate) fn label(&mut self, label: &str) {
        self.label = Some(label.to_owned());
    }

    /// Lock-order checking `mode` for this handle.
    pub(crate) fn lockdep(&mut self, mode: Mode) {
        self.lockdep = Some(mode);
    }

    /// The label as the lock handle keeps it (interned).
    pub(crate) fn interned_label(&self) -> Option<&'static [u8; TEXT_BYTES]> {
        self.label.as_deref().map(crate::identity::intern_label)
    }
}
