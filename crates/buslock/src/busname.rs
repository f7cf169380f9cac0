//! The lock name of a bus, derived from the path of its Linux device node, so
//! that every program on the machine agrees on it without configuration.
//!
//! The kernel serialises one `SPI_IOC_MESSAGE` or one `I2C_RDWR` ioctl and
//! nothing across them; the unit a program must lock is the *bus*, which all
//! chip selects (SPI) or all addresses (I2C) of one controller share:
//!
//! | device node                | lock name | what it is                          |
//! |----------------------------|-----------|-------------------------------------|
//! | `/dev/spidevB.C`           | `spiB`    | SPI bus `B`, chip select `C`        |
//! | `/dev/i2c-N`               | `i2c-N`   | I2C adapter `N`                     |
//! | `/dev/i2c/N` (devfs style) | `i2c-N`   | I2C adapter `N`                     |
//!
//! `B`, `C` and `N` are decimal numbers. A symbolic link (a udev alias such
//! as `/dev/my-sensor`) is followed first when it exists, so an alias and the
//! node it points to share a lock. Anything else is
//! [`Error::NotABusDevice`]: give such a device an explicit lock name.
//!
//! The same rule is exposed to Python as `buslock.bus_lock_name()` and to
//! the command as `buslock run --device PATH` / `buslock hold --device PATH`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lockfile::LockName;

/// The buslock name of the bus behind device node `path`
/// (`/dev/spidev0.1` -> `spi0`, `/dev/i2c-1` -> `i2c-1`); see the
/// [module table](self).
///
/// # Errors
///
/// [`Error::NotABusDevice`] naming `path` when it is not an SPI or I2C
/// device node path.
///
/// # Examples
///
/// ```
/// assert_eq!(buslock::bus_lock_name("/dev/spidev0.1")?, "spi0");
/// assert_eq!(buslock::bus_lock_name("/dev/i2c-1")?, "i2c-1");
/// assert!(buslock::bus_lock_name("/dev/ttyUSB0").is_err());
/// # Ok::<(), buslock::Error>(())
/// ```
pub fn bus_lock_name(path: impl AsRef<Path>) -> Result<LockName> {
    let given = path.as_ref();
    // Follow a udev alias to its node; a missing node keeps the given path
    // (the rule is about names, not about whether the node exists here).
    let resolved: PathBuf = match std::fs::symlink_metadata(given) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(given).unwrap_or_else(|_| given.into())
        }
        _ => given.into(),
    };
    name_of(&resolved).ok_or_else(|| Error::NotABusDevice { path: given.into() })
}

fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn name_of(path: &Path) -> Option<LockName> {
    LockName::new(&bus_name(path)?).ok()
}

fn bus_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    if let Some(rest) = file.strip_prefix("spidev") {
        let (bus, cs) = rest.split_once('.')?;
        digits(cs)?;
        return Some(format!("spi{}", digits(bus)?));
    }
    if let Some(n) = file.strip_prefix("i2c-") {
        return Some(format!("i2c-{}", digits(n)?));
    }
    let parent = path.parent()?.file_name()?.to_str()?;
    if parent == "i2c" {
        return Some(format!("i2c-{}", digits(file)?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        for (path, name) in [
            ("/dev/spidev0.0", "spi0"),
            ("/dev/spidev0.1", "spi0"),
            ("/dev/spidev10.3", "spi10"),
            ("/dev/i2c-1", "i2c-1"),
            ("/dev/i2c-22", "i2c-22"),
            ("/dev/i2c/3", "i2c-3"),
        ] {
            assert_eq!(bus_lock_name(path).unwrap(), name, "{path}");
            crate::validate_name(name).unwrap();
        }
    }

    #[test]
    fn not_bus_devices_are_errors_naming_the_path() {
        for path in [
            "/dev/ttyUSB0",
            "/dev/spidev0",
            "/dev/spidev.1",
            "/dev/spidev0.x",
            "/dev/spidevX.0",
            "/dev/i2c-",
            "/dev/i2c-1a",
            "/dev/i2c-../x",
            "/dev/i2c/x",
            "/dev/spidev99999999999.0",
            "",
            "/",
        ] {
            let e = bus_lock_name(path).unwrap_err();
            assert!(matches!(e, Error::NotABusDevice { .. }), "{path}: {e}");
            assert!(e.to_string().contains(&format!("'{path}'")), "{e}");
        }
    }

    #[test]
    fn a_udev_alias_shares_the_lock_of_its_node() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("spidev1.2");
        std::fs::write(&node, b"").unwrap();
        let alias = dir.path().join("my-sensor");
        std::os::unix::fs::symlink(&node, &alias).unwrap();
        assert_eq!(bus_lock_name(&alias).unwrap(), "spi1");
        // A dangling alias is not a bus device.
        let dangling = dir.path().join("gone");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        assert!(bus_lock_name(&dangling).is_err());
    }
}
