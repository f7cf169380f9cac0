//! The cost of a transaction through the adapters against the bare
//! (simulated, in-memory) bus and against the lock's own uncontended lock +
//! unlock, measured in the same run. Target (issue 13): adapter - bare <=
//! lock + 1 µs.
//!
//! Candidates take turns round by round; the median ns per operation of
//! several rounds is reported with the fastest and slowest round.
//!
//! Run with `cargo bench -p buslock-hal --bench overhead`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use buslock_hal::{BusLock, LockedI2c, SpiBusDevice};
use embedded_hal::digital;
use embedded_hal::i2c::{self, I2c};
use embedded_hal::spi::{self, SpiBus, SpiDevice};

const ROUND: Duration = Duration::from_millis(150);
const ROUNDS: usize = 9;

/// An in-memory bus: writes are copied into a register file, reads come
/// from it.
#[derive(Default)]
struct MemBus {
    regs: [u8; 32],
    at: usize,
}

impl MemBus {
    fn put(&mut self, b: u8) {
        self.regs[self.at % 32] = b;
        self.at += 1;
    }
    fn get(&mut self) -> u8 {
        self.at += 1;
        self.regs[self.at % 32]
    }
}

impl i2c::ErrorType for MemBus {
    type Error = i2c::ErrorKind;
}
impl I2c for MemBus {
    fn transaction(&mut self, addr: u8, ops: &mut [i2c::Operation<'_>]) -> Result<(), Self::Error> {
        self.at = addr as usize;
        for op in ops {
            match op {
                i2c::Operation::Write(w) => w.iter().for_each(|&b| self.put(b)),
                i2c::Operation::Read(r) => r.iter_mut().for_each(|b| *b = self.get()),
            }
        }
        Ok(())
    }
}
impl spi::ErrorType for MemBus {
    type Error = spi::ErrorKind;
}
impl SpiBus for MemBus {
    fn read(&mut self, r: &mut [u8]) -> Result<(), Self::Error> {
        r.iter_mut().for_each(|b| *b = self.get());
        Ok(())
    }
    fn write(&mut self, w: &[u8]) -> Result<(), Self::Error> {
        w.iter().for_each(|&b| self.put(b));
        Ok(())
    }
    fn transfer(&mut self, r: &mut [u8], w: &[u8]) -> Result<(), Self::Error> {
        SpiBus::write(self, w)?;
        SpiBus::read(self, r)
    }
    fn transfer_in_place(&mut self, buf: &mut [u8]) -> Result<(), Self::Error> {
        for b in buf {
            let v = self.get();
            self.put(*b);
            *b = v;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[derive(Default)]
struct Pin(bool);
impl digital::ErrorType for Pin {
    type Error = core::convert::Infallible;
}
impl digital::OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0 = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0 = true;
        Ok(())
    }
}

type Candidate<'a> = (&'static str, Box<dyn FnMut(u64) -> f64 + 'a>);

fn candidate<'a>(name: &'static str, mut op: impl FnMut() + 'a) -> Candidate<'a> {
    (
        name,
        Box::new(move |n| {
            let t = Instant::now();
            for _ in 0..n {
                op();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        }),
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let lock = |dev| BusLock::for_device_in(dev, dir.path()).unwrap();
    let raw_lock = lock("/dev/spidev9.0");
    let mut bare_i2c = MemBus::default();
    let mut i2c = LockedI2c::new(MemBus::default(), lock("/dev/i2c-1")).on_owner_died(|_| Ok(()));
    let (mut bare_spi, mut bare_cs) = (MemBus::default(), Pin::default());
    let mut spi =
        SpiBusDevice::new(MemBus::default(), Pin::default(), lock("/dev/spidev0.0")).unwrap();
    let mut buf = [0u8; 4];
    let mut buf2 = [0u8; 4];
    let mut buf3 = [0u8; 4];
    let mut buf4 = [0u8; 4];
    let mut candidates = [
        candidate("buslock lock + unlock (the lock alone)", || {
            drop(black_box(raw_lock.lock().unwrap()))
        }),
        candidate("bare I2c::write_read (1 + 4 bytes)", || {
            bare_i2c
                .write_read(0x42, black_box(&[1]), &mut buf)
                .unwrap()
        }),
        candidate("LockedI2c::write_read", || {
            i2c.write_read(0x42, black_box(&[1]), &mut buf2).unwrap()
        }),
        candidate("bare SpiBus: CS low, transfer 4, flush, CS high", || {
            use digital::OutputPin;
            bare_cs.set_low().unwrap();
            bare_spi.transfer_in_place(black_box(&mut buf3)).unwrap();
            bare_spi.flush().unwrap();
            bare_cs.set_high().unwrap();
        }),
        candidate("SpiBusDevice::transfer_in_place (4 bytes)", || {
            spi.transfer_in_place(black_box(&mut buf4)).unwrap()
        }),
    ];
    // Warm up (buslock calibrates its clock for 20 ms on first use) and
    // size the iteration count so a round lasts about ROUND.
    let mut iters = Vec::new();
    for (_, run) in candidates.iter_mut() {
        run(10_000);
        let ns = run(10_000);
        iters.push(((ROUND.as_nanos() as f64 / ns) as u64).max(1000));
    }
    let mut rounds = vec![Vec::new(); candidates.len()];
    for _ in 0..ROUNDS {
        for (i, (_, run)) in candidates.iter_mut().enumerate() {
            rounds[i].push(run(iters[i]));
        }
    }
    let median = |v: &Vec<f64>| {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    println!(
        "{:<50} {:>9} {:>9} {:>9}",
        "ns per operation", "median", "min", "max"
    );
    for (i, (name, _)) in candidates.iter().enumerate() {
        let r = &rounds[i];
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(0.0, f64::max);
        println!("{name:<50} {:>9.1} {min:>9.1} {max:>9.1}", median(r));
    }
    let lock_ns = median(&rounds[0]);
    for (label, bare, adapter) in [("I2C", 1, 2), ("SPI", 3, 4)] {
        let (b, a) = (median(&rounds[bare]), median(&rounds[adapter]));
        let overhead = a - b;
        let excess = overhead - lock_ns;
        println!(
            "{label}: adapter/bare = {:.2}x; overhead {overhead:.1} ns = lock {lock_ns:.1} ns {} {:.1} ns \
             (target: at most lock + 1000 ns: {})",
            a / b,
            if excess >= 0.0 { "+" } else { "-" },
            excess.abs(),
            if excess <= 1000.0 { "met" } else { "NOT met" }
        );
    }
}
