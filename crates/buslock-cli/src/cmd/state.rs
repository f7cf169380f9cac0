//! `buslock state NAME`: one lock in full, without taking it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use buslock::{LockName, LockView, Owner, Stats, Waiter};
use serde::Serialize;

use super::legacy;
use crate::error::CliError;
use crate::exit;
use crate::model::{HolderJson, LockState, StatsJson, WaiterJson, print_json};
use crate::render::{self, Cell, Style, Table, escape};

/// The JSON shape of `state --json`.
#[derive(Serialize)]
struct StateJson {
    name: String,
    path: String,
    state: LockState,
    holder: Option<HolderJson>,
    waiters: Vec<WaiterJson>,
    stats: StatsJson,
    /// "rwlock" for a readers-writer lock (whose holder is its writer);
    /// left out for a mutex, so a mutex's JSON is as it was.
    #[serde(skip_serializing_if = "super::shared::is_mutex")]
    kind: &'static str,
    /// A readers-writer lock's readers: (pid, tid, program).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    readers: Vec<(u32, u32, String)>,
    /// The legacy companion lock and who holds it, when one is recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    legacy: Option<legacy::LegacyJson>,
}

/// Show lock `name`; exit 0 when free, 1 when held.
pub fn run(dir: Option<&Path>, name: &LockName, json: bool) -> Result<ExitCode, CliError> {
    let m = super::open_existing(dir, name)?;
    let owner = m.owner()?;
    let waiters = m.waiters()?;
    let stats = m.stats()?;
    let readers = m.readers()?;
    let state = match LockState::of(owner.as_ref()) {
        LockState::Free if !readers.is_empty() => LockState::Held,
        state => state,
    };
    let legacy = legacy::of(&m.path(), m.name());
    let mut out = std::io::stdout().lock();
    if json {
        let doc = StateJson {
            name: name.to_string(),
            path: m.path().display().to_string(),
            state,
            holder: owner.as_ref().map(HolderJson::from),
            waiters: waiters.iter().map(WaiterJson::from).collect(),
            stats: StatsJson::from(&stats),
            kind: m.kind(),
            readers: readers
                .iter()
                .map(|r| (r.pid, r.tid, r.program.clone()))
                .collect(),
            legacy: legacy.as_ref().map(legacy::json),
        };
        print_json(&mut out, &doc)?;
    } else {
        let style = Style::detect();
        let mut text = human(&m, state, owner.as_ref(), &waiters, &stats, style);
        if m.kind() != "mutex" {
            let line = rw_lines(m.kind(), &readers, style);
            match text.find(&style.bold(&format!("{:<9}", "waiters"))) {
                Some(at) => text.insert_str(at, &line),
                None => text.push_str(&line),
            }
        }
        if let Some(l) = &legacy {
            let line = format!(
                "{}{}\n",
                style.bold("legacy   "),
                legacy::text(l, owner.is_some(), style)
            );
            // After the holder, before the waiters.
            match text.find(&style.bold(&format!("{:<9}", "waiters"))) {
                Some(at) => text.insert_str(at, &line),
                None => text.push_str(&line),
            }
        }
        out.write_all(text.as_bytes())?;
    }
    Ok(ExitCode::from(if state == LockState::Held {
        exit::HELD
    } else {
        exit::OK
    }))
}

/// A readers-writer lock's kind and readers, for `state`.
fn rw_lines(kind: &str, readers: &[buslock::Reader], style: Style) -> String {
    let label = |l: &str| style.bold(&format!("{l:<9}"));
    let mut s = format!("{}{kind} (the holder above is its writer)\n", label("kind"));
    s += &format!("{}{}\n", label("readers"), readers.len());
    for r in readers {
        s += &format!(
            "{}pid {}  tid {}  program {}  since {}\n",
            label(""),
            r.pid,
            r.tid,
            style.bold(&escape(&r.program)),
            render::timestamp(r.since)
        );
    }
    s
}

