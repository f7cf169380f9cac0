//! Lock names: short identifiers such as `SPI`, `I2C-1` or `gopigo3`.

use crate::error::{Error, Result};

/// Longest accepted lock name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// File-name suffix of lock files.
pub const LOCK_SUFFIX: &str = ".lock";

/// Check that `name` is 1 to [`MAX_NAME_LEN`] characters from
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
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
    let fail = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("it is longer than 64 bytes");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return fail("it starts with '.' or '-'");
    }
    if name.contains('/') {
        return fail("it contains '/'");
    }
    if name.contains('\0') {
        return fail("it contains a NUL byte");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return fail("it contains a character other than A-Z a-z 0-9 . _ -");
    }
    Ok(())
}

/// The file name of lock `name`: `name.lock`.
pub fn lock_file_name(name: &str) -> String {
    format!("{name}{LOCK_SUFFIX}")
}

/// The lock name of a file name, if it is one (`SPI.lock` → `SPI`).
pub fn name_of_file(file_name: &str) -> Option<&str> {
    let name = file_name.strip_suffix(LOCK_SUFFIX)?;
    validate_name(name).ok().map(|()| name)
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
    fn file_names_round_trip() {
        assert_eq!(lock_file_name("SPI"), "SPI.lock");
        assert_eq!(name_of_file("SPI.lock"), Some("SPI"));
        assert_eq!(name_of_file("SPI.lck"), None);
        assert_eq!(name_of_file(".x.lock"), None);
    }
}
