//! SPI adapters: [`SpiBusDevice`] (a bus plus a chip-select pin) and
//! [`LockedSpiDevice`] (a device whose chip select the kernel drives).

use core::fmt;
use std::time::Duration;

use embedded_hal::digital::OutputPin;
use embedded_hal::spi::{ErrorType, Operation, SpiBus, SpiDevice};

use crate::error::Error;
use crate::lock::{BusLock, Held, Hook, ResetState};

/// The owner-died hook of a [`SpiBusDevice`].
type BusHook<B, CS> = Box<
    dyn FnMut(
            &mut B,
            &mut CS,
        ) -> Result<
            (),
            Error<<B as ErrorType>::Error, <CS as embedded_hal::digital::ErrorType>::Error>,
        > + Send,
>;

/// A [`SpiDevice`] built from any [`SpiBus`] plus a chip-select
/// [`OutputPin`]: each transaction takes the bus lock, selects the device
/// (CS low), runs the operations, flushes, deselects (CS high, also after a
/// bus error) and releases the lock.
///
/// `Operation::DelayNs` flushes the bus and sleeps the thread.
pub struct SpiBusDevice<B: ErrorType, CS: OutputPin> {
    bus: B,
    cs: CS,
    lock: BusLock,
    hook: Option<BusHook<B, CS>>,
    reset: ResetState,
}

impl<B: ErrorType, CS: OutputPin> SpiBusDevice<B, CS> {
    /// Wrap `bus` and chip select `cs`, locking `lock` around each
    /// transaction. Drives `cs` high (deselected) first.
    ///
    /// # Errors
    ///
    /// [`Error::ChipSelect`] when `cs` cannot be set.
    pub fn new(bus: B, mut cs: CS, lock: BusLock) -> Result<Self, Error<B::Error, CS::Error>> {
        cs.set_high().map_err(Error::ChipSelect)?;
        Ok(SpiBusDevice {
            bus,
            cs,
            lock,
            hook: None,
            reset: ResetState::default(),
        })
    }

    /// Call `hook` with the bus and the (deselected) chip select, the bus
    /// locked, before the first transaction after another holder died
    /// while holding it. If it fails, the transaction fails with its error
    /// and the hook runs again before the next one.
    pub fn on_owner_died(
        mut self,
        hook: impl FnMut(&mut B, &mut CS) -> Result<(), Error<B::Error, CS::Error>> + Send + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Hold the bus until the returned session is dropped; the session is
    /// a [`SpiDevice`] whose transactions do not lock again.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the lock cannot be taken, or the hook's error.
    pub fn session(&mut self) -> Result<SpiBusSession<'_, B, CS>, Error<B::Error, CS::Error>> {
        let held = self.lock.lock()?;
        let (bus, cs, hook) = (&mut self.bus, &mut self.cs, &mut self.hook);
        self.reset
            .after_lock(&held, || hook.as_mut().map(|h| h(bus, cs)))?;
        Ok(SpiBusSession {
            bus: &mut self.bus,
            cs: &mut self.cs,
            held,
        })
    }

    /// The bus lock.
    pub fn lock(&self) -> &BusLock {
        &self.lock
    }

    /// Take the bus, the pin and the lock apart.
    pub fn into_inner(self) -> (B, CS, BusLock) {
        (self.bus, self.cs, self.lock)
    }
}

/// Select, run `ops`, flush, deselect (also after an error).
#[inline]
fn run_selected<W: Copy + 'static, B: SpiBus<W>, CS: OutputPin>(
    bus: &mut B,
    cs: &mut CS,
    ops: &mut [Operation<'_, W>],
) -> Result<(), Error<B::Error, CS::Error>> {
    cs.set_low().map_err(Error::ChipSelect)?;
    let result = run_ops(bus, ops).and_then(|()| bus.flush());
    let deselect = cs.set_high().map_err(Error::ChipSelect);
    result.map_err(Error::Bus)?;
    deselect
}

#[inline]
fn run_ops<W: Copy + 'static, B: SpiBus<W>>(
    bus: &mut B,
    ops: &mut [Operation<'_, W>],
) -> Result<(), B::Error> {
    for op in ops {
        match op {
            Operation::Read(buf) => bus.read(buf)?,
            Operation::Write(buf) => bus.write(buf)?,
            Operation::Transfer(read, write) => bus.transfer(read, write)?,
            Operation::TransferInPlace(buf) => bus.transfer_in_place(buf)?,
            Operation::DelayNs(ns) => {
                bus.flush()?;
                std::thread::sleep(Duration::from_nanos(u64::from(*ns)));
            }
        }
    }
    Ok(())
}

impl<B: ErrorType, CS: OutputPin> ErrorType for SpiBusDevice<B, CS> {
    type Error = Error<B::Error, CS::Error>;
}

impl<W: Copy + 'static, B: SpiBus<W>, CS: OutputPin> SpiDevice<W> for SpiBusDevice<B, CS> {
    #[inline]
    fn transaction(&mut self, ops: &mut [Operation<'_, W>]) -> Result<(), Self::Error> {
        let held = self.lock.lock()?;
        let (bus, cs, hook) = (&mut self.bus, &mut self.cs, &mut self.hook);
        self.reset
            .after_lock(&held, || hook.as_mut().map(|h| h(bus, cs)))?;
        let result = run_selected(&mut self.bus, &mut self.cs, ops);
        drop(held);
        result
    }
}

