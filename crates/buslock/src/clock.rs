//! Cheap timestamps for the lock path.
//!
//! `clock_gettime` costs about 25 ns on the machines this was measured on,
//! more than the lock itself (and more on a Raspberry Pi). Where the kernel
//! itself builds `CLOCK_MONOTONIC` on the CPU's counter (clocksource `tsc`
//! on x86_64, `arch_sys_counter` on aarch64, so the counter is invariant and
//! synchronised across CPUs), timestamps come from the counter, scaled to
//! `CLOCK_MONOTONIC` nanoseconds with a factor measured against
//! `clock_gettime` in this process. The first 20 ms of a process, other
//! CPUs and clocksources, and `BUSLOCK_CLOCK=syscall` use `clock_gettime`.
//!
//! The scale is refined on slow paths (opening a lock, waiting for one) over
//! an ever longer baseline, so its error shrinks as the process runs; after
//! 20 ms it is already within a few parts per million.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

use rustix::time::{ClockId, clock_gettime};

use crate::raw::sys::{COUNTER_CLOCKSOURCE, cycle_counter};

/// Counter ticks → ns scale, as ns per tick << 32; 0 while not calibrated.
static MULT: AtomicU64 = AtomicU64::new(0);
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);
static BASE_MONO: AtomicU64 = AtomicU64::new(0);
static LAST_REFINE_MONO: AtomicU64 = AtomicU64::new(0);
/// When [`REAL_OFFSET`] was last measured (`CLOCK_MONOTONIC` ns).
static LAST_OFFSET_MONO: AtomicU64 = AtomicU64::new(0);
/// `CLOCK_REALTIME - CLOCK_MONOTONIC`, ns.
static REAL_OFFSET: AtomicI64 = AtomicI64::new(0);
static STATE: AtomicU8 = AtomicU8::new(UNDECIDED);
static CALIBRATION: StdMutex<()> = StdMutex::new(());

const UNDECIDED: u8 = 0;
const COUNTER: u8 = 1;
const SYSCALL: u8 = 2;

const FIRST_CALIBRATION_NS: u64 = 20_000_000;
const REFINE_EVERY_NS: u64 = 1_000_000_000;

fn ts_ns(ts: rustix::time::Timespec) -> u64 {
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// `clock_gettime(CLOCK_MONOTONIC)` in ns.
pub fn monotonic_ns_syscall() -> u64 {
    ts_ns(clock_gettime(ClockId::Monotonic))
}

/// `clock_gettime(CLOCK_REALTIME)` in ns since the Unix epoch.
pub fn realtime_ns_syscall() -> u64 {
    ts_ns(clock_gettime(ClockId::Realtime))
}

/// `CLOCK_MONOTONIC` in ns, cheaply.
#[inline]
pub fn now_ns() -> u64 {
    let mult = MULT.load(Ordering::Acquire);
    if mult != 0 {
        if let Some(ticks) = cycle_counter() {
            let delta = ticks.wrapping_sub(BASE_TICKS.load(Ordering::Relaxed));
            let ns = ((u128::from(delta) * u128::from(mult)) >> 32) as u64;
            return BASE_MONO.load(Ordering::Relaxed).wrapping_add(ns);
        }
    }
    let now = monotonic_ns_syscall();
    refine_at(now);
    now
}

/// Convert a `CLOCK_MONOTONIC` ns value to ns since the Unix epoch, with
/// the clocks' offset as last measured in this process (measured now if
/// it never was; kept fresh by [`refine`]). For records written under the
/// lock, where two more system calls would cost more than the rest.
#[inline]
pub fn to_realtime_ns(mono_ns: u64) -> u64 {
    let offset = match REAL_OFFSET.load(Ordering::Relaxed) {
        0 => measure_real_offset(),
        offset => offset,
    };
    mono_ns.wrapping_add_signed(offset)
}

/// The wall clock as seen from `CLOCK_MONOTONIC` at one moment: converts
/// monotonic timestamps (written by any process: the clock is
/// system-wide) to wall-clock times, with the clocks' offset checked when
/// it was made. What inspection shows: right even when the wall clock was
/// set since (NTP on a board without a real-time clock) and in a process
/// that never took a lock; one record read twice shows one time (the
/// offset changes only when the wall clock moved).
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    offset: i64,
}

