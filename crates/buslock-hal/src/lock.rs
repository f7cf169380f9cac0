//! [`BusLock`]: the buslock mutex of one bus, optionally with `flock` on
//! its device node, and [`Held`], proof of holding it.

use std::fs::File;
use std::path::{Path, PathBuf};

use buslock::{Mutex, MutexGuard};
use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

/// The lock of one bus: a [`buslock::Mutex`], and optionally `flock` on the
/// bus's `/dev` node ([`BusLock::flock_node`]).
#[derive(Debug)]
pub struct BusLock {
    mutex: Mutex,
    node: Option<Node>,
}

#[derive(Debug)]
struct Node {
    path: PathBuf,
    file: File,
}

impl BusLock {
    /// Use `mutex` as the bus lock.
    pub fn new(mutex: Mutex) -> Self {
        BusLock { mutex, node: None }
    }

    /// Open the lock of the bus behind device node `path` in the default
    /// lock directory, named by [`buslock::bus_lock_name`]
    /// (`/dev/spidev0.1` -> `spi0`, `/dev/i2c-1` -> `i2c-1`). The node
    /// itself is not opened.
    ///
    /// # Errors
    ///
    /// [`buslock::Error::NotABusDevice`] naming `path`, or as
    /// [`buslock::Mutex::open`].
    pub fn for_device(path: impl AsRef<Path>) -> buslock::Result<Self> {
        Ok(BusLock::new(Mutex::open(&buslock::bus_lock_name(path)?)?))
    }

    /// As [`BusLock::for_device`], in lock directory `dir`.
    ///
    /// # Errors
    ///
    /// As [`BusLock::for_device`].
    pub fn for_device_in(path: impl AsRef<Path>, dir: impl Into<PathBuf>) -> buslock::Result<Self> {
        let name = buslock::bus_lock_name(path)?;
        Ok(BusLock::new(Mutex::builder(&name).dir(dir).open()?))
    }

    /// Also take an exclusive `flock` on `node` (the bus's `/dev` node)
    /// while holding the bus, after the mutex, releasing it first; for
    /// tools that lock the node themselves around each exchange. Off by
    /// default: it costs two system calls per transaction.
    ///
    /// # Errors
    ///
    /// [`buslock::Error::Io`] naming `node` when it cannot be opened.
    pub fn flock_node(mut self, node: impl AsRef<Path>) -> buslock::Result<Self> {
        let path = node.as_ref();
        let file = File::open(path).map_err(|source| buslock::Error::Io {
            path: path.into(),
            action: "open device node to flock",
            source,
        })?;
        self.node = Some(Node {
            path: path.into(),
            file,
        });
        Ok(self)
    }

    /// The buslock mutex (for `owner()`, `stats()`, ...).
    pub fn mutex(&self) -> &Mutex {
        &self.mutex
    }

    /// The device node locked with `flock` too, if any.
    pub fn node(&self) -> Option<&Path> {
        self.node.as_ref().map(|n| n.path.as_path())
    }

    /// Take the bus: the mutex, then the node's `flock` if configured.
    ///
    /// # Errors
    ///
    /// As [`buslock::Mutex::lock`], or [`buslock::Error::Io`] naming the
    /// node when `flock` fails.
    pub fn lock(&self) -> buslock::Result<Held<'_>> {
        let guard = self.mutex.lock()?;
        let node = match &self.node {
            None => None,
            Some(node) => {
                loop {
                    match flock(&node.file, FlockOperation::LockExclusive) {
                        Ok(()) => break,
                        Err(Errno::INTR) => continue,
                        Err(e) => {
                            return Err(buslock::Error::Io {
                                path: node.path.clone(),
                                action: "flock device node",
                                source: e.into(),
                            });
                        }
                    }
                }
                Some(node)
            }
        };
        Ok(Held {
            node,
            _guard: guard,
        })
    }
}

/// Holds a [`BusLock`] until dropped (`!Send`, like the mutex guard).
#[must_use = "if unused the bus is released at once"]
#[derive(Debug)]
pub struct Held<'a> {
    node: Option<&'a Node>,
    // Dropped after the node's flock is released.
    _guard: MutexGuard<'a>,
}

impl Held<'_> {
    /// Whether the previous holder died while holding the bus: the device
    /// may be mid-transaction; reset it.
    pub fn previous_owner_died(&self) -> bool {
        self._guard.previous_owner_died()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(node) = self.node {
            // Unlocking a held flock does not fail on a valid descriptor.
            let _ = flock(&node.file, FlockOperation::Unlock);
        }
    }
}

/// A user's hook that resets the device after a holder died.
pub(crate) type Hook<T, E> = Box<dyn FnMut(&mut T) -> Result<(), E> + Send>;

/// Tracks whether a reset is owed: set when an acquisition reports that the
/// previous holder died, cleared once the hook ran successfully (so a
/// failed reset is retried at the next transaction of this adapter).
#[derive(Debug, Default)]
pub(crate) struct ResetState {
    pending: bool,
}

impl ResetState {
    /// Run `hook` if the holder before `held` died, or an earlier reset
    /// failed.
    #[inline]
    pub(crate) fn after_lock<E>(
        &mut self,
        held: &Held<'_>,
        hook: impl FnOnce() -> Option<Result<(), E>>,
    ) -> Result<(), E> {
        if held.previous_owner_died() {
            self.pending = true;
        }
        if self.pending {
            if let Some(result) = hook() {
                result?;
            }
            self.pending = false;
        }
        Ok(())
    }
}
