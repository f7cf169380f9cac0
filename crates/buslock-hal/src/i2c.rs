//! [`LockedI2c`]: an `I2c` whose every transaction holds the bus lock.

use core::fmt;

use embedded_hal::i2c::{AddressMode, ErrorType, I2c, Operation};

use crate::error::Error;
use crate::lock::{BusLock, Held, Hook, ResetState};

/// An [`I2c`] built from any `I2c` bus: each `transaction`, `read`, `write`
/// and `write_read` takes the bus lock, runs, and releases it.
///
/// See the [crate docs](crate) for an example.
pub struct LockedI2c<I: ErrorType> {
    bus: I,
    lock: BusLock,
    hook: Option<Hook<I, I::Error>>,
    reset: ResetState,
}

impl<I: ErrorType> LockedI2c<I> {
    /// Wrap `bus`, locking `lock` around each transaction.
    pub fn new(bus: I, lock: BusLock) -> Self {
        LockedI2c {
            bus,
            lock,
            hook: None,
            reset: ResetState::default(),
        }
    }

    /// Call `hook` with the bus (locked) before the first transaction after
    /// another holder died while holding it, e.g. to re-initialise a
    /// device left mid-transaction. If it fails, the transaction fails with
    /// its error and the hook runs again before the next one.
    pub fn on_owner_died(
        mut self,
        hook: impl FnMut(&mut I) -> Result<(), I::Error> + Send + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Hold the bus until the returned session is dropped; the session is
    /// an [`I2c`] whose transactions do not lock again.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the lock cannot be taken; [`Error::Bus`] when
    /// the owner-died hook fails.
    pub fn session(&mut self) -> Result<I2cSession<'_, I>, Error<I::Error>> {
        let held = self.lock.lock()?;
        let (bus, hook) = (&mut self.bus, &mut self.hook);
        self.reset
            .after_lock(&held, || hook.as_mut().map(|h| h(bus)))
            .map_err(Error::Bus)?;
        Ok(I2cSession {
            bus: &mut self.bus,
            held,
        })
    }

    /// The bus lock.
    pub fn lock(&self) -> &BusLock {
        &self.lock
    }

    /// The wrapped bus (to inspect it; use it only through a session).
    pub fn inner(&self) -> &I {
        &self.bus
    }

    /// Take the bus and its lock apart.
    pub fn into_inner(self) -> (I, BusLock) {
        (self.bus, self.lock)
    }

    #[inline]
    fn locked<R>(
        &mut self,
        f: impl FnOnce(&mut I) -> Result<R, I::Error>,
    ) -> Result<R, Error<I::Error>> {
        let held = self.lock.lock()?;
        let (bus, hook) = (&mut self.bus, &mut self.hook);
        self.reset
            .after_lock(&held, || hook.as_mut().map(|h| h(bus)))
            .map_err(Error::Bus)?;
        let result = f(&mut self.bus);
        drop(held);
        result.map_err(Error::Bus)
    }
}

impl<I: ErrorType + fmt::Debug> fmt::Debug for LockedI2c<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedI2c")
            .field("bus", &self.bus)
            .field("lock", &self.lock)
            .field("on_owner_died", &self.hook.is_some())
            .finish()
    }
}

impl<I: ErrorType> ErrorType for LockedI2c<I> {
    type Error = Error<I::Error>;
}

impl<A: AddressMode, I: I2c<A>> I2c<A> for LockedI2c<I> {
    #[inline]
    fn transaction(&mut self, address: A, ops: &mut [Operation<'_>]) -> Result<(), Self::Error> {
        self.locked(|bus| bus.transaction(address, ops))
    }

    #[inline]
    fn read(&mut self, address: A, read: &mut [u8]) -> Result<(), Self::Error> {
        self.locked(|bus| bus.read(address, read))
    }

    #[inline]
    fn write(&mut self, address: A, write: &[u8]) -> Result<(), Self::Error> {
        self.locked(|bus| bus.write(address, write))
    }

    #[inline]
    fn write_read(&mut self, address: A, write: &[u8], read: &mut [u8]) -> Result<(), Self::Error> {
        self.locked(|bus| bus.write_read(address, write, read))
    }
}

/// The bus held across several transactions ([`LockedI2c::session`]);
/// released when dropped. `!Send`: it holds the bus lock for this thread.
#[must_use = "if unused the bus is released at once"]
pub struct I2cSession<'a, I: ErrorType> {
    bus: &'a mut I,
    held: Held<'a>,
}

impl<I: ErrorType> I2cSession<'_, I> {
    /// Whether the holder before this session died while holding the bus
    /// (the owner-died hook, if any, has run).
    pub fn previous_owner_died(&self) -> bool {
        self.held.previous_owner_died()
    }
}

impl<I: ErrorType> fmt::Debug for I2cSession<'_, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("I2cSession")
            .field("held", &self.held)
            .finish()
    }
}

impl<I: ErrorType> ErrorType for I2cSession<'_, I> {
    type Error = Error<I::Error>;
}

impl<A: AddressMode, I: I2c<A>> I2c<A> for I2cSession<'_, I> {
    fn transaction(&mut self, address: A, ops: &mut [Operation<'_>]) -> Result<(), Self::Error> {
        self.bus.transaction(address, ops).map_err(Error::Bus)
    }

    fn read(&mut self, address: A, read: &mut [u8]) -> Result<(), Self::Error> {
        self.bus.read(address, read).map_err(Error::Bus)
    }

    fn write(&mut self, address: A, write: &[u8]) -> Result<(), Self::Error> {
        self.bus.write(address, write).map_err(Error::Bus)
    }

    fn write_read(&mut self, address: A, write: &[u8], read: &mut [u8]) -> Result<(), Self::Error> {
        self.bus
            .write_read(address, write, read)
            .map_err(Error::Bus)
    }
}
