//! A demo worker process (`buslock __demo-worker`): takes the bus lock,
//! does one transaction on the simulated bus, releases, pauses, repeats
//! until the demo's end, logging every transaction.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::bus::Bus;
use crate::cli::WorkerArgs;
use crate::error::CliError;
use crate::exit;

/// One logged transaction, times in ns after the demo's epoch.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// When the lock was taken.
    pub acquired_ns: u64,
    /// When it was released.
    pub released_ns: u64,
    /// How long taking it took.
    pub waited_ns: u64,
    /// The previous holder had died.
    pub recovered: bool,
    /// Interleavings seen on the bus.
    pub overlaps: u64,
}

impl Record {
    /// The log line.
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.acquired_ns,
            self.released_ns,
            self.waited_ns,
            u8::from(self.recovered),
            self.overlaps
        )
    }

    /// Parse a log line.
    pub fn parse(line: &str) -> Option<Record> {
        let mut f = line.split_whitespace().map(|x| x.parse::<u64>().ok());
        Some(Record {
            acquired_ns: f.next()??,
            released_ns: f.next()??,
            waited_ns: f.next()??,
            recovered: f.next()?? != 0,
            overlaps: f.next()??,
        })
    }
}

fn since(epoch: SystemTime, t: SystemTime) -> u64 {
    t.duration_since(epoch).map_or(0, |d| d.as_nanos() as u64)
}

/// A small xorshift generator for think times (no need for a crate).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Run transactions until the demo's end.
pub fn run(dir: Option<&Path>, a: &WorkerArgs) -> Result<ExitCode, CliError> {
    let m = crate::cmd::open_for_locking(dir, &a.lock, None)?;
    let bus = Bus::open(&a.bus).map_err(CliError::io(format!("open '{}'", a.bus.display())))?;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.log)
        .map_err(CliError::io(format!("open '{}'", a.log.display())))?;
    let epoch = UNIX_EPOCH + Duration::from_nanos(a.epoch_ns);
    let until = UNIX_EPOCH + Duration::from_nanos(a.until_ns);
    let mut rng = Rng(u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let hold_us = a.hold.as_micros() as u64;
    loop {
        let t0 = SystemTime::now();
        let Ok(remaining) = until.duration_since(t0) else {
            break;
        };
        // lock_timeout keeps this worker's place in the FIFO queue.
        let Some(guard) = m.lock_timeout(remaining)? else {
            break;
        };
        let got = SystemTime::now();
        let recovered = guard.previous_owner_died();
        let overlaps = bus
            .transaction(a.id, recovered, a.hold)
            .map_err(CliError::io(format!("use the bus '{}'", a.bus.display())))?;
        let released = SystemTime::now();
        drop(guard);
        let rec = Record {
            acquired_ns: since(epoch, got),
            released_ns: since(epoch, released),
            waited_ns: got.duration_since(t0).map_or(0, |d| d.as_nanos() as u64),
            recovered,
            overlaps,
        };
        log.write_all(rec.line().as_bytes())
            .map_err(CliError::io(format!("write '{}'", a.log.display())))?;
        // Think between transactions: a quarter to one and a half holds.
        let think = hold_us / 4 + rng.below(hold_us * 5 / 4 + 1);
        std::thread::sleep(Duration::from_micros(think));
    }
    Ok(ExitCode::from(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_round_trip() {
        let r = Record {
            acquired_ns: 5,
            released_ns: 9,
            waited_ns: 2,
            recovered: true,
            overlaps: 0,
        };
        let back = Record::parse(r.line().trim()).unwrap();
        assert_eq!(
            (
                back.acquired_ns,
                back.released_ns,
                back.waited_ns,
                back.recovered
            ),
            (5, 9, 2, true)
        );
        assert!(Record::parse("1 2 x").is_none());
    }
}
