//! `buslock watch NAME`: the live trace of a lock.
//!
//! Completed holds come from the lock's event ring (every hold, with its
//! wait and hold time, unless more than 64 finish between two polls: the
//! gap is reported). Acquisitions are seen by polling the owner record, so
//! a hold shorter than the poll period may show only its release.
//!
//! For a readers-writer lock the ring holds reads and writes (each release
//! says which: `kind` in JSON, the EVENT column in text) and the holders
//! found dead: a reader whose share was freed, a writer whose death the
//! next holder was told of (`death` lines). The acquisitions polled are
//! the writer's.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use buslock::{Event, LockName, Owner};
use serde::Serialize;

use crate::cli::WatchArgs;
use crate::error::CliError;
use crate::exit;
use crate::model::{HolderJson, ns_of};
use crate::render::{self, Style, escape};
use crate::signals::Signals;

/// How often the lock is polled.
const POLL: Duration = Duration::from_millis(10);

/// One line of `watch --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Acquire {
        time: f64,
        pid: u32,
        tid: u32,
        program: &'a str,
        took_over_from_dead: bool,
    },
    Release {
        time: f64,
        seq: u64,
        pid: u32,
        tid: u32,
        program: &'a str,
        acquired: f64,
        waited_ns: u64,
        held_ns: u64,
        previous_owner_died: bool,
        /// `"read"` or `"write"` for a readers-writer lock; absent for a
        /// mutex.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
    },
    /// A holder of a readers-writer lock found dead holding it (from the
    /// event ring).
    Death {
        time: f64,
        seq: u64,
        pid: u32,
        tid: u32,
        program: &'a str,
        kind: &'static str,
        acquired: f64,
        held_ns: u64,
    },
    Died {
        time: f64,
        pid: u32,
        tid: u32,
        program: &'a str,
        process_state: &'static str,
    },
    Lost {
        count: u64,
    },
    Replaced {
        time: f64,
        path: &'a str,
    },
    Summary {
        time: f64,
        window_ms: f64,
        holds: u64,
        contended: u64,
        held_ms: f64,
        waited_ms: f64,
        holder: Option<HolderJson>,
        waiters: usize,
    },
}

/// One summary window: the holds that ended in it, and how long the lock
/// was held within it (ended holds and the one in progress, clipped to the
/// window).
struct Window {
    start: SystemTime,
    holds: u64,
    contended: u64,
    held: Duration,
    waited: Duration,
}

impl Window {
    fn new() -> Self {
        Window {
            start: SystemTime::now(),
            holds: 0,
            contended: 0,
            held: Duration::ZERO,
            waited: Duration::ZERO,
        }
    }

    /// The part of `[from, to]` inside this window (up to now).
    fn overlap(&self, from: SystemTime, to: SystemTime) -> Duration {
        to.duration_since(from.max(self.start)).unwrap_or_default()
    }

    fn add(&mut self, e: &Event) {
        self.holds += 1;
        if !e.waited.is_zero() {
            self.contended += 1;
        }
        self.held += self.overlap(e.acquired, e.acquired + e.held);
        self.waited += e.waited;
    }
}

struct Printer {
    json: bool,
    style: Style,
    out: std::io::Stdout,
}

