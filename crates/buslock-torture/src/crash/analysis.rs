//! Checking a finished crash run from the workers' logs and the killer's
//! record: exclusion, lost updates, owner-died reports, longest stall.
//!
//! Owner-died accounting. Every kill of a worker that held the lock leaves a
//! "dead owner" mark that the next acquisition must report. Walking all
//! acquisitions and kills in time order (timestamps come from one
//! system-wide monotonic clock, and are taken while holding the lock or
//! while the victim holding it is stopped, so their order is the lock's
//! order):
//!
//! - a kill inside sets the mark;
//! - a logged acquisition must report `previous_owner_died` exactly when the
//!   mark is set, and clears it;
//! - a victim killed inside before it could log its own acquisition took
//!   the lock after every logged acquisition so far: if the mark was set,
//!   it received that report and died with it; its own death sets the mark
//!   again. Such kills are counted as `merged`.
//!
//! So `reports == kills_inside - merged`, with no spurious and no missed
//! report.

use super::kill::Kill;
use super::log::Line;
use crate::clock::ms;

/// The harness's own last acquisition, after every worker stopped.
#[derive(Debug, Clone, Copy)]
pub struct FinalAcquisition {
    /// When it started waiting.
    pub wait_start: u64,
    /// When it held the lock.
    pub acquired: u64,
    /// `previous_owner_died()`.
    pub died: bool,
    /// The `inside` flag it found.
    pub flag: u64,
    /// The counter it found.
    pub counter: u64,
}

/// Everything measured and every check.
#[derive(Debug, Default)]
pub struct Report {
    /// Kills in total.
    pub kills: usize,
    /// Kills of a worker holding the lock.
    pub kills_inside: usize,
    /// Of those, victims that had not yet logged their acquisition.
    pub kills_inside_unlogged: usize,
    /// Of those, victims killed between their `L` and `I` lines (an
    /// increment may be done but not logged).
    pub kills_inside_before_increment_log: usize,
    /// Kills inside while the victim was writing the owner record.
    pub kills_mid_owner_write: usize,
    /// Acquisitions (logged ones plus the harness's final one).
    pub acquisitions: usize,
    /// `previous_owner_died` reports.
    pub reports: usize,
    /// Kills inside whose report was received by a victim that died before
    /// logging it.
    pub merged: usize,
    /// Reports without a preceding kill inside.
    pub spurious_reports: usize,
    /// Acquisitions after a kill inside that did not report it.
    pub missed_reports: usize,
    /// Holders that found the flag set without an owner-died report.
    pub exclusion_violations: usize,
    /// Flags cleared after an owner-died report.
    pub flags_cleared: usize,
    /// The final counter.
    pub counter: u64,
    /// Increments logged (each value distinct unless updates were lost).
    pub increments_logged: usize,
    /// Values written by two holders.
    pub lost_updates: usize,
    /// `counter - increments_logged` (negative means lost updates).
    pub unlogged_increments: i64,
    /// Lock errors reported by workers.
    pub errors: Vec<String>,
    /// Waits refused as deadlocks (ABBA pairs, `--abba`).
    pub deadlocks: usize,
    /// Longest time without an acquisition while someone waited, ns.
    pub longest_stall_ns: u64,
    /// Longest time a victim stayed stopped before its kill, ns.
    pub longest_stop_ns: u64,
}

impl Report {
    /// Every failed check, as a sentence.
    pub fn violations(&self, stall_limit_ns: u64) -> Vec<String> {
        let mut v = Vec::new();
        if self.exclusion_violations > 0 {
            v.push(format!(
                "{} exclusion violations (a holder found another one inside)",
                self.exclusion_violations
            ));
        }
        if self.lost_updates > 0 || self.unlogged_increments < 0 {
            v.push(format!(
                "lost counter updates: {} duplicate values, counter {} vs {} logged increments",
                self.lost_updates, self.counter, self.increments_logged
            ));
        }
        if self.unlogged_increments > self.kills_inside_before_increment_log as i64 {
            v.push(format!(
                "{} increments are not logged but only {} kills happened between an increment \
                 and its log line",
                self.unlogged_increments, self.kills_inside_before_increment_log
            ));
        }
        if self.spurious_reports > 0 || self.missed_reports > 0 {
            v.push(format!(
                "owner-died reports do not match kills: {} spurious, {} missed",
                self.spurious_reports, self.missed_reports
            ));
        }
        if self.reports + self.merged != self.kills_inside {
            v.push(format!(
                "{} kills inside, {} merged, but {} owner-died reports",
                self.kills_inside, self.merged, self.reports
            ));
        }
        for e in &self.errors {
            v.push(format!("a worker's lock failed: {e}"));
        }
        if self.longest_stall_ns > stall_limit_ns {
            v.push(format!(
                "the lock made no progress for {} while someone waited (limit {})",
                ms(self.longest_stall_ns),
                ms(stall_limit_ns)
            ));
        }
        v
    }

