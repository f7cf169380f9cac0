//! Linux device nodes: check that a path is the node a backend expects
//! before opening it, so that a missing or wrong node is a clear error
//! naming the path instead of an `ENOTTY` from the first transfer.
//!
//! With the `linux` feature, `open_spidev` and `open_i2c` open
//! linux-embedded-hal's `SpidevDevice` / `I2cdev` behind such a check,
//! wrapped in the locking adapter for the node's bus.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The kind of device node a backend needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An SPI device node, `/dev/spidevB.C` (class `spidev`).
    Spidev,
    /// An I2C adapter node, `/dev/i2c-N` (class `i2c-dev`).
    I2cDev,
}

impl NodeKind {
    fn class(self) -> &'static str {
        match self {
            NodeKind::Spidev => "spidev",
            NodeKind::I2cDev => "i2c-dev",
        }
    }

    fn missing(self) -> &'static str {
        match self {
            NodeKind::Spidev => {
                "open SPI device node (is SPI enabled, e.g. dtparam=spi=on on a Raspberry Pi?)"
            }
            NodeKind::I2cDev => {
                "open I2C device node (is I2C enabled and i2c-dev loaded, e.g. dtparam=i2c_arm=on and modprobe i2c-dev?)"
            }
        }
    }
}

/// Check that `path` is a character device of `kind`'s class: it exists,
/// is a character device, and (where `/sys/dev/char` tells) belongs to the
/// `spidev` or `i2c-dev` class.
///
/// # Errors
///
/// [`buslock::Error::Io`] naming `path` and saying what it is instead.
pub fn check_node(path: impl AsRef<Path>, kind: NodeKind) -> buslock::Result<()> {
    let path = path.as_ref();
    let wrong = |what: String| buslock::Error::Io {
        path: path.into(),
        action: match kind {
            NodeKind::Spidev => "use as an SPI device node",
            NodeKind::I2cDev => "use as an I2C device node",
        },
        source: io::Error::new(io::ErrorKind::InvalidInput, what),
    };
    let meta = std::fs::metadata(path).map_err(|source| buslock::Error::Io {
        path: path.into(),
        action: kind.missing(),
        source,
    })?;
    let ft = meta.file_type();
    if !ft.is_char_device() {
        let is = if ft.is_dir() {
            "a directory"
        } else if ft.is_file() {
            "a regular file"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a block device"
        };
        return Err(wrong(format!("it is {is}, not a character device")));
    }
    let rdev = meta.rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let link = format!("/sys/dev/char/{major}:{minor}/subsystem");
    if let Ok(target) = std::fs::read_link(&link) {
        let class = target
            .file_name()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        if class != kind.class() {
            return Err(wrong(format!(
                "it is character device {major}:{minor} of class {class:?}, not {:?}",
                kind.class()
            )));
        }
    }
    Ok(())
}

/// Open SPI device node `path` (checked by [`check_node`]) as
/// linux-embedded-hal's `SpidevDevice` (the kernel drives its chip
/// select), behind the lock of its bus in the default lock directory
/// ([`BusLock::for_device`](crate::BusLock::for_device)).
///
/// # Errors
///
/// A missing or wrong node, or a lock error, naming the path.
#[cfg(feature = "linux")]
pub fn open_spidev(
    path: impl AsRef<Path>,
) -> buslock::Result<crate::LockedSpiDevice<linux_embedded_hal::SpidevDevice>> {
    let path = path.as_ref();
    let name = buslock::bus_lock_name(path)?;
    check_node(path, NodeKind::Spidev)?;
    let lock = crate::BusLock::new(buslock::Mutex::open(&name)?);
    let dev = linux_embedded_hal::SpidevDevice::open(path).map_err(|e| buslock::Error::Io {
        path: path.into(),
        action: "open SPI device node",
        source: io::Error::other(format!("{e:?}")),
    })?;
    Ok(crate::LockedSpiDevice::new(dev, lock))
}

/// Open I2C adapter node `path` (checked by [`check_node`]) as
/// linux-embedded-hal's `I2cdev`, behind the lock of its bus in the
/// default lock directory.
///
/// # Errors
///
/// A missing or wrong node, or a lock error, naming the path.
#[cfg(feature = "linux")]
pub fn open_i2c(
    path: impl AsRef<Path>,
) -> buslock::Result<crate::LockedI2c<linux_embedded_hal::I2cdev>> {
    let path = path.as_ref();
    let name = buslock::bus_lock_name(path)?;
    check_node(path, NodeKind::I2cDev)?;
    let lock = crate::BusLock::new(buslock::Mutex::open(&name)?);
    let dev = linux_embedded_hal::I2cdev::new(path).map_err(|e| buslock::Error::Io {
        path: path.into(),
        action: "open I2C device node",
        source: io::Error::other(format!("{e:?}")),
    })?;
    Ok(crate::LockedI2c::new(dev, lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &Path, kind: NodeKind) -> String {
        check_node(path, kind).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_node_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spidev0.0");
        let m = message(&path, NodeKind::Spidev);
        assert!(m.contains(&format!("'{}'", path.display())), "{m}");
        assert!(m.contains("dtparam=spi=on"), "{m}");
    }

    #[test]
    fn a_wrong_node_is_an_error_naming_the_path_and_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("i2c-1");
        std::fs::write(&file, b"").unwrap();
        let m = message(&file, NodeKind::I2cDev);
        assert!(m.contains(&format!("'{}'", file.display())), "{m}");
        assert!(m.contains("a regular file, not a character device"), "{m}");
        let m = message(dir.path(), NodeKind::Spidev);
        assert!(m.contains("a directory"), "{m}");
        // /dev/null is a character device, but of class "mem".
        let m = message(Path::new("/dev/null"), NodeKind::Spidev);
        assert!(m.contains("'/dev/null'") && m.contains("\"mem\""), "{m}");
    }

    #[cfg(feature = "linux")]
    #[test]
    fn the_linux_backends_stop_at_a_missing_or_wrong_node() {
        // The node is checked before any lock is opened.
        let e = open_spidev("/dev/spidev7.0").err().unwrap().to_string();
        assert!(
            e.contains("'/dev/spidev7.0'") && e.contains("dtparam=spi=on"),
            "{e}"
        );
        let e = open_i2c("/dev/i2c-7").err().unwrap().to_string();
        assert!(e.contains("'/dev/i2c-7'") && e.contains("i2c-dev"), "{e}");
        let e = open_spidev("/dev/null").err().unwrap().to_string();
        assert!(
            e.contains("'/dev/null' is not an SPI or I2C device node"),
            "{e}"
        );
    }
}