impl Printer {
    fn line(&mut self, line: &Line<'_>) -> Result<(), CliError> {
        let text = if self.json {
            serde_json::to_string(line).map_err(std::io::Error::from)?
        } else {
            self.human(line)
        };
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    fn human(&self, line: &Line<'_>) -> String {
        let t =
            |secs: f64| render::time_of_day(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
        let s = self.style;
        match *line {
            Line::Acquire {
                time,
                pid,
                program,
                took_over_from_dead,
                ..
            } => {
                let program = escape(program);
                let line = format!(
                    "{}  {}  {pid:>7}  {program:<16}",
                    t(time),
                    s.warn("acquire")
                );
                if took_over_from_dead {
                    format!("{line}  {}", s.bad("previous holder died"))
                } else {
                    line.trim_end().to_owned()
                }
            }
            Line::Release {
                time,
                pid,
                program,
                waited_ns,
                held_ns,
                previous_owner_died,
                kind,
                ..
            } => format!(
                "{}  {}  {pid:>7}  {:<16}  {:>8}  {:>8}{}",
                t(time),
                s.good(&format!("{:<7}", kind.unwrap_or("release"))),
                escape(program),
                render::duration(Duration::from_nanos(waited_ns)),
                render::duration(Duration::from_nanos(held_ns)),
                if previous_owner_died {
                    s.bad("  took over from a dead holder")
                } else {
                    String::new()
                }
            ),
            Line::Death {
                time,
                pid,
                program,
                kind,
                held_ns,
                ..
            } => format!(
                "{}  {}  {pid:>7}  {:<16}  {:>8}  {:>8}  {}",
                t(time),
                s.bad("died   "),
                escape(program),
                "",
                render::duration(Duration::from_nanos(held_ns)),
                s.bad(if kind == "read" {
                    "a reader died holding it; its share was freed"
                } else {
                    "a writer died holding it; the next holder was told"
                })
            ),
            Line::Died {
                time,
                pid,
                program,
                process_state,
                ..
            } => format!(
                "{}  {}  {pid:>7}  {:<16}  {}",
                t(time),
                s.bad("died   "),
                escape(program),
                s.bad(&format!(
                    "holding the lock ({process_state}); the next holder will be told"
                ))
            ),
            Line::Replaced { time, path } => s.warn(&format!(
                "{}  -- lock file replaced; following the new '{}'",
                t(time),
                escape(path)
            )),
            Line::Lost { count } => s.warn(&format!(
                "-- {count} holds not shown (the ring of the last 64 overran \
                 between two looks, or a holder was killed while recording its hold)"
            )),
            Line::Summary {
                time,
                window_ms,
                holds,
                contended,
                held_ms,
                waited_ms,
                ref holder,
                waiters,
            } => {
                let busy = if window_ms > 0.0 {
                    (held_ms / window_ms * 100.0).min(100.0)
                } else {
                    0.0
                };
                let holder = match holder {
                    Some(h) if h.alive => format!("held by {} ({})", h.pid, escape(&h.program)),
                    Some(h) => format!("holder {} ({}) died", h.pid, escape(&h.program)),
                    None => "free".to_owned(),
                };
                s.dim(&format!(
                    "-- {}  {} in {}, {contended} waited, busy {busy:.0}%, \
                     avg wait {}; now {holder}, {waiters} waiting",
                    t(time),
                    render::plural(holds, "hold"),
                    render::duration(Duration::from_secs_f64(window_ms / 1e3)),
                    render::duration(Duration::from_secs_f64(if contended > 0 {
                        waited_ms / 1e3 / contended as f64
                    } else {
                        0.0
                    })),
                ))
            }
        }
    }
}

/// Whether two reads of the holder are the same hold (and, as far as
/// `watch` tells, the same news): both free, or one hold, alive in both.
fn same_news(a: Option<&Owner>, b: Option<&Owner>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_hold(b) && a.is_alive() == b.is_alive(),
        _ => false,
    }
}

/// Trace the lock until Ctrl-C, `--count` holds or `--for`.
pub fn run(dir: Option<&Path>, args: &WatchArgs) -> Result<ExitCode, CliError> {
    let m = super::open_existing(dir, &LockName::new(&args.name)?)?;
    let rw = m.kind() == "rwlock";
    let sig = Signals::install()?;
    let mut p = Printer {
        json: args.json,
        style: Style::detect(),
        out: std::io::stdout(),
    };
    let start = Instant::now();
    // Read the position first: anything after the header line shows up.
    let mut next = m.event_head();
    if !args.json {
        writeln!(
            p.out,
            "{}",
            p.style.bold(&format!(
                "watching lock '{}' ({}); Ctrl-C to stop; times UTC",
                args.name,
                escape(&m.path().display().to_string())
            ))
        )?;
        writeln!(
            p.out,
            "{}",
            p.style.bold(&format!(
                "{:<12}  {:<7}  {:>7}  {:<16}  {:>8}  {:>8}",
                "TIME", "EVENT", "PID", "PROGRAM", "WAITED", "HELD"
            ))
        )?;
    }
    let mut last_owner: Option<Owner> = None;
    let mut seen: u64 = 0;
    let mut window = Window::new();
    let mut window_start = Instant::now();
    // What the last summary said, to skip summaries of idle windows.
    let mut last_said: Option<(Option<Owner>, usize)> = None;
    let path = m.path().display().to_string();
    loop {
        // Programs that open the lock now use the file at the path: follow
        // it if the one we read was replaced. Its event ring starts anew.
        if m.follow()? {
            p.line(&Line::Replaced {
                time: render::unix_seconds(SystemTime::now()),
                path: &path,
            })?;
            next = 0;
            last_owner = None;
        }
        let (events, head) = m.events_since(next);
        let mut expected = next;
        for e in &events {
            if e.seq > expected {
                p.line(&Line::Lost {
                    count: e.seq - expected,
                })?;
            }
            expected = e.seq + 1;
            let kind = if e.read { "read" } else { "write" };
            if e.died {
                p.line(&Line::Death {
                    time: render::unix_seconds(e.acquired + e.held),
                    seq: e.seq,
                    pid: e.pid,
                    tid: e.tid,
                    program: &e.program,
                    kind,
                    acquired: render::unix_seconds(e.acquired),
                    held_ns: ns_of(e.held),
                })?;
                continue;
            }
            window.add(e);
            p.line(&Line::Release {
                time: render::unix_seconds(e.acquired + e.held),
                seq: e.seq,
                pid: e.pid,
                tid: e.tid,
                program: &e.program,
                acquired: render::unix_seconds(e.acquired),
                waited_ns: ns_of(e.waited),
                held_ns: ns_of(e.held),
                previous_owner_died: e.previous_owner_died,
                kind: rw.then_some(kind),
            })?;
            seen += 1;
            if args.count.is_some_and(|n| seen >= n) {
                return Ok(ExitCode::from(exit::OK));
            }
        }
        next = head;
        let owner = m.owner()?;
        if !same_news(owner.as_ref(), last_owner.as_ref()) {
            match &owner {
                Some(o) if o.is_alive() => p.line(&Line::Acquire {
                    time: render::unix_seconds(o.since),
                    pid: o.pid,
                    tid: o.tid,
                    program: &o.program,
                    took_over_from_dead: o.took_over_from_dead,
                })?,
                // A holder that died holding the lock: no release event
                // will come, so say so now rather than at the next acquire.
                Some(o) => p.line(&Line::Died {
                    time: render::unix_seconds(SystemTime::now()),
                    pid: o.pid,
                    tid: o.tid,
                    program: &o.program,
                    process_state: o.state.as_str(),
                })?,
                None => {}
            }
            last_owner = owner;
        }
        let window_len = window_start.elapsed();
        let stop = sig.received().is_some() || args.for_.is_some_and(|d| start.elapsed() >= d);
        // `--interval 0`: no summaries at all, not even a last one.
        if !args.interval.is_zero() && (stop || window_len >= args.interval) {
            let holder = m.owner()?;
            // The hold in progress counts for the part inside the window.
            if let Some(o) = holder.as_ref().filter(|o| o.is_alive()) {
                window.held += window.overlap(o.since, SystemTime::now());
            }
            let waiters = m.waiters()?.len();
            let same_as_said = last_said
                .as_ref()
                .is_some_and(|(h, w)| same_news(h.as_ref(), holder.as_ref()) && *w == waiters);
            if stop || window.holds > 0 || !window.held.is_zero() || !same_as_said {
                p.line(&Line::Summary {
                    time: render::unix_seconds(SystemTime::now()),
                    window_ms: render::millis(window_len),
                    holds: window.holds,
                    contended: window.contended,
                    held_ms: render::millis(window.held),
                    waited_ms: render::millis(window.waited),
                    holder: holder.as_ref().map(HolderJson::from),
                    waiters,
                })?;
                last_said = Some((holder, waiters));
            }
            window = Window::new();
            window_start = Instant::now();
        }
        if stop {
            return Ok(ExitCode::from(exit::OK));
        }
        std::thread::sleep(POLL);
    }
}
