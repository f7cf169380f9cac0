//! Contention statistics kept in the lock file, so that every process sees
//! the same numbers.
//!
//! The holder updates them under the lock with plain loads and stores (no
//! atomic read-modify-write on the lock path); readers see a snapshot that
//! may lag by one hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::Me;
use crate::raw::layout::{HIST_BUCKETS, StatsBlock, hist_bucket, ident, split_ident, text_string};

#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Record an acquisition. Called under the lock.
#[inline]
pub(crate) fn on_acquire(stats: &StatsBlock, waited_ns: Option<u64>, owner_died: bool) {
    bump(&stats.acquisitions, 1);
    if let Some(waited) = waited_ns {
        bump(&stats.contended, 1);
        bump(&stats.total_wait_ns, waited);
        bump(&stats.wait_hist[hist_bucket(waited)], 1);
    }
    if owner_died {
        bump(&stats.owner_died, 1);
    }
}

/// Record a release after holding `held_ns`. Called under the lock.
#[inline]
pub(crate) fn on_release(stats: &StatsBlock, me: &Me, held_ns: u64, acquired_mono_ns: u64) {
    bump(&stats.total_hold_ns, held_ns);
    bump(&stats.hold_hist[hist_bucket(held_ns)], 1);
    if held_ns > stats.longest_hold_ns.load(Ordering::Relaxed) {
        stats.longest_hold_ns.store(held_ns, Ordering::Relaxed);
        stats
            .longest_ident
            .store(ident(me.pid, me.tid), Ordering::Relaxed);
        stats.longest_real_ns.store(
            crate::clock::to_realtime_ns(acquired_mono_ns),
            Ordering::Relaxed,
        );
        stats.longest_program.store(me.program);
    }
}

/// Count a wait that gave up at its timeout. Called without the lock.
pub(crate) fn on_timeout(stats: &StatsBlock) {
    stats.timeouts.fetch_add(1, Ordering::Relaxed);
}

/// Start counting again. Called under the lock, by its holder.
///
/// The hold in progress (the resetter's own) is recorded when it ends, so
/// it counts as the first acquisition of the new period: otherwise the
/// numbers would show a hold (and a longest hold) but no acquisition.
pub(crate) fn reset(stats: &StatsBlock, now_real_ns: u64) {
    for c in [
        &stats.acquisitions,
        &stats.contended,
        &stats.owner_died,
        &stats.timeouts,
        &stats.total_wait_ns,
        &stats.total_hold_ns,
        &stats.longest_hold_ns,
        &stats.longest_ident,
        &stats.longest_real_ns,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    for b in stats.wait_hist.iter().chain(stats.hold_hist.iter()) {
        b.store(0, Ordering::Relaxed);
    }
    stats.longest_program.store(&[0; 32]);
    stats.reset_real_ns.store(now_real_ns, Ordering::Relaxed);
    stats.acquisitions.store(1, Ordering::Relaxed);
}

/// A log2 histogram of durations: bucket 0 counts everything under
/// 1.024 µs, bucket `i` counts `[2^(9+i), 2^(10+i))` ns, the last one
/// everything from about 18 minutes up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// The counts.
    pub buckets: [u64; HIST_BUCKETS],
}

impl Histogram {
    /// Lower and upper bound of bucket `i` (the last has no upper bound).
    pub fn bounds(i: usize) -> (Duration, Option<Duration>) {
        let lower = if i == 0 { 0 } else { 1u64 << (9 + i) };
        let upper = (i + 1 < HIST_BUCKETS).then(|| Duration::from_nanos(1u64 << (10 + i)));
        (Duration::from_nanos(lower), upper)
    }

    /// Total number of samples (saturating: the counts come from shared
    /// memory that any user of the lock can write).
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |sum, &n| sum.saturating_add(n))
    }

    /// An upper bound for the `q` quantile (0.0..=1.0): the upper edge of
    /// the bucket holding it. `None` when empty.
    pub fn quantile_upper_bound(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen: u64 = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                let (lower, upper) = Self::bounds(i);
                return Some(upper.unwrap_or(lower));
            }
        }
        None
    }

    fn load(from: &[AtomicU64; HIST_BUCKETS]) -> Self {
        let mut buckets = [0; HIST_BUCKETS];
        for (b, a) in buckets.iter_mut().zip(from) {
            *b = a.load(Ordering::Relaxed);
        }
        Histogram { buckets }
    }
}

