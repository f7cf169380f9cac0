//! The stable JSON shapes of `--json` output (documented in `docs/CLI.md`):
//! snake_case keys, durations as `*_ns` integers or `*_ms` floats, times as
//! Unix seconds (float).

use std::time::Duration;

use buslock::{Histogram, Owner, Stats, Waiter};
use serde::Serialize;

use crate::render::{millis, unix_seconds};

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Whether a lock is free, held, or held by a holder that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// A live process holds it.
    Held,
    /// Its holder died holding it: it is free, and the next holder will be
    /// told (`previous_owner_died`).
    HolderDied,
}

impl LockState {
    /// The state given the current owner record.
    pub fn of(owner: Option<&Owner>) -> Self {
        match owner {
            None => LockState::Free,
            Some(o) if o.is_alive() => LockState::Held,
            Some(_) => LockState::HolderDied,
        }
    }
}

/// The holder of a lock.
#[derive(Debug, Serialize)]
pub struct HolderJson {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Program name as recorded by the holder.
    pub program: String,
    /// When it took the lock (Unix seconds).
    pub since: f64,
    /// How long it has held it.
    pub held_for_ms: f64,
    /// `running`, `sleeping`, `uninterruptible sleep`, `stopped`, `zombie`
    /// or `gone`.
    pub process_state: &'static str,
    /// Whether the process still exists.
    pub alive: bool,
    /// It took over from a holder that died.
    pub took_over_from_dead: bool,
    /// The record was torn by a holder dying while writing it.
    pub torn: bool,
}

impl From<&Owner> for HolderJson {
    fn from(o: &Owner) -> Self {
        HolderJson {
            pid: o.pid,
            tid: o.tid,
            program: o.program.clone(),
            since: unix_seconds(o.since),
            held_for_ms: millis(o.held_for),
            process_state: o.state.as_str(),
            alive: o.is_alive(),
            took_over_from_dead: o.took_over_from_dead,
            torn: o.torn,
        }
    }
}

/// A waiter.
#[derive(Debug, Serialize)]
pub struct WaiterJson {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Program name from `/proc` (`null` if it just exited).
    pub program: Option<String>,
    /// When it started waiting (Unix seconds).
    pub since: f64,
    /// How long it has waited.
    pub waiting_for_ms: f64,
    /// Process state, as for the holder.
    pub process_state: &'static str,
}

impl From<&Waiter> for WaiterJson {
    fn from(w: &Waiter) -> Self {
        WaiterJson {
            pid: w.pid,
            tid: w.tid,
            program: Some(w.program.clone()),
            since: unix_seconds(w.since),
            waiting_for_ms: millis(w.waiting_for),
            process_state: w.state.as_str(),
        }
    }
}

/// One non-empty histogram bucket.
#[derive(Debug, Serialize)]
pub struct BucketJson {
    /// Lower bound, inclusive.
    pub lower_ns: u64,
    /// Upper bound, exclusive (`null` for the last bucket).
    pub upper_ns: Option<u64>,
    /// Samples in the bucket.
    pub count: u64,
}

fn buckets(h: &Histogram) -> Vec<BucketJson> {
    h.buckets
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, &count)| {
            let (lo, hi) = Histogram::bounds(i);
            BucketJson {
                lower_ns: ns(lo),
                upper_ns: hi.map(ns),
                count,
            }
        })
        .collect()
}

/// The longest hold.
#[derive(Debug, Serialize)]
pub struct LongestJson {
    /// How long.
    pub duration_ns: u64,
    /// Holder pid.
    pub pid: u32,
    /// Holder tid.
    pub tid: u32,
    /// Holder program.
    pub program: String,
    /// When the hold began (Unix seconds).
    pub at: f64,
}

/// A lock's statistics.
#[derive(Debug, Serialize)]
pub struct StatsJson {
    /// Successful acquisitions.
    pub acquisitions: u64,
    /// Acquisitions that waited.
    pub contended: u64,
    /// `contended / acquisitions` (0 when none).
    pub contention_ratio: f64,
    /// Acquisitions that found the previous holder dead.
    pub owner_died: u64,
    /// Waits that gave up at their timeout.
    pub timeouts: u64,
    /// Sum of waits.
    pub total_wait_ns: u64,
    /// Sum of holds.
    pub total_hold_ns: u64,
    /// Upper bound of the median wait (histogram bucket edge).
    pub wait_p50_ns: Option<u64>,
    /// Upper bound of the 99th percentile wait.
    pub wait_p99_ns: Option<u64>,
    /// Upper bound of the median hold.
    pub hold_p50_ns: Option<u64>,
    /// Upper bound of the 99th percentile hold.
    pub hold_p99_ns: Option<u64>,
    /// Non-empty buckets of the wait-time histogram.
    pub wait_histogram: Vec<BucketJson>,
    /// Non-empty buckets of the hold-time histogram.
    pub hold_histogram: Vec<BucketJson>,
    /// The longest hold, if any finished.
    pub longest_hold: Option<LongestJson>,
    /// Since when the numbers count (Unix seconds).
    pub since: f64,
}

impl From<&Stats> for StatsJson {
    fn from(s: &Stats) -> Self {
        let q = |h: &Histogram, q| h.quantile_upper_bound(q).map(ns);
        StatsJson {
            acquisitions: s.acquisitions,
            contended: s.contended,
            contention_ratio: s.contention_ratio(),
            owner_died: s.owner_died,
            timeouts: s.timeouts,
            total_wait_ns: ns(s.total_wait),
            total_hold_ns: ns(s.total_hold),
            wait_p50_ns: q(&s.wait_histogram, 0.5),
            wait_p99_ns: q(&s.wait_histogram, 0.99),
            hold_p50_ns: q(&s.hold_histogram, 0.5),
            hold_p99_ns: q(&s.hold_histogram, 0.99),
            wait_histogram: buckets(&s.wait_histogram),
            hold_histogram: buckets(&s.hold_histogram),
            longest_hold: s.longest_hold.as_ref().map(|l| LongestJson {
                duration_ns: ns(l.duration),
                pid: l.pid,
                tid: l.tid,
                program: l.program.clone(),
                at: unix_seconds(l.at),
            }),
            since: unix_seconds(s.since),
        }
    }
}

/// Print `value` as pretty JSON and a newline.
pub fn print_json(out: &mut impl std::io::Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)
}

/// Duration as integer ns, for JSON.
pub fn ns_of(d: Duration) -> u64 {
    ns(d)
}
