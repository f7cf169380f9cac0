//! Test support: helper processes (this test binary re-executed) and a
//! simulated bus whose every byte goes to a shared file, so that every
//! participant, and the test at the end, can check that no transaction
//! interleaved with another.
//!
//! The helper processes and the watchdog live once in the unpublished
//! `buslock-test-support` crate; only the simulated bus is this crate's.

#![allow(dead_code, unused_imports)] // each test binary uses a different part

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use embedded_hal::digital;
use embedded_hal::i2c;
use embedded_hal::spi;

pub use buslock_test_support::{Helper, ROLE_ENV, WATCHDOG, run_helper_if_requested};

/// Record kinds in the bus file.
pub const START: u8 = b'S';
pub const BYTE: u8 = b'B';
pub const END: u8 = b'E';
pub const RESET: u8 = b'R';
pub const OPEN_SESSION: u8 = b'O';
pub const CLOSE_SESSION: u8 = b'C';
const REC: usize = 16;

/// One record: kind, byte, pid, transaction number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub byte: u8,
    pub pid: u32,
    pub seq: u32,
}

fn encode(r: Record) -> [u8; REC] {
    let mut b = [0u8; REC];
    b[0] = r.kind;
    b[1] = r.byte;
    b[4..8].copy_from_slice(&r.pid.to_le_bytes());
    b[8..12].copy_from_slice(&r.seq.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Record {
    Record {
        kind: b[0],
        byte: b[1],
        pid: u32::from_le_bytes(b[4..8].try_into().unwrap()),
        seq: u32::from_le_bytes(b[8..12].try_into().unwrap()),
    }
}

/// Every record of the bus file at `path`, from byte `from` on.
pub fn read_records(path: &Path, from: u64) -> Vec<Record> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(from)).unwrap();
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).unwrap();
    bytes.chunks_exact(REC).map(decode).collect()
}

/// Records of other processes found inside one process's transaction or
/// session, read from the whole file: the test's own check.
#[derive(Debug, Default)]
pub struct Verdict {
    pub intrusions: usize,
    pub transactions: std::collections::BTreeMap<u32, usize>,
    pub resets: Vec<Record>,
}

