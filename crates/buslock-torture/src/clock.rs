//! One clock for every process of a run: `CLOCK_MONOTONIC` is system-wide,
//! so timestamps written by different workers can be merged and ordered.

use rustix::time::{ClockId, clock_gettime};

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds.
pub fn mono_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Nanoseconds as milliseconds with three decimals, for summaries.
pub fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}
