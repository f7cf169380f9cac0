//! The demo's results: the per-worker table, the timeline and the verdict.

use std::path::Path;
use std::time::{Duration, SystemTime};

use buslock::Stats;
use serde::Serialize;

use super::bus::Counters;
use super::worker::Record;
use crate::render::{self, Cell, Style, Table};

/// Columns of the timeline.
const SLICES: usize = 64;

/// What one worker (all its incarnations) did.
pub struct WorkerReport {
    /// Its name.
    pub name: &'static str,
    /// Its process ids, the restarted one last.
    pub pids: Vec<u32>,
    /// Its completed transactions.
    pub records: Vec<Record>,
}

impl WorkerReport {
    /// Read the worker's log (a missing log means no transaction).
    pub fn load(name: &'static str, pids: Vec<u32>, log: &Path) -> Self {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        WorkerReport {
            name,
            pids,
            records: text.lines().filter_map(Record::parse).collect(),
        }
    }

    fn overlaps(&self) -> u64 {
        self.records.iter().map(|r| r.overlaps).sum()
    }

    fn recovered(&self) -> usize {
        self.records.iter().filter(|r| r.recovered).count()
    }

    fn quantile(mut v: Vec<u64>, q: f64) -> Option<Duration> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        Some(Duration::from_nanos(v[i]))
    }

    fn wait(&self, q: f64) -> Option<Duration> {
        Self::quantile(self.records.iter().map(|r| r.waited_ns).collect(), q)
    }

    fn hold(&self, q: f64) -> Option<Duration> {
        Self::quantile(
            self.records
                .iter()
                .map(|r| r.released_ns.saturating_sub(r.acquired_ns))
                .collect(),
            q,
        )
    }
}

/// The kill: who, when, and who recovered.
pub struct Kill {
    /// The killed worker.
    pub worker: &'static str,
    /// Its pid.
    pub pid: u32,
    /// When its last hold began.
    pub held_from: SystemTime,
    /// When it was killed.
    pub killed_at: SystemTime,
    /// The demo's time origin.
    pub epoch: SystemTime,
    /// Worker name, pid and time of the holder told that it died.
    pub recovered_by: Option<(String, u32, SystemTime)>,
}

impl Kill {
    fn offset(&self, t: SystemTime) -> Duration {
        t.duration_since(self.epoch).unwrap_or_default()
    }
}

/// `Ok(summary)` when there was no overlap and the kill (if asked for)
/// was recovered; `Err(why)` otherwise.
pub fn verdict(
    reports: &[WorkerReport],
    bus: Counters,
    kill: Option<&Kill>,
    kill_wanted: bool,
) -> Result<String, String> {
    let overlaps = bus.overlaps + reports.iter().map(|r| r.overlaps()).sum::<u64>();
    if overlaps > 0 {
        return Err(format!(
            "{overlaps} overlapping transactions on the bus: the lock did not exclude"
        ));
    }
    let recovered: usize = reports.iter().map(|r| r.recovered()).sum();
    match kill {
        Some(k) if recovered == 0 => Err(format!(
            "{} was killed holding the bus, but no later holder was told it died",
            k.worker
        )),
        Some(k) => Ok(format!(
            "no overlapping transactions; {} was killed holding the bus and the next holder \
             recovered",
            k.worker
        )),
        None if kill_wanted => Err("the chosen worker never held the bus, so no kill".into()),
        None => Ok("no overlapping transactions".into()),
    }
}

fn opt(d: Option<Duration>) -> String {
    d.map_or("-".into(), render::duration)
}

/// Everything the demo found out.
pub struct Results {
    /// Per worker.
    pub reports: Vec<WorkerReport>,
    /// The bus's own counters.
    pub bus: Counters,
    /// The kill, if one happened.
    pub kill: Option<Kill>,
    /// The lock's statistics.
    pub stats: Stats,
    /// See [`verdict`].
    pub verdict: Result<String, String>,
}

