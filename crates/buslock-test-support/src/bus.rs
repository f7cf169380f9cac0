//! The witness bus: a small file shared by every process, in which each
//! holder of the lock under test checks and sets an "inside" flag and
//! increments a counter, so that overlapping holders and lost updates show.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A "bus" shared by every process through a small file: the holder checks
/// and sets an inside flag and increments a counter, so overlapping holders
/// and lost updates show.
pub struct Bus {
    file: File,
}

const INSIDE: u64 = 0;
const COUNTER: u64 = 8;
const VIOLATIONS: u64 = 16;

impl Bus {
    /// The bus file in directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("bus.dat")
    }

    /// Create (or truncate) the bus file in `dir`, all counts zero.
    pub fn create(dir: &Path) -> Bus {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(Self::path(dir))
            .expect("create bus file");
        file.write_all_at(&[0u8; 24], 0).expect("init bus file");
        Bus { file }
    }

    /// Open the bus file that [`Bus::create`] made in `dir`.
    pub fn open(dir: &Path) -> Bus {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(Self::path(dir))
            .expect("open bus file");
        Bus { file }
    }

    fn get(&self, at: u64) -> u64 {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, at).expect("read bus");
        u64::from_le_bytes(b)
    }

    fn set(&self, at: u64, v: u64) {
        self.file
            .write_all_at(&v.to_le_bytes(), at)
            .expect("write bus");
    }

    /// One transaction; call only while holding the lock.
    pub fn transaction(&self, me: u64) {
        if self.get(INSIDE) != 0 {
            self.set(VIOLATIONS, self.get(VIOLATIONS) + 1);
        }
        self.set(INSIDE, me);
        let c = self.get(COUNTER);
        std::hint::black_box(c);
        if self.get(INSIDE) != me {
            self.set(VIOLATIONS, self.get(VIOLATIONS) + 1);
        }
        self.set(COUNTER, c + 1);
        self.set(INSIDE, 0);
    }

    /// Transactions completed.
    pub fn counter(&self) -> u64 {
        self.get(COUNTER)
    }

    /// Overlaps seen: a transaction that found another inside, or found
    /// the flag changed under it.
    pub fn violations(&self) -> u64 {
        self.get(VIOLATIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_that_finds_another_inside_counts_a_violation() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Bus::create(dir.path());
        bus.transaction(1);
        assert_eq!((bus.counter(), bus.violations()), (1, 0));
        // Another holder is inside (as when two hold at once).
        bus.set(INSIDE, 2);
        bus.transaction(1);
        assert_eq!((bus.counter(), bus.violations()), (2, 1));
        // Seen through a second handle, as another process sees it.
        let other = Bus::open(dir.path());
        assert_eq!((other.counter(), other.violations()), (2, 1));
    }
}