/// The longest hold seen and who held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongestHold {
    /// How long.
    pub duration: Duration,
    /// Holder pid.
    pub pid: u32,
    /// Holder tid.
    pub tid: u32,
    /// Holder program.
    pub program: String,
    /// When the hold began.
    pub at: SystemTime,
}

/// A snapshot of a lock's statistics since creation or the last reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Successful acquisitions.
    pub acquisitions: u64,
    /// Acquisitions that had to wait for another holder.
    pub contended: u64,
    /// Acquisitions that found the previous holder dead.
    pub owner_died: u64,
    /// Waits that gave up at their timeout.
    pub timeouts: u64,
    /// Sum of wait times of contended acquisitions.
    pub total_wait: Duration,
    /// Sum of hold times.
    pub total_hold: Duration,
    /// Wait times of contended acquisitions.
    pub wait_histogram: Histogram,
    /// Hold times.
    pub hold_histogram: Histogram,
    /// The longest hold, if any hold finished.
    pub longest_hold: Option<LongestHold>,
    /// Since when these numbers count.
    pub since: SystemTime,
}

impl Stats {
    /// Contended acquisitions as a fraction of all (0.0 when none).
    pub fn contention_ratio(&self) -> f64 {
        if self.acquisitions == 0 {
            0.0
        } else {
            self.contended as f64 / self.acquisitions as f64
        }
    }
}

fn ns(a: &AtomicU64) -> Duration {
    Duration::from_nanos(a.load(Ordering::Relaxed))
}

/// Read a snapshot without the lock.
pub(crate) fn snapshot(stats: &StatsBlock) -> Stats {
    let longest = stats.longest_hold_ns.load(Ordering::Relaxed);
    let (pid, tid) = split_ident(stats.longest_ident.load(Ordering::Relaxed));
    Stats {
        acquisitions: stats.acquisitions.load(Ordering::Relaxed),
        contended: stats.contended.load(Ordering::Relaxed),
        owner_died: stats.owner_died.load(Ordering::Relaxed),
        timeouts: stats.timeouts.load(Ordering::Relaxed),
        total_wait: ns(&stats.total_wait_ns),
        total_hold: ns(&stats.total_hold_ns),
        wait_histogram: Histogram::load(&stats.wait_hist),
        hold_histogram: Histogram::load(&stats.hold_hist),
        longest_hold: (longest > 0).then(|| LongestHold {
            duration: Duration::from_nanos(longest),
            pid,
            tid,
            program: text_string(&stats.longest_program.load()),
            at: UNIX_EPOCH + ns(&stats.longest_real_ns),
        }),
        since: UNIX_EPOCH + ns(&stats.reset_real_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_from_one_microsecond() {
        assert_eq!(hist_bucket(0), 0);
        assert_eq!(hist_bucket(1023), 0);
        assert_eq!(hist_bucket(1024), 1);
        assert_eq!(hist_bucket(2047), 1);
        assert_eq!(hist_bucket(2048), 2);
        assert_eq!(hist_bucket(u64::MAX), HIST_BUCKETS - 1);
        for i in 1..HIST_BUCKETS - 1 {
            let (lo, hi) = Histogram::bounds(i);
            assert_eq!(hist_bucket(lo.as_nanos() as u64), i);
            assert_eq!(hist_bucket(hi.unwrap().as_nanos() as u64 - 1), i);
        }
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let mut h = Histogram {
            buckets: [0; HIST_BUCKETS],
        };
        assert_eq!(h.quantile_upper_bound(0.5), None);
        h.buckets[1] = 99;
        h.buckets[5] = 1;
        assert_eq!(
            h.quantile_upper_bound(0.5),
            Some(Duration::from_nanos(2048))
        );
        assert_eq!(
            h.quantile_upper_bound(0.99),
            Some(Duration::from_nanos(2048))
        );
        assert_eq!(
            h.quantile_upper_bound(1.0),
            Some(Duration::from_nanos(1 << 15))
        );
    }
}