impl<B: ErrorType + fmt::Debug, CS: OutputPin + fmt::Debug> fmt::Debug for SpiBusDevice<B, CS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiBusDevice")
            .field("bus", &self.bus)
            .field("cs", &self.cs)
            .field("lock", &self.lock)
            .field("on_owner_died", &self.hook.is_some())
            .finish()
    }
}

/// The bus of a [`SpiBusDevice`] held across several transactions; each
/// transaction still selects and deselects the device. Released when
/// dropped; `!Send`.
#[must_use = "if unused the bus is released at once"]
pub struct SpiBusSession<'a, B, CS> {
    bus: &'a mut B,
    cs: &'a mut CS,
    held: Held<'a>,
}

impl<B, CS> SpiBusSession<'_, B, CS> {
    /// Whether the holder before this session died while holding the bus.
    pub fn previous_owner_died(&self) -> bool {
        self.held.previous_owner_died()
    }
}

impl<B, CS> fmt::Debug for SpiBusSession<'_, B, CS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiBusSession")
            .field("held", &self.held)
            .finish()
    }
}

impl<B: ErrorType, CS: OutputPin> ErrorType for SpiBusSession<'_, B, CS> {
    type Error = Error<B::Error, CS::Error>;
}

impl<W: Copy + 'static, B: SpiBus<W>, CS: OutputPin> SpiDevice<W> for SpiBusSession<'_, B, CS> {
    fn transaction(&mut self, ops: &mut [Operation<'_, W>]) -> Result<(), Self::Error> {
        run_selected(self.bus, self.cs, ops)
    }
}

/// A [`SpiDevice`] whose chip select something else drives (the kernel's
/// spidev, i.e. linux-embedded-hal's `SpidevDevice`): each transaction
/// takes the bus lock, runs the wrapped device's transaction, and releases
/// the lock.
pub struct LockedSpiDevice<D: ErrorType> {
    dev: D,
    lock: BusLock,
    hook: Option<Hook<D, D::Error>>,
    reset: ResetState,
}

impl<D: ErrorType> LockedSpiDevice<D> {
    /// Wrap `dev`, locking `lock` around each transaction.
    pub fn new(dev: D, lock: BusLock) -> Self {
        LockedSpiDevice {
            dev,
            lock,
            hook: None,
            reset: ResetState::default(),
        }
    }

    /// Call `hook` with the device (bus locked) before the first
    /// transaction after another holder died while holding the bus. If it
    /// fails, the transaction fails with its error and the hook runs again
    /// before the next one.
    pub fn on_owner_died(
        mut self,
        hook: impl FnMut(&mut D) -> Result<(), D::Error> + Send + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Hold the bus until the returned session is dropped; the session is
    /// a [`SpiDevice`] whose transactions do not lock again.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the lock cannot be taken; [`Error::Bus`] when
    /// the owner-died hook fails.
    pub fn session(&mut self) -> Result<SpiDeviceSession<'_, D>, Error<D::Error>> {
        let held = self.lock.lock()?;
        let (dev, hook) = (&mut self.dev, &mut self.hook);
        self.reset
            .after_lock(&held, || hook.as_mut().map(|h| h(dev)))
            .map_err(Error::Bus)?;
        Ok(SpiDeviceSession {
            dev: &mut self.dev,
            held,
        })
    }

    /// The bus lock.
    pub fn lock(&self) -> &BusLock {
        &self.lock
    }

    /// The wrapped device (to inspect it; use it only through a session).
    pub fn inner(&self) -> &D {
        &self.dev
    }

    /// Take the device and its lock apart.
    pub fn into_inner(self) -> (D, BusLock) {
        (self.dev, self.lock)
    }
}

impl<D: ErrorType> ErrorType for LockedSpiDevice<D> {
    type Error = Error<D::Error>;
}

impl<W: Copy + 'static, D: SpiDevice<W>> SpiDevice<W> for LockedSpiDevice<D> {
    #[inline]
    fn transaction(&mut self, ops: &mut [Operation<'_, W>]) -> Result<(), Self::Error> {
        let held = self.lock.lock()?;
        let (dev, hook) = (&mut self.dev, &mut self.hook);
        self.reset
            .after_lock(&held, || hook.as_mut().map(|h| h(dev)))
            .map_err(Error::Bus)?;
        let result = self.dev.transaction(ops);
        drop(held);
        result.map_err(Error::Bus)
    }
}

impl<D: ErrorType + fmt::Debug> fmt::Debug for LockedSpiDevice<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedSpiDevice")
            .field("dev", &self.dev)
            .field("lock", &self.lock)
            .field("on_owner_died", &self.hook.is_some())
            .finish()
    }
}

/// The bus of a [`LockedSpiDevice`] held across several transactions.
/// Released when dropped; `!Send`.
#[must_use = "if unused the bus is released at once"]
pub struct SpiDeviceSession<'a, D> {
    dev: &'a mut D,
    held: Held<'a>,
}

impl<D> SpiDeviceSession<'_, D> {
    /// Whether the holder before this session died while holding the bus.
    pub fn previous_owner_died(&self) -> bool {
        self.held.previous_owner_died()
    }
}

impl<D> fmt::Debug for SpiDeviceSession<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiDeviceSession")
            .field("held", &self.held)
            .finish()
    }
}

impl<D: ErrorType> ErrorType for SpiDeviceSession<'_, D> {
    type Error = Error<D::Error>;
}

impl<W: Copy + 'static, D: SpiDevice<W>> SpiDevice<W> for SpiDeviceSession<'_, D> {
    fn transaction(&mut self, ops: &mut [Operation<'_, W>]) -> Result<(), Self::Error> {
        self.dev.transaction(ops).map_err(Error::Bus)
    }
}