/// Check the whole bus file: inside a transaction (S..E) or session
/// (O..C) of a process, only that process's records may appear; a reset
/// record (R) closes whatever a dead holder left open.
pub fn verdict(path: &Path) -> Verdict {
    let mut v = Verdict::default();
    let mut inside: Option<(u32, usize)> = None; // pid, depth
    for r in read_records(path, 0) {
        if r.kind == RESET {
            v.resets.push(r);
            inside = None;
            continue;
        }
        if let Some((pid, _)) = inside {
            if pid != r.pid {
                v.intrusions += 1;
            }
        }
        match r.kind {
            START | OPEN_SESSION => {
                if r.kind == START {
                    *v.transactions.entry(r.pid).or_default() += 1;
                }
                inside = match inside {
                    Some((pid, depth)) if pid == r.pid => Some((pid, depth + 1)),
                    _ => Some((r.pid, 1)),
                };
            }
            END | CLOSE_SESSION => {
                inside = match inside {
                    Some((pid, depth)) if pid == r.pid && depth > 1 => Some((pid, depth - 1)),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    v
}

/// Writes the bus file and checks it after each transaction, as every
/// participant does.
pub struct Recorder {
    file: File,
    path: std::path::PathBuf,
    pid: u32,
    seq: u32,
    mark: u64,
    in_txn: bool,
    delay: Duration,
    stall_after: Option<usize>,
    bytes: usize,
    /// Foreign records this participant found inside its own transactions.
    pub violations: usize,
    /// Resets written (owner-died hook calls).
    pub resets: usize,
}

/// A recorder shared by a simulated bus and its chip-select pin.
pub type Shared = Rc<RefCell<Recorder>>;

impl Recorder {
    /// Append to `path`; sleep `delay` after each byte; with `stall_after`,
    /// announce `@mid` and stall forever after that many bytes of a
    /// transaction (for a SIGKILL mid-transaction).
    pub fn open(path: &Path, delay: Duration, stall_after: Option<usize>) -> Shared {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        Rc::new(RefCell::new(Recorder {
            file,
            path: path.into(),
            pid: std::process::id(),
            seq: 0,
            mark: 0,
            in_txn: false,
            delay,
            stall_after,
            bytes: 0,
            violations: 0,
            resets: 0,
        }))
    }

    fn put(&mut self, kind: u8, byte: u8) {
        let r = Record {
            kind,
            byte,
            pid: self.pid,
            seq: self.seq,
        };
        // O_APPEND: each 16-byte record lands whole at the end.
        self.file.write_all(&encode(r)).unwrap();
    }

    /// The file's length now.
    pub fn len(&self) -> u64 {
        self.file.metadata().unwrap().len()
    }

    /// Begin a transaction.
    pub fn start(&mut self) {
        self.mark = self.len();
        self.seq += 1;
        self.bytes = 0;
        self.in_txn = true;
        self.put(START, 0);
    }

    /// One byte on the bus.
    pub fn byte(&mut self, b: u8) {
        self.put(BYTE, b);
        self.bytes += 1;
        if self.stall_after == Some(self.bytes) {
            println!("@mid");
            std::io::stdout().flush().unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
    }

    /// End the transaction and check it: from its start record on, every
    /// record must be this process's.
    pub fn end(&mut self) {
        if !self.in_txn {
            return;
        }
        self.put(END, 0);
        self.in_txn = false;
        let (mark, seq) = (self.mark, self.seq);
        self.violations += self.foreign_after(mark, |r| r.kind == START && r.seq == seq);
    }

    /// Records of other processes after the first record from `mark` on
    /// that is ours and matches `first`.
    fn foreign_after(&self, mark: u64, first: impl Fn(&Record) -> bool) -> usize {
        let records = read_records(&self.path, mark);
        let begin = records
            .iter()
            .position(|r| r.pid == self.pid && first(r))
            .expect("own start record");
        records[begin..]
            .iter()
            .filter(|r| r.pid != self.pid)
            .count()
    }

    /// Open a session (records O) and return its mark.
    pub fn open_session(&mut self) -> u64 {
        let mark = self.len();
        self.put(OPEN_SESSION, 0);
        mark
    }

    /// Close the session opened at `mark` and check all of it.
    pub fn close_session(&mut self, mark: u64) {
        self.put(CLOSE_SESSION, 0);
        self.violations += self.foreign_after(mark, |r| r.kind == OPEN_SESSION);
    }

    /// The owner-died hook's reset.
    pub fn reset(&mut self) {
        self.resets += 1;
        self.put(RESET, 0);
    }
}

/// A simulated I2C bus: a transaction is S, one B per byte written or
/// read, E.
pub struct SimI2c(pub Shared);

impl i2c::ErrorType for SimI2c {
    type Error = i2c::ErrorKind;
}

impl i2c::I2c for SimI2c {
    fn transaction(
        &mut self,
        address: u8,
        ops: &mut [i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        let mut rec = self.0.borrow_mut();
        rec.start();
        rec.byte(address);
        for op in ops {
            match op {
                i2c::Operation::Write(buf) => buf.iter().for_each(|&b| rec.byte(b)),
                i2c::Operation::Read(buf) => {
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = i as u8;
                        rec.byte(*b);
                    }
                }
            }
        }
        rec.end();
        Ok(())
    }
}

/// A simulated SPI bus: bytes only; the chip select frames transactions.
pub struct SimSpiBus(pub Shared);

impl spi::ErrorType for SimSpiBus {
    type Error = spi::ErrorKind;
}

impl spi::SpiBus for SimSpiBus {
    fn read(&mut self, words: &mut [u8]) -> Result<(), Self::Error> {
        let mut rec = self.0.borrow_mut();
        words.iter_mut().for_each(|w| {
            *w = 0xa5;
            rec.byte(*w)
        });
        Ok(())
    }
    fn write(&mut self, words: &[u8]) -> Result<(), Self::Error> {
        let mut rec = self.0.borrow_mut();
        words.iter().for_each(|&w| rec.byte(w));
        Ok(())
    }
    fn transfer(&mut self, read: &mut [u8], write: &[u8]) -> Result<(), Self::Error> {
        let mut rec = self.0.borrow_mut();
        for i in 0..read.len().max(write.len()) {
            let w = write.get(i).copied().unwrap_or(0);
            rec.byte(w);
            if let Some(r) = read.get_mut(i) {
                *r = !w;
            }
        }
        Ok(())
    }
    fn transfer_in_place(&mut self, words: &mut [u8]) -> Result<(), Self::Error> {
        let mut rec = self.0.borrow_mut();
        words.iter_mut().for_each(|w| {
            rec.byte(*w);
            *w = !*w
        });
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A simulated chip select: low starts a transaction, high ends it.
pub struct SimCs(pub Shared);

impl digital::ErrorType for SimCs {
    type Error = core::convert::Infallible;
}

impl digital::OutputPin for SimCs {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0.borrow_mut().start();
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.borrow_mut().end();
        Ok(())
    }
}

/// A simulated SPI device whose chip select "the kernel" drives: each
/// transaction is framed by itself, like one `SPI_IOC_MESSAGE`.
pub struct SimSpiDevice(pub Shared);

impl spi::ErrorType for SimSpiDevice {
    type Error = spi::ErrorKind;
}

impl spi::SpiDevice for SimSpiDevice {
    fn transaction(&mut self, ops: &mut [spi::Operation<'_, u8>]) -> Result<(), Self::Error> {
        self.0.borrow_mut().start();
        let mut bus = SimSpiBus(self.0.clone());
        for op in ops {
            use spi::SpiBus;
            match op {
                spi::Operation::Read(b) => bus.read(b)?,
                spi::Operation::Write(b) => bus.write(b)?,
                spi::Operation::Transfer(r, w) => bus.transfer(r, w)?,
                spi::Operation::TransferInPlace(b) => bus.transfer_in_place(b)?,
                spi::Operation::DelayNs(_) => {}
            }
        }
        self.0.borrow_mut().end();
        Ok(())
    }
}
