//! `buslock waits [--json]`: the current wait-for graph of a lock
//! directory, from each lock's owner record and waiters table.
//!
//! A thread waits for a lock, held by a thread, which may itself wait for
//! another lock, and so on: each such chain is printed, and one that comes
//! back to where it started is a deadlock (flagged; exit code 1). A holder
//! whose *child process* waits for a lock counts as waiting for it too:
//! `buslock run A -- buslock run B -- ...` holds `A` while its child waits
//! for `B`, blocked in `waitpid`, where the kernel sees no lock. Dead
//! threads and processes are ignored.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use buslock::escape;
use buslock::{LockDir, LockView};
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::model::print_json;
use crate::render::{duration, plural};

/// A thread, as the records name it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct ThreadJson {
    pid: u32,
    tid: u32,
    program: String,
}

/// One waiter of one lock.
#[derive(Debug, Clone, Serialize)]
struct WaitJson {
    waiter: ThreadJson,
    lock: String,
    waiting_for_ms: f64,
    /// `null` when the lock is free (being handed over) or its holder died.
    holder: Option<ThreadJson>,
}

#[derive(Serialize)]
struct WaitsDoc {
    dir: String,
    waits: Vec<WaitJson>,
    /// Chains: indices into `waits`, each waiting for the next's waiter.
    chains: Vec<Vec<usize>>,
    /// Chains that close on themselves: deadlocks.
    cycles: Vec<Vec<usize>>,
}

/// Parent of every process, from `/proc/PID/stat`.
fn parents() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return map;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        // After the command: state, ppid.
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// Whether `pid` descends from `ancestor` (and is not it).
fn descends(parents: &HashMap<u32, u32>, mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        match parents.get(&pid) {
            Some(&p) if p == ancestor => return true,
            Some(&p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

fn thread_alive(pid: u32, tid: u32) -> bool {
    Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
}

/// Whether wait `w` is one the holder `h` waits on: the same thread, or
/// (for a holder blocked on a child) a thread of a descendant process.
fn waits_on(h: &ThreadJson, w: &WaitJson, parents: &HashMap<u32, u32>) -> bool {
    (w.waiter.pid == h.pid && w.waiter.tid == h.tid) || descends(parents, w.waiter.pid, h.pid)
}

/// Print the wait-for graph; exit 1 when it has a cycle.
pub fn run(dir: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let dir = LockDir::resolve(dir)?;
    let mut waits = Vec::new();
    for name in dir.lock_names()? {
        let Ok(m) = LockView::open(&dir, &name) else {
            continue; // `buslock doctor` reports unusable lock files
        };
        let holder = m
            .owner()?
            .filter(|o| o.is_alive() && thread_alive(o.pid, o.tid))
            .map(|o| ThreadJson {
                pid: o.pid,
                tid: o.tid,
                program: o.program,
            });
        for w in m.waiters()? {
            if !w.state.is_alive() || !thread_alive(w.pid, w.tid) {
                continue;
            }
            waits.push(WaitJson {
                waiter: ThreadJson {
                    pid: w.pid,
                    tid: w.tid,
                    program: w.program.clone(),
                },
                lock: name.clone(),
                waiting_for_ms: w.waiting_for.as_secs_f64() * 1e3,
                holder: holder.clone(),
            });
        }
    }
    let parents = parents();
    // next[i]: the waits that wait i's holder is blocked on.
    let next: Vec<Vec<usize>> = waits
        .iter()
        .map(|w| match &w.holder {
            None => Vec::new(),
            Some(h) => (0..waits.len())
                .filter(|&j| waits_on(h, &waits[j], &parents))
                .collect(),
        })
        .collect();
    // Chain heads: waits nobody's holder is blocked on.
    let mut is_next = vec![false; waits.len()];
    for n in next.iter().flatten() {
        is_next[*n] = true;
    }
    let mut chains = Vec::new();
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    fn walk(
        at: usize,
        next: &[Vec<usize>],
        path: &mut Vec<usize>,
        chains: &mut Vec<Vec<usize>>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        if let Some(pos) = path.iter().position(|&p| p == at) {
            let mut cycle = path[pos..].to_vec();
            // One rotation per cycle: start at its smallest index.
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, v)| **v)
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            if !cycles.contains(&cycle) {
                cycles.push(cycle);
            }
            return;
        }
        path.push(at);
        if next[at].is_empty() {
            chains.push(path.clone());
        }
        for &n in &next[at] {
            walk(n, next, path, chains, cycles);
        }
        path.pop();
    }
    for (start, &pointed_to) in is_next.iter().enumerate() {
        if !pointed_to {
            walk(start, &next, &mut Vec::new(), &mut chains, &mut cycles);
        } else {
            // A cycle has no head: find it from each of its waits (the
            // chains found this way are parts of those above).
            walk(start, &next, &mut Vec::new(), &mut Vec::new(), &mut cycles);
        }
    }
    let code = if cycles.is_empty() {
        exit::OK
    } else {
        exit::HELD
    };
    let shown_dir = dir.path().display().to_string();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = WaitsDoc {
            dir: shown_dir,
            waits,
            chains,
            cycles,
        };
        print_json(&mut out, &doc)?;
        return Ok(ExitCode::from(code));
    }
    if waits.is_empty() {
        writeln!(out, "nobody waits for a lock in '{}'", escape(&shown_dir))?;
        return Ok(ExitCode::from(code));
    }
    let thread =
        |t: &ThreadJson| format!("'{}' (pid {}, tid {})", escape(&t.program), t.pid, t.tid);
    // Wait `i`, following wait `prev` (whose holder is the one waiting
    // here, itself or through a child process).
    let step = |i: usize, prev: Option<usize>| -> String {
        let w = &waits[i];
        let party = prev.and_then(|p| waits[p].holder.as_ref().map(|h| (h, &waits[p].lock)));
        let who = match party {
            None => thread(&w.waiter),
            Some((h, lock)) if h.pid == w.waiter.pid => {
                format!("{} (holding '{lock}')", thread(h))
            }
            Some((h, lock)) => format!(
                "{} (holding '{lock}') through its child {}",
                thread(h),
                thread(&w.waiter)
            ),
        };
        let held = match &w.holder {
            Some(h) => format!("held by {}", thread(h)),
            None => "free or being handed over".to_owned(),
        };
        format!(
            "{who} waits for '{}' ({}), {held}",
            w.lock,
            duration(std::time::Duration::from_secs_f64(w.waiting_for_ms / 1e3))
        )
    };
    writeln!(
        out,
        "wait-for graph of '{}' ({}):",
        escape(&shown_dir),
        plural(waits.len() as u64, "waiter")
    )?;
    for chain in &chains {
        for (k, &i) in chain.iter().enumerate() {
            let prev = (k > 0).then(|| chain[k - 1]);
            let indent = if k == 0 { "  " } else { "    then " };
            writeln!(out, "{indent}{}", step(i, prev))?;
        }
    }
    for cycle in &cycles {
        let locks: Vec<&str> = cycle.iter().map(|&i| waits[i].lock.as_str()).collect();
        writeln!(
            out,
            "DEADLOCK: a cycle of waits: {} -> {}",
            locks.join(" -> "),
            locks[0]
        )?;
        for (k, &i) in cycle.iter().enumerate() {
            let prev = Some(cycle[(k + cycle.len() - 1) % cycle.len()]);
            writeln!(out, "  {}", step(i, prev))?;
        }
        writeln!(
            out,
            "  nobody in this cycle will ever get its lock: end one of these processes"
        )?;
    }
    Ok(ExitCode::from(code))
}