impl WallClock {
    /// Check the offset now (a few `clock_gettime` calls).
    pub fn now() -> WallClock {
        WallClock {
            offset: measure_real_offset(),
        }
    }

    /// The wall-clock time of `CLOCK_MONOTONIC` ns `mono_ns`.
    pub fn at(self, mono_ns: u64) -> std::time::SystemTime {
        std::time::UNIX_EPOCH
            + std::time::Duration::from_nanos(mono_ns.wrapping_add_signed(self.offset))
    }
}

/// How far a new measurement of the wall clock's offset must be from the
/// kept one to replace it: more than two back-to-back `clock_gettime`
/// calls can differ by (so that two reads of one record show one time),
/// less than anyone reads into a timestamp printed to the millisecond.
const OFFSET_JITTER_NS: u64 = 100_000;

/// Measure `CLOCK_REALTIME - CLOCK_MONOTONIC`, and keep it if the wall
/// clock moved (it was set, or slewed by more than [`OFFSET_JITTER_NS`]);
/// the offset in effect.
fn measure_real_offset() -> i64 {
    // The wall clock read between two monotonic readings, the narrowest
    // bracket of three: a thread preempted between its two calls would
    // otherwise measure an offset off by the time it lost.
    let mut best = (0i64, 0u64, u64::MAX);
    for _ in 0..3 {
        let m0 = monotonic_ns_syscall();
        let real = realtime_ns_syscall();
        let m1 = monotonic_ns_syscall();
        let width = m1.saturating_sub(m0);
        if width < best.2 {
            let mid = m0 + width / 2;
            best = (real.wrapping_sub(mid) as i64, mid, width);
        }
    }
    let (measured, mono, _) = best;
    LAST_OFFSET_MONO.store(mono, Ordering::Relaxed);
    let kept = REAL_OFFSET.load(Ordering::Relaxed);
    if kept != 0 && measured.abs_diff(kept) <= OFFSET_JITTER_NS {
        return kept;
    }
    REAL_OFFSET.store(measured, Ordering::Relaxed);
    measured
}

/// Improve the calibration, and measure the wall clock's offset again, if
/// it is due; called on slow paths only.
pub fn refine() {
    let now = monotonic_ns_syscall();
    if now.saturating_sub(LAST_OFFSET_MONO.load(Ordering::Relaxed)) >= REFINE_EVERY_NS {
        measure_real_offset();
    }
    refine_at(now);
}

fn decide() -> u8 {
    let wanted = std::env::var_os("BUSLOCK_CLOCK");
    let usable = cycle_counter().is_some()
        && wanted.as_deref() != Some("syscall".as_ref())
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .map(|s| s.trim() == COUNTER_CLOCKSOURCE)
        .unwrap_or(false);
    if usable { COUNTER } else { SYSCALL }
}

fn refine_at(mono_hint: u64) {
    let state = STATE.load(Ordering::Relaxed);
    if state == SYSCALL {
        return;
    }
    if state == COUNTER {
        let last = LAST_REFINE_MONO.load(Ordering::Relaxed);
        let due = if MULT.load(Ordering::Relaxed) == 0 {
            FIRST_CALIBRATION_NS
        } else {
            REFINE_EVERY_NS
        };
        if mono_hint.saturating_sub(last) < due {
            return;
        }
    }
    let Ok(_serial) = CALIBRATION.try_lock() else {
        return; // another thread is calibrating
    };
    calibrate_locked();
}

