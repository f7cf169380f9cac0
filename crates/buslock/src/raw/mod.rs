//! The lowest layer: the robust PI futex lock word and the thread's robust
//! list, the mapped page layout, and the few other calls that need
//! `unsafe`. Everything above this module is safe Rust.

#![allow(unsafe_code)]

pub mod futex;
pub mod layout;
pub mod lock;
pub mod mapping;
pub mod mutex;
pub mod recordlock;
pub mod registry;
pub mod robust;
pub mod semaphore;
pub mod sys;

pub use layout::{LockPage, RwPage};
pub use lock::RawLock;
pub use mapping::{HeaderInit, InitError, InitOutcome, Mapping};
pub use mutex::{Acquire, RawError, RawMutex};
