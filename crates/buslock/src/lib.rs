//! A named, crash-safe, fair, system-wide mutex for processes and threads
//! that share a hardware bus (SPI, I2C, a serial port) on one Linux machine.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # unsafe { std::env::set_var("BUSLOCK_DIR", dir.path()) };
//! let spi = buslock::Mutex::open("SPI")?;
//! let guard = spi.lock()?;
//! if guard.previous_owner_died() {
//!     // the last holder crashed mid-transfer: reset the bus
//! }
//! // ... exclusive use of the bus ...
//! drop(guard);
//! # Ok::<(), buslock::Error>(())
//! ```
//!
//! Every program that opens `"SPI"` (in the same lock directory) takes
//! turns with every other, whatever process or thread it runs in. See
//! [`Mutex`] for the guarantees and the repository's `docs/DESIGN.md` for
//! how they are kept: a robust, priority-inheritance futex lock word of
//! buslock's own in a small
//! shared file per lock.
//!
//! # Layers
//!
//! - [`raw`]: the robust PI futex lock word, the thread's robust list and
//!   the mapped layout; the only `unsafe`.
//! - [`lockfile`]: where lock files live, race-free creation, validation.
//! - [`RwLock`] (`rwlock/`): a readers-writer lock on the same lock word,
//!   with a readers table beside it.
//! - The rest: [`Mutex`], [`MutexGuard`], [`LockView`] (read-only
//!   inspection), [`Owner`], [`Stats`], [`Waiter`], [`Event`], [`Error`].

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod busname;
pub mod clock;
mod deadlock;
mod error;
pub mod events;
pub mod identity;
pub mod legacy;
pub mod lockdep;
pub mod lockfile;
mod mutex;
pub mod owner;
pub mod raw;
mod rwlock;
mod starvation;
pub mod stats;
mod view;
pub mod waiters;

pub use busname::bus_lock_name;
pub use error::{Error, Result};
pub use events::Event;
pub use identity::ProcessState;
pub use lockfile::{DirSource, LockDir, OpenMode, validate_name};
pub use mutex::{Builder, CHECK_INTERVAL, Held, INTERRUPT_SLICE, Mutex, MutexGuard, Wait};
pub use owner::Owner;
pub use rwlock::{
    DEAD_READER_CHECK, ReadGuard, ReadHeld, Reader, RwBuilder, RwLock, RwStats, WriteGuard,
    WriteHeld,
};
pub use stats::{Histogram, LongestHold, Stats};
pub use view::LockView;
pub use waiters::Waiter;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
