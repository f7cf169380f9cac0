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
//! Three layers, each in its own place in `src/`, each built on the one
//! below it:
//!
//! 1. **raw** (`src/raw/`, doc-hidden): the robust priority-inheritance
//!    futex lock word and the thread's robust list, the `#[repr(C)]` page
//!    mapped from a lock file and its atomics, the lock-order registry
//!    page, the legacy semaphore and record lock. The only `unsafe` in the
//!    crate is here.
//! 2. **lockfile** (`src/lockfile/`, doc-hidden but for [`LockDir`],
//!    [`DirSource`], [`OpenMode`], [`LockName`] and [`validate_name`]): where lock files
//!    live, names, race-free creation, mapping and validation of a lock
//!    file, and the lock-file handle every primitive keeps: its file and
//!    those that replaced it at the path, generic over the page layout.
//! 3. **primitives** (`src/mutex/`, `src/rwlock/` and the modules beside
//!    them): [`Mutex`], its [`MutexGuard`] and [`Builder`]; [`RwLock`], a
//!    readers-writer lock on the same lock word with a readers table
//!    beside it; the owner record, statistics, waiters table and event ring kept in
//!    the page, read-only inspection ([`LockView`],
//!    [`Owner`], [`Stats`], [`Waiter`], [`Event`]), lock-order checking
//!    ([`lockdep`]), companions for programs not yet migrated ([`legacy`]),
//!    device-node lock names ([`busname`]).
//!
//! # What is public
//!
//! Everything shown in these docs is the API, kept stable and documented:
//! the primitives above, [`Error`] and [`Result`], [`LockName`] (a lock
//! name checked once; everything that takes a name takes one, or text, see
//! [`IntoLockName`]), [`escape`] for printing names read from lock files, the bindings' acquire and release by value
//! ([`Mutex::acquire`], [`Held`], [`Wait`]) and the constants that state
//! behaviour ([`CHECK_INTERVAL`], [`INTERRUPT_SLICE`]).
//!
//! The modules `raw`, `lockfile`, `identity` and `human`, and a few items
//! marked hidden (the lock-order registry reader, the legacy companion
//! records, [`Owner`]'s unescaped wording), are public only for the other
//! crates of this workspace: the `buslock` command, the Python bindings,
//! the torture harness, benchmarks and tests. They are not part of the API
//! and may change in any release; do not use them.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod busname;
mod clock;
mod deadlock;
mod error;
mod escape;
mod events;
#[doc(hidden)]
pub mod human;
#[doc(hidden)]
pub mod identity;
pub mod legacy;
pub mod lockdep;
#[doc(hidden)]
pub mod lockfile;
mod mutex;
mod options;
mod owner;
#[doc(hidden)]
pub mod raw;
mod rwlock;
mod seqlock;
mod starvation;
mod stats;
mod view;
mod wait;
mod waiters;

pub use busname::bus_lock_name;
pub use error::{Error, Result};
pub use escape::escape;
pub use events::Event;
pub use identity::ProcessState;
pub use lockfile::{DirSource, IntoLockName, LockDir, LockName, OpenMode, validate_name};
pub use mutex::{Builder, CHECK_INTERVAL, Held, Mutex, MutexGuard};
pub use owner::Owner;
pub use rwlock::{
    DEAD_READER_CHECK, ReadGuard, ReadHeld, Reader, RwBuilder, RwLock, RwStats, WriteGuard,
    WriteHeld,
};
pub use stats::{Histogram, LongestHold, Stats};
pub use view::LockView;
pub use wait::{INTERRUPT_SLICE, Wait};
pub use waiters::Waiter;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