fn state_word(state: LockState, style: Style) -> String {
    match state {
        LockState::Free => style.good("free"),
        LockState::Held => style.warn("held"),
        LockState::HolderDied => style.bad("free: its holder died holding it"),
    }
}

fn human(
    m: &LockView,
    state: LockState,
    owner: Option<&Owner>,
    waiters: &[Waiter],
    stats: &Stats,
    style: Style,
) -> String {
    let mut s = String::new();
    let label = |l: &str| style.bold(&format!("{l:<9}"));
    s += &format!(
        "{}{}  {}\n",
        label("lock"),
        style.bold(m.name()),
        style.dim(&escape(&m.path().display().to_string()))
    );
    s += &format!("{}{}\n", label("state"), state_word(state, style));
    if let Some(o) = owner {
        s += &format!(
            "{}pid {}  tid {}  program {}\n",
            label("holder"),
            o.pid,
            o.tid,
            style.bold(&escape(&o.program))
        );
        s += &format!(
            "{}since {}, held for {} (process {})\n",
            label(""),
            render::timestamp(o.since),
            render::duration(o.held_for),
            o.state.as_str()
        );
        if !o.is_alive() {
            s += &format!(
                "{}{}\n",
                label(""),
                style.bad("the next holder will be told that the previous owner died")
            );
        }
        if o.took_over_from_dead {
            s += &format!("{}took over from a holder that died\n", label(""));
        }
        if o.torn {
            s += &format!(
                "{}{}\n",
                label(""),
                style.warn("record torn: a holder died while writing it")
            );
        }
    }
    s += &format!("{}{}\n", label("waiters"), waiters.len());
    if !waiters.is_empty() {
        let mut t = Table::new(&[">PID", ">TID", "PROGRAM", ">WAITING FOR", "STATE"]);
        for w in waiters {
            t.row(vec![
                w.pid.to_string().into(),
                w.tid.to_string().into(),
                w.program.clone().into(),
                Cell::styled(render::duration(w.waiting_for), Style::warn),
                w.state.as_str().into(),
            ]);
        }
        s += &t.render(style, &" ".repeat(9));
    }
    s += &stats_text(stats, style);
    s
}

/// The statistics block shared by `state` and `stats`.
pub fn stats_text(stats: &Stats, style: Style) -> String {
    let label = |l: &str| style.bold(&format!("{l:<9}"));
    let mut s = String::new();
    let deaths = if stats.owner_died > 0 {
        style.bad(&render::plural(stats.owner_died, "holder death"))
    } else {
        "0 holder deaths".to_owned()
    };
    s += &format!(
        "{}{}, {} contended ({:.1}%), {}, {}\n",
        label("stats"),
        render::plural(stats.acquisitions, "acquisition"),
        stats.contended,
        stats.contention_ratio() * 100.0,
        deaths,
        render::plural(stats.timeouts, "timeout")
    );
    s += &format!("{}since {}\n", label(""), render::timestamp(stats.since));
    let q = |h: &buslock::Histogram, q| {
        h.quantile_upper_bound(q)
            .map_or("-".to_owned(), |d| format!("≤{}", render::duration(d)))
    };
    s += &format!(
        "{}wait p50 {} p99 {}   hold p50 {} p99 {}\n",
        label(""),
        q(&stats.wait_histogram, 0.5),
        q(&stats.wait_histogram, 0.99),
        q(&stats.hold_histogram, 0.5),
        q(&stats.hold_histogram, 0.99),
    );
    if let Some(l) = &stats.longest_hold {
        s += &format!(
            "{}{} by pid {} tid {} ({}) at {}\n",
            label("longest"),
            render::duration(l.duration),
            l.pid,
            l.tid,
            escape(&l.program),
            render::timestamp(l.at)
        );
    }
    s += &format!("{}\n", style.bold("wait times (acquisitions that waited)"));
    s += &render::histogram_bars(&stats.wait_histogram, style, "  ");
    s += &format!("{}\n", style.bold("hold times"));
    s += &render::histogram_bars(&stats.hold_histogram, style, "  ");
    s
}