    /// The summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let outside = self.kills - self.kills_inside;
        format!(
            "  kills: {} ({} while holding the lock, {} while waiting or between holds)\n\
             \x20   inside before logging the acquisition: {}; between acquisition and increment log: {}; \
             after the increment (holding or releasing): {}; while writing the owner record: {}\n\
             \x20 acquisitions: {}, owner-died reports: {}\n\
             \x20 kills inside {} - merged {} (next holder killed before it could report) = {} == reports {}: {}\n\
             \x20 spurious owner-died reports: {}, missed: {}\n\
             \x20 exclusion violations: {}, flags cleared after a death: {}\n\
             \x20 counter {}: {} logged increments, {} lost updates, {} unlogged (allowed <= {})\n\
             \x20 longest stall (no acquisition while someone waited): {}\n\
             \x20 longest a victim was held stopped before SIGKILL: {}\n\
             \x20 worker lock errors: {}",
            self.kills,
            self.kills_inside,
            outside,
            self.kills_inside_unlogged,
            self.kills_inside_before_increment_log,
            self.kills_inside - self.kills_inside_unlogged - self.kills_inside_before_increment_log,
            self.kills_mid_owner_write,
            self.acquisitions,
            self.reports,
            self.kills_inside,
            self.merged,
            self.kills_inside - self.merged.min(self.kills_inside),
            self.reports,
            if self.reports + self.merged == self.kills_inside {
                "ok"
            } else {
                "MISMATCH"
            },
            self.spurious_reports,
            self.missed_reports,
            self.exclusion_violations,
            self.flags_cleared,
            self.counter,
            self.increments_logged,
            self.lost_updates,
            self.unlogged_increments,
            self.kills_inside_before_increment_log,
            ms(self.longest_stall_ns),
            ms(self.longest_stop_ns),
            self.errors.len(),
        )
    }
}

enum Event {
    Acquired { died: bool },
    KilledInside { logged: bool },
}

