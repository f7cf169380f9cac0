//! The simulated SPI bus: a small file that every worker writes its
//! transactions into with `pread`/`pwrite` (shared through the page cache,
//! no `unsafe` mapping needed), and that detects interleaved transactions.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0      | 8    | id of the worker whose transaction is on the bus, 0 when idle |
//! | 8      | 8    | overlaps detected, all workers together |
//! | 16     | 8    | completed transactions |
//! | 64     | 64   | the data bytes of the current transaction |

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

const ACTIVE: u64 = 0;
const OVERLAPS: u64 = 8;
const TRANSACTIONS: u64 = 16;
const DATA: u64 = 64;
/// Size of the bus file.
pub const SIZE: u64 = 128;
/// Bytes per transaction, with a pause before each.
const STEPS: u32 = 4;

/// An open simulated bus.
pub struct Bus {
    file: File,
}

/// The bus's counters.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// Overlapping transactions detected.
    pub overlaps: u64,
    /// Completed transactions.
    pub transactions: u64,
}

impl Bus {
    /// Create (or reset) the bus file.
    pub fn create(path: &Path) -> io::Result<Bus> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(SIZE)?;
        Ok(Bus { file })
    }

    /// Open the bus file a parent created.
    pub fn open(path: &Path) -> io::Result<Bus> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Bus { file })
    }

    fn read(&self, at: u64) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, at)?;
        Ok(u64::from_le_bytes(b))
    }

    fn write(&self, at: u64, v: u64) -> io::Result<()> {
        self.file.write_all_at(&v.to_le_bytes(), at)
    }

    /// The counters.
    pub fn counters(&self) -> io::Result<Counters> {
        Ok(Counters {
            overlaps: self.read(OVERLAPS)?,
            transactions: self.read(TRANSACTIONS)?,
        })
    }

    /// One transaction of worker `id` (non-zero) lasting about `hold`:
    /// put `id` on the bus, write [`STEPS`] bytes with pauses, checking
    /// after each that nobody else's id appeared, then go idle. Returns the
    /// number of interleavings seen (0 when the lock works).
    ///
    /// `recover`: the previous holder died mid-transaction, so a leftover
    /// id on the bus is reset instead of counted as an overlap, as a real
    /// driver would re-initialise the device.
    pub fn transaction(&self, id: u64, recover: bool, hold: Duration) -> io::Result<u64> {
        let mut overlaps = 0;
        let leftover = self.read(ACTIVE)?;
        if leftover != 0 && !recover {
            overlaps += 1;
        }
        self.write(ACTIVE, id)?;
        let pause = hold / STEPS;
        for i in 0..STEPS {
            std::thread::sleep(pause);
            self.file
                .write_all_at(&[(id as u8).wrapping_add(i as u8)], DATA + u64::from(i))?;
            if self.read(ACTIVE)? != id {
                overlaps += 1;
            }
        }
        self.write(ACTIVE, 0)?;
        if overlaps > 0 {
            self.write(OVERLAPS, self.read(OVERLAPS)? + overlaps)?;
        }
        self.write(TRANSACTIONS, self.read(TRANSACTIONS)? + 1)?;
        Ok(overlaps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_a_foreign_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Bus::create(&dir.path().join("bus")).unwrap();
        assert_eq!(bus.transaction(1, false, Duration::ZERO).unwrap(), 0);
        // Another worker's id left on the bus, as if it were mid-transfer.
        bus.write(ACTIVE, 2).unwrap();
        assert_eq!(bus.transaction(1, false, Duration::ZERO).unwrap(), 1);
        bus.write(ACTIVE, 2).unwrap();
        assert_eq!(bus.transaction(1, true, Duration::ZERO).unwrap(), 0);
        let c = bus.counters().unwrap();
        assert_eq!((c.overlaps, c.transactions), (1, 3));
    }
}
