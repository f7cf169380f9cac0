//! Lock files: where they live, what they are called, and how they are
//! created, opened and validated, race-free and without following links.

pub mod dir;
pub mod name;
pub mod open;

pub use dir::{DirSource, LockDir};
pub use name::{IntoLockName, LockName, MAX_NAME_LEN, lock_file_name, validate_name};
pub(crate) use name::{NameArg, lock_name};
pub use open::{LockFile, OpenMode, lock_file_mode};
