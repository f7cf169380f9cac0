//! A transaction through an adapter allocates nothing on the heap (DHAT's
//! testing mode counts every allocation of this process).
//!
//! `harness = false`: libtest's own thread allocates now and then while a
//! test runs (its timeout queue, channels), which DHAT would count too.

use buslock_hal::{BusLock, LockedI2c, LockedSpiDevice, SpiBusDevice};
use embedded_hal::digital;
use embedded_hal::i2c::{self, I2c};
use embedded_hal::spi::{self, SpiDevice};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// A bus that does nothing, so that only the adapter's work is counted.
struct Null;

impl i2c::ErrorType for Null {
    type Error = i2c::ErrorKind;
}
impl I2c for Null {
    fn transaction(&mut self, _: u8, _: &mut [i2c::Operation<'_>]) -> Result<(), Self::Error> {
        Ok(())
    }
}
impl spi::ErrorType for Null {
    type Error = spi::ErrorKind;
}
impl spi::SpiBus for Null {
    fn read(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn transfer(&mut self, _: &mut [u8], _: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn transfer_in_place(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
impl SpiDevice for Null {
    fn transaction(&mut self, _: &mut [spi::Operation<'_, u8>]) -> Result<(), Self::Error> {
        Ok(())
    }
}
struct Pin;
impl digital::ErrorType for Pin {
    type Error = core::convert::Infallible;
}
impl digital::OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn main() {
    transactions_allocate_nothing();
    println!("no_alloc: 1 passed, 0 failed");
}

fn transactions_allocate_nothing() {
    let _profiler = dhat::Profiler::builder()
        .testing()
        .file_name(std::env::temp_dir().join("buslock-hal-no-alloc-dhat.json"))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let lock = |dev| BusLock::for_device_in(dev, dir.path()).unwrap();
    let mut i2c = LockedI2c::new(Null, lock("/dev/i2c-1")).on_owner_died(|_| Ok(()));
    let mut spi = SpiBusDevice::new(Null, Pin, lock("/dev/spidev0.0")).unwrap();
    let node = dir.path().join("spidev1.0");
    std::fs::write(&node, b"").unwrap();
    let mut dev = LockedSpiDevice::new(Null, lock("/dev/spidev1.0").flock_node(&node).unwrap());
    let mut buf = [0u8; 4];
    let mut round = || {
        i2c.write_read(0x42, &[1], &mut buf).unwrap();
        spi.transfer_in_place(&mut buf).unwrap();
        dev.write(&buf).unwrap();
        let mut s = i2c.session().unwrap();
        s.write(0x42, &[1]).unwrap();
        s.read(0x42, &mut buf).unwrap();
    };
    round(); // warm up: the first lock caches this thread's identity
    let before = dhat::HeapStats::get();
    for _ in 0..500 {
        round();
    }
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
}