/// Check a run: `logs` holds every worker's parsed log.
pub fn analyse(logs: &[Vec<Line>], kills: &[Kill], last: &FinalAcquisition) -> Report {
    let mut r = Report {
        kills: kills.len(),
        counter: last.counter,
        ..Report::default()
    };
    let mut timeline: Vec<(u64, Event)> = Vec::new();
    let mut acquisitions: Vec<(u64, u64)> = Vec::new();
    let mut values = Vec::new();
    for line in logs.iter().flatten() {
        match line {
            Line::Locked {
                wait_start,
                acquired,
                died,
            } => {
                timeline.push((*acquired, Event::Acquired { died: *died }));
                acquisitions.push((*acquired, *wait_start));
            }
            Line::Cleared { .. } => r.flags_cleared += 1,
            Line::Violation { .. } => r.exclusion_violations += 1,
            Line::Incremented { value } => values.push(*value),
            Line::Unlocked { .. } => {}
            Line::Deadlock { .. } => r.deadlocks += 1,
            Line::Error(e) => r.errors.push(e.clone()),
        }
    }
    timeline.push((last.acquired, Event::Acquired { died: last.died }));
    acquisitions.push((last.acquired, last.wait_start));
    if last.flag != 0 {
        if last.died {
            r.flags_cleared += 1;
        } else {
            r.exclusion_violations += 1;
        }
    }
    for k in kills {
        r.longest_stop_ns = r.longest_stop_ns.max(k.stopped_ns);
        if !k.inside {
            continue;
        }
        r.kills_inside += 1;
        r.kills_mid_owner_write += usize::from(k.mid_owner_write);
        let logged = k.last.as_ref().is_some_and(Line::hold_logged);
        if !logged {
            r.kills_inside_unlogged += 1;
        }
        if matches!(
            k.last,
            Some(Line::Locked { .. } | Line::Cleared { .. } | Line::Violation { .. })
        ) {
            r.kills_inside_before_increment_log += 1;
        }
        timeline.push((k.at, Event::KilledInside { logged }));
    }
    timeline.sort_by_key(|(t, _)| *t);
    let mut mark = false;
    for (_, e) in &timeline {
        match e {
            Event::Acquired { died } => {
                r.acquisitions += 1;
                if *died {
                    r.reports += 1;
                    if !mark {
                        r.spurious_reports += 1;
                    }
                } else if mark {
                    r.missed_reports += 1;
                }
                mark = false;
            }
            Event::KilledInside { logged } => {
                if !logged && mark {
                    r.merged += 1;
                }
                mark = true;
            }
        }
    }
    values.sort_unstable();
    r.increments_logged = values.len();
    r.lost_updates = values.windows(2).filter(|w| w[0] == w[1]).count();
    r.unlogged_increments = last.counter as i64 - values.len() as i64;
    acquisitions.sort_unstable();
    let mut prev: Option<u64> = None;
    for (acquired, wait_start) in acquisitions {
        let from = prev.map_or(wait_start, |p| p.max(wait_start));
        r.longest_stall_ns = r.longest_stall_ns.max(acquired.saturating_sub(from));
        prev = Some(acquired);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(at: u64, died: bool) -> Line {
        Line::Locked {
            wait_start: at - 1,
            acquired: at,
            died,
        }
    }

    fn kill(at: u64, inside: bool, last: Option<Line>) -> Kill {
        Kill {
            at,
            inside,
            mid_owner_write: false,
            last,
            stopped_ns: 0,
        }
    }

    fn last(at: u64, died: bool) -> FinalAcquisition {
        FinalAcquisition {
            wait_start: at - 1,
            acquired: at,
            died,
            flag: 0,
            counter: 0,
        }
    }

    #[test]
    fn a_kill_inside_needs_exactly_one_report() {
        let logs = vec![vec![locked(10, false)], vec![locked(30, true)]];
        let kills = vec![kill(20, true, Some(locked(10, false)))];
        let r = analyse(&logs, &kills, &last(40, false));
        assert_eq!((r.reports, r.kills_inside, r.merged), (1, 1, 0));
        assert!(r.violations(u64::MAX).is_empty(), "{:?}", r.violations(0));
    }

    #[test]
    fn a_missing_report_is_a_violation() {
        let logs = vec![vec![locked(10, false)], vec![locked(30, false)]];
        let kills = vec![kill(20, true, Some(locked(10, false)))];
        let r = analyse(&logs, &kills, &last(40, false));
        assert_eq!(r.missed_reports, 1);
        assert!(!r.violations(u64::MAX).is_empty());
    }

    #[test]
    fn a_report_received_by_a_victim_that_died_unlogged_is_merged() {
        // Holder A (logged) killed at 20; B takes over (unlogged) and is
        // killed at 25; C reports once for both.
        let logs = vec![vec![locked(10, false)], vec![locked(30, true)]];
        let kills = vec![
            kill(20, true, Some(locked(10, false))),
            kill(25, true, None),
        ];
        let r = analyse(&logs, &kills, &last(40, false));
        assert_eq!((r.reports, r.kills_inside, r.merged), (1, 2, 1));
        assert!(r.violations(u64::MAX).is_empty());
    }

    #[test]
    fn a_spurious_report_is_a_violation() {
        let logs = vec![vec![locked(10, true)]];
        let r = analyse(&logs, &[], &last(40, false));
        assert_eq!(r.spurious_reports, 1);
        assert!(!r.violations(u64::MAX).is_empty());
    }

    #[test]
    fn stalls_count_from_the_later_of_wait_start_and_last_acquisition() {
        let logs = vec![vec![
            Line::Locked {
                wait_start: 0,
                acquired: 100,
                died: false,
            },
            Line::Locked {
                wait_start: 50,
                acquired: 400,
                died: false,
            },
        ]];
        let r = analyse(&logs, &[], &last(450, false));
        assert_eq!(r.longest_stall_ns, 300);
    }
}
