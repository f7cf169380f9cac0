//! Lock files: where they live, what they are called, and how they are
//! created, opened and validated, race-free and without following links;
//! and the handle a primitive keeps on its lock file over time, following
//! a replaced file ([`Handle`]).

pub mod dir;
pub mod handle;
pub mod name;
pub mod open;

pub use dir::{DirSource, LockDir};
pub use handle::{CHECK_INTERVAL, Handle, MAX_GENERATIONS, Page};
pub use name::{IntoLockName, LockName, MAX_NAME_LEN, lock_file_name, validate_name};
pub(crate) use name::{NameArg, lock_name};
pub use open::{LockFile, OpenMode, lock_file_mode};
