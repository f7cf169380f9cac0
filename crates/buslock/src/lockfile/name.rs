//! Lock names: short identifiers such as `SPI`, `I2C-1` or `gopigo3`.

use crate::error::{Error, Result};

/// Longest accepted lock name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// File-name suffix of lock files.
pub const LOCK_SUFFIX: &str = ".lock";

/// A lock name, checked once: 1 to [`MAX_NAME_LEN`] characters from
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-` (so that it is a
/// plain file name in the lock directory, never a path).
///
/// Everything that takes a lock name ([`Mutex::open`](crate::Mutex::open),
/// [`Mutex::builder`](crate::Mutex::builder),
/// [`RwLock::open`](crate::RwLock::open),
/// [`LockView::open`](crate::LockView::open), ...) takes a `LockName` or
/// text to be checked as one (`&str`, `String`): see [`IntoLockName`]. A
/// program that takes names from its users checks them once, at its edge,
/// and passes `LockName`s on.
///
/// # Examples
///
/// ```
/// use buslock::LockName;
///
/// let spi: LockName = "SPI".parse()?;
/// assert_eq!(spi.as_str(), "SPI");
/// assert_eq!(spi.to_string(), "SPI");
/// assert!(LockName::try_from("../etc/passwd").is_err());
/// # let dir = tempfile::tempdir().unwrap();
/// let m = buslock::Mutex::builder(&spi).dir(dir.path()).open()?;
/// assert_eq!(m.name(), "SPI");
/// # Ok::<(), buslock::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockName(String);

