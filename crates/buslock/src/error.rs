//! Every way opening, locking or reading a buslock mutex can fail.
//!
//! Messages are lowercase, name the lock or the path, and say what to do.

use std::io;
use std::path::{Path, PathBuf};

use crate::lockfile::LockDir;
use crate::raw::RawError;

/// Result alias for buslock operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from buslock. Each variant names the path or lock it concerns
/// and its message says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lock name is not a short identifier.
    #[error(
        "invalid lock name {name:?}: {reason}; use 1 to 64 characters from A-Z a-z 0-9 . _ - \
         that do not start with '.' or '-'"
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The lock directory does not exist.
    #[error(
        "lock directory '{}' does not exist; create it (mkdir -p '{}') or choose another with \
         BUSLOCK_DIR or --dir",
        path.display(), path.display()
    )]
    DirMissing {
        /// The directory.
        path: PathBuf,
    },

    /// The lock directory path names something that is not a directory.
    #[error("lock directory '{}' is not a directory; choose a directory with BUSLOCK_DIR or --dir", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },

    /// The lock directory exists but this user cannot use it.
    #[error("lock directory '{}' is not usable: {reason}; {fix}", path.display())]
    DirPermission {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// How to fix it.
        fix: String,
    },

    /// The lock directory is owned by another unprivileged user or is a
    /// symbolic link where buslock creates its own directory.
    #[error("lock directory '{}' is unsafe: {reason}; remove it or set BUSLOCK_DIR to a directory you trust", path.display())]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The system lock directory (`/run/lock/buslock`) does not exist and
    /// this program may not create it (only root creates it, and only to
    /// take a lock).
    #[error("lock directory '{}' is not set up: {reason}; {fix}", path.display())]
    SystemDirMissing {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
        /// What the admin runs.
        fix: String,
    },

    /// `$BUSLOCK_DIR` is a relative path: programs started in different
    /// working directories would use different locks.
    #[error(
        "BUSLOCK_DIR '{}' is a relative path: programs started in different directories would \
         silently use different locks; set it to an absolute path (e.g. \
         BUSLOCK_DIR=\"$PWD/{}\")",
        path.display(), path.display()
    )]
    RelativeDir {
        /// The value of `$BUSLOCK_DIR`.
        path: PathBuf,
    },

    /// A symbolic link sits where the lock file should be.
    #[error(
        "'{}' is a symbolic link, not a lock file; buslock never follows links there. \
         Remove the link (rm '{}') if nobody placed it on purpose",
        path.display(), path.display()
    )]
    Symlink {
        /// The lock file path.
        path: PathBuf,
    },

    /// Something other than a regular file sits where the lock file should be.
    #[error("'{}' is a {kind}, not a lock file; remove it or use another lock name or directory", path.display())]
    NotRegularFile {
        /// The lock file path.
        path: PathBuf,
        /// What it is instead (directory, FIFO, socket, device).
        kind: &'static str,
    },

    /// The lock file has more than one name (hard link): it may be a link
    /// planted to make buslock write a file elsewhere.
    #[error(
        "lock file '{}' has {links} hard links; a lock file must have exactly one, or another \
         name may be a file elsewhere that buslock would overwrite. Remove this name \
         (rm '{}') when no program uses the lock",
        path.display(), path.display()
    )]
    HardLink {
        /// The lock file.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },

    /// The lock file does not exist and creating it was not requested.
    #[error("lock file '{}' does not exist; a program must open the lock once to create it", path.display())]
    NotFound {
        /// The lock file path.
        path: PathBuf,
    },

    /// The user may not open or create the lock file.
    #[error("permission denied: cannot {action} '{}'; {fix}", path.display())]
    Permission {
        /// The path.
        path: PathBuf,
        /// What was attempted (open, create, ...).
        action: &'static str,
        /// How to fix it.
        fix: String,
    },

    /// No space to create the lock file.
    #[error("no space left to create lock file '{}'; free space on that file system or set BUSLOCK_DIR elsewhere", path.display())]
    NoSpace {
        /// The lock file path.
        path: PathBuf,
    },

    /// The lock file has the wrong size.
    #[error(
        "lock file '{}' is {size} bytes, expected {expected}: it is truncated or not a buslock \
         file; remove it when no program uses the lock",
        path.display()
    )]
    BadSize {
        /// The lock file path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The size buslock writes.
        expected: u64,
    },

    /// The lock file does not start with buslock's magic.
    #[error(
        "'{}' is not a buslock lock file or is corrupted (magic {found:#018x}); remove it when \
         no program uses the lock",
        path.display()
    )]
    BadMagic {
        /// The lock file path.
        path: PathBuf,
        /// The magic found.
        found: u64,
    },

    /// The lock file uses another layout version.
    #[error(
        "lock file '{}' has layout version {found}, this buslock understands {expected}: \
         programs built with different buslock versions share this lock; rebuild them with one \
         version, or give them separate lock directories",
        path.display()
    )]
    Version {
        /// The lock file path.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },

    /// The lock file was made for another ABI (libc, word size, arch).
    #[error(
        "lock file '{}' was created for ABI '{found}', but this program is '{expected}': the \
         lock word layouts differ, so they cannot share it; use one ABI for all programs \
         sharing the bus, or separate lock directories",
        path.display()
    )]
    Abi {
        /// The lock file path.
        path: PathBuf,
        /// ABI tag in the file.
        found: String,
        /// ABI tag of this build.
        expected: String,
    },

    /// The lock file was made in another PID namespace.
    #[error(
        "lock file '{}' belongs to PID namespace {found}, this process runs in {ours}: \
         priority-inheritance locks hold thread ids, which differ between namespaces; run the \
         programs in one PID namespace (e.g. docker --pid=host) or use separate lock directories",
        path.display()
    )]
    PidNamespace {
        /// The lock file path.
        path: PathBuf,
        /// Namespace inode recorded in the file.
        found: u64,
        /// This process's namespace inode.
        ours: u64,
    },

    /// The lock file is in an unexpected state (not ready, unknown init
    /// state or damaged header).
    #[error("lock file '{}' is corrupted: {what}; remove it when no program uses the lock", path.display())]
    Corrupt {
        /// The lock file path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },

    /// Waiting for the lock would deadlock: its holder waits, directly or
    /// through other locks, for a lock the calling thread holds (found by
    /// the kernel's priority-inheritance chain walk). Nothing was changed:
    /// release the locks this thread holds (then the others proceed) and
    /// take them in one global order.
    #[error(
        "waiting for lock '{name}' would deadlock: {cycle}; this thread keeps the locks it          holds: release them so that the others can proceed, and take locks in one fixed order"
    )]
    Deadlock {
        /// The lock whose wait was refused.
        name: String,
        /// Every lock, pid, tid and program in the cycle, as the lock files
        /// record them.
        cycle: String,
    },

    /// The calling thread already holds the lock.
    #[error(
        "this thread already holds lock '{name}': buslock mutexes are not recursive; release the guard first"
    )]
    Recursive {
        /// The lock name.
        name: String,
    },

    /// The lock file holds another kind of lock than the one asked for
    /// (one name is one primitive: a mutex or a readers-writer lock).
    #[error(
        "lock file '{}' holds a {found}, not a {expected}: one name is one kind of lock; open it \
         as a {found}, or choose another name",
        path.display()
    )]
    WrongKind {
        /// The lock file.
        path: PathBuf,
        /// The kind it holds.
        found: &'static str,
        /// The kind asked for.
        expected: &'static str,
    },

    /// A thread that holds a readers-writer lock asked for it again (read
    /// after read, write after read, read after write).
    #[error(
        "this thread is already {held} lock '{name}' and asked to {wanted} it: a second read \
         could deadlock behind a waiting writer and a write after a read always would; release \
         the guard first (a writer can downgrade to a reader)"
    )]
    RecursiveRw {
        /// The lock name.
        name: String,
        /// "reading" or "writing".
        held: &'static str,
        /// "read" or "write".
        wanted: &'static str,
    },

    /// The lock file was unlinked or replaced more often than one handle
    /// follows.
    #[error(
        "lock file '{}' was replaced more than 15 times while this program used it; something \
         keeps deleting it (a cleanup job?): stop that, then open the lock again",
        path.display()
    )]
    ReplacedTooOften {
        /// The lock file path.
        path: PathBuf,
    },

    /// The calling thread does not hold the lock it tried to release.
    #[error(
        "lock '{name}' is not held by this thread: only the thread that locked it can release it"
    )]
    NotOwner {
        /// The lock name.
        name: String,
    },

    /// A wait was interrupted by the caller's `interrupted` check.
    #[error("waiting for lock '{name}' was interrupted")]
    Interrupted {
        /// The lock name.
        name: String,
    },

    /// Acquiring the lock would invert the lock order recorded in its lock
    /// directory (lock-order checking in `error` mode).
    #[error("lock '{name}' was not acquired: {report}")]
    LockOrder {
        /// The lock name.
        name: String,
        /// The lockdep report: both orders, who took each, the scenario.
        report: String,
    },

    /// The lock-order registry of a directory cannot be used; locks work
    /// without order checking there.
    #[error(
        "lock-order registry '{}' is unusable: {what}; lock-order checking is off for this \
         directory (locks keep working); reset it with `buslock order --reset`, or remove it \
         (rm '{}') if it is not a buslock file",
        path.display(), path.display()
    )]
    Lockdep {
        /// The registry file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },

    /// A path given as a bus device node is not one (see
    /// [`bus_lock_name`](crate::bus_lock_name)).
    #[error(
        "'{}' is not an SPI or I2C device node (/dev/spidevB.C, /dev/i2c-N or /dev/i2c/N), so \
         it names no bus lock; give the lock a name instead",
        path.display()
    )]
    NotABusDevice {
        /// The path as given.
        path: PathBuf,
    },

    /// A system call failed in a way not covered above.
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What was attempted.
        action: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether this is a permission problem (a user or group must change).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            Error::Permission { .. } | Error::DirPermission { .. } | Error::UnsafeDir { .. }
        )
    }

    /// Whether the lock file is damaged or incompatible (it must be removed
    /// or the programs rebuilt).
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            Error::BadSize { .. }
                | Error::HardLink { .. }
                | Error::BadMagic { .. }
                | Error::Version { .. }
                | Error::Abi { .. }
                | Error::PidNamespace { .. }
                | Error::Corrupt { .. }
        )
    }
}

/// The [`Error`] for a lock operation the kernel refused ([`RawError`]) on
/// lock `name`, whose file is `path` in `dir`: one mapping for every
/// primitive ([`Mutex`](crate::Mutex), [`RwLock`](crate::RwLock)).
pub(crate) fn from_raw(e: RawError, name: &str, dir: &LockDir, path: &Path) -> Error {
    match e {
        RawError::WouldDeadlock => Error::Recursive {
            name: name.to_owned(),
        },
        RawError::Deadlock => crate::deadlock::error(dir, name),
        RawError::NotOwner => Error::NotOwner {
            name: name.to_owned(),
        },
        RawError::Other(code) => Error::Io {
            path: path.to_path_buf(),
            action: "lock",
            source: io::Error::from_raw_os_error(code),
        },
    }
}