/// The table, the timeline and the verdict, for people.
pub fn human(r: &Results, duration: Duration, hold: Duration, style: Style) -> String {
    let (reports, bus, kill, stats, verdict) =
        (&r.reports, r.bus, r.kill.as_ref(), &r.stats, &r.verdict);
    let mut s = String::from("\n");
    let mut t = Table::new(&[
        "WORKER",
        "PIDS",
        ">TRANSACTIONS",
        ">WAIT p50",
        ">WAIT p99",
        ">HOLD p50",
        ">OVERLAPS",
        ">RECOVERED",
    ]);
    for (i, r) in reports.iter().enumerate() {
        let pids: Vec<String> = r.pids.iter().map(u32::to_string).collect();
        let overlaps = r.overlaps();
        t.row(vec![
            Cell::new(style.nth(i, r.name)),
            pids.join(",").into(),
            r.records.len().to_string().into(),
            opt(r.wait(0.5)).into(),
            opt(r.wait(0.99)).into(),
            opt(r.hold(0.5)).into(),
            if overlaps == 0 {
                Cell::styled("0", Style::good)
            } else {
                Cell::styled(overlaps.to_string(), Style::bad)
            },
            r.recovered().to_string().into(),
        ]);
    }
    s += &t.render(style, "");
    s += "\n";
    s += &timeline(reports, kill, duration, hold, style);
    s += "\n";
    s += &format!(
        "bus   {} transactions, {} overlapping (every worker checks every byte)\n",
        bus.transactions, bus.overlaps
    );
    s += &format!(
        "lock  {} acquisitions, {} waited ({:.0}%), {} holder death(s) recovered\n",
        stats.acquisitions,
        stats.contended,
        stats.contention_ratio() * 100.0,
        stats.owner_died
    );
    if let Some(k) = kill {
        s += &format!(
            "kill  {} (pid {}) held the bus from {:.3}s and was killed at {:.3}s",
            k.worker,
            k.pid,
            k.offset(k.held_from).as_secs_f64(),
            k.offset(k.killed_at).as_secs_f64()
        );
        if let Some((name, pid, at)) = &k.recovered_by {
            s += &format!(
                "; {name} (pid {pid}) took over at {:.3}s",
                k.offset(*at).as_secs_f64()
            );
        }
        s += "\n";
    }
    s += &match verdict {
        Ok(v) => style.good(&format!("OK: {v}")),
        Err(v) => style.bad(&format!("FAILED: {v}")),
    };
    s += "\n";
    s
}

/// One row per worker, one column per time slice, zoomed on the kill (or
/// the middle of the run) so that single transactions show: `█` where the
/// worker held the bus for most of the slice, `X` where it was killed.
fn timeline(
    reports: &[WorkerReport],
    kill: Option<&Kill>,
    duration: Duration,
    hold: Duration,
    style: Style,
) -> String {
    let total = duration.as_nanos().max(1) as u64;
    let slice = ((hold.as_nanos() as u64) / 4).max(1_000_000);
    let span = slice * SLICES as u64;
    let center = kill.map_or(total / 2, |k| k.offset(k.killed_at).as_nanos() as u64);
    let start = center
        .saturating_sub(span / 2)
        .min(total.saturating_sub(span));
    let width = reports.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let secs = |ns: u64| format!("{:.2}s", ns as f64 / 1e9);
    let mut s = format!(
        "{}\n",
        style.bold(&format!(
            "who held the bus from {} to {}{} ({} per column)",
            secs(start),
            secs(start + span),
            if kill.is_some() {
                ", around the kill"
            } else {
                ""
            },
            render::duration(Duration::from_nanos(slice))
        ))
    );
    // Coverage of every slice by every worker, in ns.
    let mut cover = vec![[0u64; SLICES]; reports.len()];
    let mut add = |w: usize, from: u64, to: u64| {
        for (c, cell) in cover[w].iter_mut().enumerate() {
            let lo = start + c as u64 * slice;
            let hi = lo + slice;
            *cell += to.min(hi).saturating_sub(from.max(lo));
        }
    };
    let mut killed_col = None;
    for (w, r) in reports.iter().enumerate() {
        for rec in &r.records {
            add(w, rec.acquired_ns, rec.released_ns);
        }
        if let Some(k) = kill.filter(|k| k.worker == r.name) {
            let to = k.offset(k.killed_at).as_nanos() as u64;
            add(w, k.offset(k.held_from).as_nanos() as u64, to);
            if (start..start + span).contains(&to) {
                killed_col = Some((w, ((to - start) / slice) as usize));
            }
        }
    }
    for (w, r) in reports.iter().enumerate() {
        let row: String = (0..SLICES)
            .map(|c| {
                let best = (0..reports.len()).max_by_key(|&o| cover[o][c]).unwrap_or(w);
                if killed_col == Some((w, c)) {
                    style.bad("X")
                } else if best == w && cover[w][c] * 2 >= slice {
                    style.nth(w, "█")
                } else {
                    style.dim("·")
                }
            })
            .collect();
        s += &format!("{:<width$} │{row}│\n", r.name);
    }
    let (a, b) = (secs(start), secs(start + span));
    s += &format!(
        "{:<width$}  {a}{}{b}\n",
        "",
        " ".repeat(SLICES.saturating_sub(a.len() + b.len()))
    );
    s
}

