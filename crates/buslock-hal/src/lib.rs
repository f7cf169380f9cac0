//! [`embedded-hal`](embedded_hal) 1.0 SPI and I2C adapters that take a
//! system-wide [`buslock`] mutex around every transaction, so that drivers in
//! *different processes* (and threads) share one bus without interleaving.
//!
//! The kernel serialises one `SPI_IOC_MESSAGE` or one `I2C_RDWR` ioctl and
//! nothing across them: a register read (write the address, then read), an
//! I2C mux selection followed by transfers, or a device reset interleave
//! with other programs unless every program locks the bus around them.
//! embedded-hal-bus shares a bus between drivers of one process only; these
//! adapters do it machine-wide:
//!
//! | adapter             | built from                                  | trait        |
//! |---------------------|---------------------------------------------|--------------|
//! | [`SpiBusDevice`]    | any `SpiBus` plus a chip-select `OutputPin` | `SpiDevice`  |
//! | [`LockedSpiDevice`] | any `SpiDevice` whose CS the kernel drives (linux-embedded-hal's `SpidevDevice`) | `SpiDevice` |
//! | [`LockedI2c`]       | any `I2c`                                   | `I2c`        |
//!
//! Each `transaction` (and `read`, `write`, ...) takes the bus lock, runs
//! and releases it. `session()` holds the bus across several transactions
//! (a guard that implements the same trait). `on_owner_died` registers a
//! hook that resets the device before the first transaction after another
//! holder died mid-transaction. Errors are [`Error`], which implements
//! embedded-hal's `spi::Error` / `i2c::Error` with the inner error's
//! `kind()` (a chip-select failure is `ChipSelectFault`; a lock failure is
//! `Other`).
//!
//! The lock is named after the bus the way every buslock user names it
//! ([`buslock::bus_lock_name`]: `/dev/spidev0.1` -> `spi0`, `/dev/i2c-1`
//! -> `i2c-1`), so Rust, Python and `buslock run --device` agree:
//!
//! ```
//! # use embedded_hal::i2c::{I2c, ErrorType, Operation, ErrorKind};
//! # struct Bus;
//! # impl ErrorType for Bus { type Error = ErrorKind; }
//! # impl I2c for Bus {
//! #     fn transaction(&mut self, _: u8, _: &mut [Operation<'_>]) -> Result<(), ErrorKind> { Ok(()) }
//! # }
//! # let dir = tempfile::tempdir().unwrap();
//! # unsafe { std::env::set_var("BUSLOCK_DIR", dir.path()) };
//! use buslock_hal::{BusLock, LockedI2c};
//!
//! let lock = BusLock::for_device("/dev/i2c-1")?; // the lock "i2c-1"
//! let mut i2c = LockedI2c::new(Bus, lock).on_owner_died(|_bus| {
//!     // another program died mid-transaction: reset the device here
//!     Ok(())
//! });
//! let mut id = [0u8; 1];
//! i2c.write_read(0x68, &[0x75], &mut id)?; // one locked register read
//! {
//!     let mut s = i2c.session()?; // the bus stays ours until `s` drops
//!     s.write(0x70, &[0x04])?; // select a mux channel
//!     s.read(0x40, &mut id)?;  // and talk behind it
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Optional, off by default: [`BusLock::flock_node`] also takes `flock` on
//! the `/dev` node while holding the bus, so tools that lock the node
//! themselves (commaai/panda, google/libhoth) exclude each other with
//! buslock users.
//!
//! Cost: a transaction allocates nothing, and adds the lock's own
//! uncontended cost plus well under a microsecond (`cargo bench -p
//! buslock-hal --bench overhead` measures it against the bare bus).
//!
//! No `embedded-hal-async` variants yet: buslock has no async lock to build
//! them on.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod i2c;
mod lock;
pub mod node;
mod spi;

pub use error::Error;
pub use i2c::{I2cSession, LockedI2c};
pub use lock::{BusLock, Held};
pub use spi::{LockedSpiDevice, SpiBusDevice, SpiBusSession, SpiDeviceSession};