/// Decide how to read the clock, or improve the counter's scale; the
/// caller holds [`CALIBRATION`]. The state is read again here: another
/// thread may have decided since the caller looked.
fn calibrate_locked() {
    measure_real_offset();
    match STATE.load(Ordering::Relaxed) {
        UNDECIDED => {
            let decided = decide();
            if decided == COUNTER {
                let (ticks, mono) = paired_sample();
                BASE_TICKS.store(ticks, Ordering::Relaxed);
                BASE_MONO.store(mono, Ordering::Relaxed);
                LAST_REFINE_MONO.store(mono, Ordering::Relaxed);
            }
            STATE.store(decided, Ordering::Relaxed);
            return;
        }
        // Decided for clock_gettime: there is no counter scale to compute
        // (and no base to compute it from).
        SYSCALL => return,
        _ => {}
    }
    let (ticks, mono) = paired_sample();
    let dt = ticks.wrapping_sub(BASE_TICKS.load(Ordering::Relaxed));
    let dns = mono.saturating_sub(BASE_MONO.load(Ordering::Relaxed));
    if dt == 0 || dns < FIRST_CALIBRATION_NS {
        return;
    }
    let mult = ((u128::from(dns) << 32) / u128::from(dt)) as u64;
    LAST_REFINE_MONO.store(mono, Ordering::Relaxed);
    MULT.store(mult.max(1), Ordering::Release);
}

/// A counter reading and a `CLOCK_MONOTONIC` reading taken as close together
/// as this process can: the pair with the shortest bracket of three tries.
fn paired_sample() -> (u64, u64) {
    let mut best = (0u64, 0u64, u64::MAX);
    for _ in 0..3 {
        let t0 = cycle_counter().unwrap_or(0);
        let mono = monotonic_ns_syscall();
        let t1 = cycle_counter().unwrap_or(0);
        let width = t1.wrapping_sub(t0);
        if width < best.2 {
            best = (t0 + width / 2, mono, width);
        }
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defect: a thread that saw the clock undecided, then took the
    /// calibration lock after another thread had decided for
    /// `clock_gettime`, computed a counter scale from bases never set, and
    /// from then on every `now_ns` of the process read the counter with it:
    /// time crawled, so no replaced-file check ever came due (seen under
    /// qemu-user, where the counter is not the clocksource, when the test
    /// threads of a loaded process started together).
    #[test]
    fn a_calibration_that_finds_the_clock_decided_for_syscalls_leaves_the_counter_off() {
        let serial = CALIBRATION.lock().unwrap();
        let (state, mult) = (STATE.load(Ordering::Relaxed), MULT.load(Ordering::Relaxed));
        let (ticks, mono) = (
            BASE_TICKS.load(Ordering::Relaxed),
            BASE_MONO.load(Ordering::Relaxed),
        );
        // As in a process that decided for syscalls: no bases, no scale.
        STATE.store(SYSCALL, Ordering::Relaxed);
        MULT.store(0, Ordering::Relaxed);
        BASE_TICKS.store(0, Ordering::Relaxed);
        BASE_MONO.store(0, Ordering::Relaxed);
        calibrate_locked();
        let computed = MULT.load(Ordering::Relaxed);
        BASE_TICKS.store(ticks, Ordering::Relaxed);
        BASE_MONO.store(mono, Ordering::Relaxed);
        STATE.store(state, Ordering::Relaxed);
        MULT.store(mult, Ordering::Release);
        drop(serial);
        assert_eq!(
            computed, 0,
            "a counter scale was computed for a syscall clock"
        );
    }

    /// The defect: every read measured the offset anew, so one event read
    /// twice showed two times some nanoseconds apart (a view and the lock
    /// disagreed in a test of the event ring).
    #[test]
    fn one_timestamp_converted_twice_is_one_wall_clock_time() {
        let mono = monotonic_ns_syscall();
        let first = WallClock::now().at(mono);
        for _ in 0..100 {
            assert_eq!(WallClock::now().at(mono), first);
        }
        let real = std::time::SystemTime::now();
        let gap = real.duration_since(first).unwrap_or_default();
        assert!(
            gap < std::time::Duration::from_secs(60),
            "{first:?} vs {real:?}"
        );
    }

    #[test]
    fn calibrated_clock_tracks_clock_gettime() {
        refine();
        std::thread::sleep(std::time::Duration::from_millis(30));
        refine();
        for _ in 0..5 {
            let a = monotonic_ns_syscall();
            let b = now_ns();
            let c = monotonic_ns_syscall();
            // Within 50 µs of the bracketing syscalls: scale error after a
            // 30 ms baseline is parts per million.
            assert!(b + 50_000 >= a && b <= c + 50_000, "{a} {b} {c}");
        }
    }
}