/// The demo's settings, in the JSON document.
#[derive(Serialize)]
pub struct SetupJson {
    /// Lock directory.
    pub dir: String,
    /// Lock name.
    pub lock: &'static str,
    /// How long the workers ran.
    pub duration_ms: f64,
    /// Hold time per transaction.
    pub hold_ms: f64,
}

#[derive(Serialize)]
struct WorkerJson {
    name: &'static str,
    pids: Vec<u32>,
    transactions: usize,
    wait_p50_ms: Option<f64>,
    wait_p99_ms: Option<f64>,
    hold_p50_ms: Option<f64>,
    overlaps: u64,
    recovered_deaths: usize,
}

#[derive(Serialize)]
struct KillJson {
    worker: &'static str,
    pid: u32,
    held_from_ms: f64,
    killed_at_ms: f64,
    recovered_by: Option<String>,
    recovered_by_pid: Option<u32>,
    recovered_at_ms: Option<f64>,
}

#[derive(Serialize)]
struct DemoJson<'a> {
    setup: &'a SetupJson,
    workers: Vec<WorkerJson>,
    bus_transactions: u64,
    bus_overlaps: u64,
    acquisitions: u64,
    contended: u64,
    owner_died: u64,
    kill: Option<KillJson>,
    ok: bool,
    verdict: String,
}

/// The results as one JSON document.
pub fn print_json(
    out: &mut impl std::io::Write,
    setup: &SetupJson,
    r: &Results,
) -> std::io::Result<()> {
    let (reports, bus, kill, stats, verdict) =
        (&r.reports, r.bus, r.kill.as_ref(), &r.stats, &r.verdict);
    let ms = |d: Option<Duration>| d.map(render::millis);
    let doc = DemoJson {
        setup,
        workers: reports
            .iter()
            .map(|r| WorkerJson {
                name: r.name,
                pids: r.pids.clone(),
                transactions: r.records.len(),
                wait_p50_ms: ms(r.wait(0.5)),
                wait_p99_ms: ms(r.wait(0.99)),
                hold_p50_ms: ms(r.hold(0.5)),
                overlaps: r.overlaps(),
                recovered_deaths: r.recovered(),
            })
            .collect(),
        bus_transactions: bus.transactions,
        bus_overlaps: bus.overlaps,
        acquisitions: stats.acquisitions,
        contended: stats.contended,
        owner_died: stats.owner_died,
        kill: kill.map(|k| KillJson {
            worker: k.worker,
            pid: k.pid,
            held_from_ms: render::millis(k.offset(k.held_from)),
            killed_at_ms: render::millis(k.offset(k.killed_at)),
            recovered_by: k.recovered_by.as_ref().map(|r| r.0.clone()),
            recovered_by_pid: k.recovered_by.as_ref().map(|r| r.1),
            recovered_at_ms: k
                .recovered_by
                .as_ref()
                .map(|r| render::millis(k.offset(r.2))),
        }),
        ok: verdict.is_ok(),
        verdict: match verdict {
            Ok(v) | Err(v) => v.clone(),
        },
    };
    crate::model::print_json(out, &doc)
}
