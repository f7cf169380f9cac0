//! [`Error`]: a bus error, a chip-select error or a lock error.

use core::convert::Infallible;
use core::fmt;

/// An error from a buslock adapter.
///
/// `E` is the wrapped bus's error, `P` the chip-select pin's
/// ([`Infallible`] where the adapter drives no pin).
#[derive(Debug)]
pub enum Error<E, P = Infallible> {
    /// The bus (or wrapped device) failed; its `kind()` is passed on.
    Bus(E),
    /// Setting the chip-select pin failed (`ErrorKind::ChipSelectFault`).
    ChipSelect(P),
    /// Taking the bus lock failed (`ErrorKind::Other`): an unusable lock
    /// directory or lock file, or the device node could not be locked.
    Lock(buslock::Error),
}

impl<E: fmt::Debug, P: fmt::Debug> fmt::Display for Error<E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "bus error: {e:?}"),
            Error::ChipSelect(e) => write!(f, "chip-select pin error: {e:?}"),
            Error::Lock(e) => write!(f, "cannot lock the bus: {e}"),
        }
    }
}

impl<E: fmt::Debug, P: fmt::Debug> std::error::Error for Error<E, P> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Lock(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: embedded_hal::spi::Error, P: fmt::Debug> embedded_hal::spi::Error for Error<E, P> {
    fn kind(&self) -> embedded_hal::spi::ErrorKind {
        use embedded_hal::spi::ErrorKind;
        match self {
            Error::Bus(e) => e.kind(),
            Error::ChipSelect(_) => ErrorKind::ChipSelectFault,
            Error::Lock(_) => ErrorKind::Other,
        }
    }
}

impl<E: embedded_hal::i2c::Error, P: fmt::Debug> embedded_hal::i2c::Error for Error<E, P> {
    fn kind(&self) -> embedded_hal::i2c::ErrorKind {
        match self {
            Error::Bus(e) => e.kind(),
            Error::ChipSelect(_) | Error::Lock(_) => embedded_hal::i2c::ErrorKind::Other,
        }
    }
}

impl<E, P> From<buslock::Error> for Error<E, P> {
    fn from(e: buslock::Error) -> Self {
        Error::Lock(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::{self, NoAcknowledgeSource};
    use embedded_hal::spi;

    #[test]
    fn kinds_follow_the_cause() {
        let lock = || buslock::Error::Interrupted {
            name: "spi0".into(),
        };
        let e: Error<spi::ErrorKind, ()> = Error::Bus(spi::ErrorKind::Overrun);
        assert_eq!(spi::Error::kind(&e), spi::ErrorKind::Overrun);
        let e: Error<spi::ErrorKind, ()> = Error::ChipSelect(());
        assert_eq!(spi::Error::kind(&e), spi::ErrorKind::ChipSelectFault);
        let e: Error<spi::ErrorKind, ()> = Error::Lock(lock());
        assert_eq!(spi::Error::kind(&e), spi::ErrorKind::Other);
        let nack = i2c::ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);
        let e: Error<i2c::ErrorKind> = Error::Bus(nack);
        assert_eq!(i2c::Error::kind(&e), nack);
        let e: Error<i2c::ErrorKind> = Error::Lock(lock());
        assert_eq!(i2c::Error::kind(&e), i2c::ErrorKind::Other);
        assert!(e.to_string().contains("waiting for lock 'spi0'"), "{e}");
    }
}