impl LockName {
    /// Check `name` and keep it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] saying what is wrong.
    pub fn new(name: &str) -> Result<LockName> {
        match problem(name) {
            None => Ok(LockName(name.to_owned())),
            Some(reason) => Err(invalid(name, reason)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of its lock file: `NAME.lock`.
    pub fn file_name(&self) -> String {
        lock_file_name(&self.0)
    }
}

fn invalid(name: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

impl std::fmt::Display for LockName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for LockName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for LockName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for LockName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<LockName> for String {
    fn from(name: LockName) -> String {
        name.0
    }
}

impl std::str::FromStr for LockName {
    type Err = Error;
    fn from_str(name: &str) -> Result<LockName> {
        LockName::new(name)
    }
}

impl TryFrom<&str> for LockName {
    type Error = Error;
    fn try_from(name: &str) -> Result<LockName> {
        LockName::new(name)
    }
}

impl TryFrom<String> for LockName {
    type Error = Error;
    fn try_from(name: String) -> Result<LockName> {
        match problem(&name) {
            None => Ok(LockName(name)),
            Some(reason) => Err(invalid(&name, reason)),
        }
    }
}

impl TryFrom<&String> for LockName {
    type Error = Error;
    fn try_from(name: &String) -> Result<LockName> {
        LockName::new(name)
    }
}

mod sealed {
    /// The conversion behind [`super::IntoLockName`], kept private so that
    /// its error is always an invalid name.
    pub trait Sealed {
        /// The name, or the text and why it is not a lock name.
        fn into_name(self) -> Result<super::LockName, (String, &'static str)>;
    }
}

/// What functions taking a lock name accept: a [`LockName`] (checked
/// already) or text to be checked as one (`&str`, `String`, `&String`).
/// Implemented for those types only.
pub trait IntoLockName: sealed::Sealed {}

impl<T: sealed::Sealed> IntoLockName for T {}

impl sealed::Sealed for LockName {
    fn into_name(self) -> Result<LockName, (String, &'static str)> {
        Ok(self)
    }
}

impl sealed::Sealed for &LockName {
    fn into_name(self) -> Result<LockName, (String, &'static str)> {
        Ok(self.clone())
    }
}

impl sealed::Sealed for &str {
    fn into_name(self) -> Result<LockName, (String, &'static str)> {
        match problem(self) {
            None => Ok(LockName(self.to_owned())),
            Some(reason) => Err((self.to_owned(), reason)),
        }
    }
}

impl sealed::Sealed for String {
    fn into_name(self) -> Result<LockName, (String, &'static str)> {
        match problem(&self) {
            None => Ok(LockName(self)),
            Some(reason) => Err((self, reason)),
        }
    }
}

impl sealed::Sealed for &String {
    fn into_name(self) -> Result<LockName, (String, &'static str)> {
        self.as_str().into_name()
    }
}

/// A name given to a builder, checked when the builder opens the lock (so
/// that the builder itself cannot fail).
#[derive(Debug, Clone)]
pub(crate) struct NameArg(std::result::Result<LockName, (String, &'static str)>);

impl NameArg {
    pub(crate) fn new(name: impl IntoLockName) -> NameArg {
        NameArg(name.into_name())
    }

    /// The name, or [`Error::InvalidName`].
    pub(crate) fn get(&self) -> Result<&LockName> {
        self.0
            .as_ref()
            .map_err(|(name, reason)| invalid(name, reason))
    }
}

/// Take `name` as a lock name.
///
/// # Errors
///
/// [`Error::InvalidName`] saying what is wrong.
pub(crate) fn lock_name(name: impl IntoLockName) -> Result<LockName> {
    name.into_name()
        .map_err(|(name, reason)| invalid(&name, reason))
}

/// Check that `name` is 1 to [`MAX_NAME_LEN`] characters from
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-` (the rules of
/// [`LockName`]).
///
/// # Errors
///
/// [`Error::InvalidName`] saying what is wrong.
///
/// # Examples
///
/// ```
/// assert!(buslock::validate_name("I2C-1").is_ok());
/// assert!(buslock::validate_name("../etc/passwd").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    match problem(name) {
        None => Ok(()),
        Some(reason) => Err(invalid(name, reason)),
    }
}

/// What is wrong with `name` as a lock name, if anything.
fn problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("it is longer than 64 bytes");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Some("it starts with '.' or '-'");
    }
    if name.contains('/') {
        return Some("it contains '/'");
    }
    if name.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Some("it contains a character other than A-Z a-z 0-9 . _ -");
    }
    None
}

/// The file name of lock `name`: `name.lock`.
pub fn lock_file_name(name: &str) -> String {
    format!("{name}{LOCK_SUFFIX}")
}

/// The lock name of a file name, if it is one (`SPI.lock` → `SPI`).
pub fn name_of_file(file_name: &str) -> Option<&str> {
    let name = file_name.strip_suffix(LOCK_SUFFIX)?;
    problem(name).is_none().then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bus_names() {
        for ok in [
            "SPI",
            "I2C-1",
            "gopigo3",
            "spi0.1",
            "DI_Mutex_SPI",
            &"a".repeat(64),
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_paths_and_junk() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "-x",
            ".hidden",
            "a\0b",
            "spi bus",
            "ü",
            &"a".repeat(65),
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}");
            assert!(err.to_string().contains("invalid lock name"), "{err}");
        }
    }

    #[test]
    fn a_lock_name_is_checked_by_every_conversion() {
        for ok in ["SPI", "I2C-1", "spi0.1"] {
            let name = LockName::new(ok).unwrap();
            assert_eq!(name, ok);
            assert_eq!(name.to_string(), ok);
            assert_eq!(ok.parse::<LockName>().unwrap(), name);
            assert_eq!(LockName::try_from(ok.to_owned()).unwrap(), name);
            assert_eq!(lock_name(ok).unwrap(), name);
            assert_eq!(lock_name(&name).unwrap(), name);
        }
        for bad in ["", "a/b", "-x", "spi bus"] {
            let expected = validate_name(bad).unwrap_err().to_string();
            for err in [
                LockName::new(bad).unwrap_err(),
                bad.parse::<LockName>().unwrap_err(),
                LockName::try_from(bad.to_owned()).unwrap_err(),
                lock_name(bad).unwrap_err(),
                NameArg::new(bad).get().unwrap_err(),
            ] {
                assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}");
                assert_eq!(err.to_string(), expected);
            }
        }
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(lock_file_name("SPI"), "SPI.lock");
        assert_eq!(name_of_file("SPI.lock"), Some("SPI"));
        assert_eq!(name_of_file("SPI.lck"), None);
        assert_eq!(name_of_file(".x.lock"), None);
    }
}
