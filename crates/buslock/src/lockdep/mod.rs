//! Lock-order checking across processes (lockdep for every program that
//! uses a lock directory).
//!
//! Lock classes are lock names in one lock directory. Each thread keeps the
//! stack of buslock locks it holds ([`HELD_MAX`] deep, thread-local). When a
//! thread holding `A` acquires `B`, the edge `A -> B` is recorded once in
//! the directory's registry file ([`REGISTRY_FILE`]), with its first
//! witness. Before an acquisition that would add a new edge, a search looks
//! for a recorded path `B -> ... -> A`, taken by any process, even one long
//! gone: that is an inversion, a deadlock waiting to happen.
//!
//! What happens then depends on the [`Mode`] of the lock being acquired:
//! `BUSLOCK_LOCKDEP=off|warn|error` for the process, or
//! [`Builder::lockdep`](crate::Builder::lockdep) for one handle.
//!
//! - [`Mode::Warn`] (the default) reports the inversion once per process
//!   through the [`log`] facade (target `buslock::lockdep`), keeps it for
//!   [`take_warning`] (the Python binding turns it into a
//!   `buslock.LockOrderWarning`), records the edge and goes on.
//! - [`Mode::Error`] refuses the acquisition before it blocks with
//!   [`Error::LockOrder`] and records the refusal.
//! - [`Mode::Off`] neither checks nor records.
//!
//! A thread that holds no other buslock lock pays one thread-local read
//! before an acquisition (and a thread-local push and pop around it); a
//! nested acquisition on known edges reads one bit per held lock in the
//! shared registry. A registry that cannot be used (corrupted, foreign,
//! unreadable) never blocks locking: it is reported once and order checking
//! is off for that directory. Locks nested across different lock
//! directories are not related (each directory has its own graph).

mod held;
mod registry;
mod report;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, OnceLock, PoisonError};

use rustix::fs::fstat;

pub use held::HELD_MAX;
pub use registry::REGISTRY_FILE;
// The registry's reader and report helpers serve `buslock order` and
// `buslock waits`, not programs that lock.
#[doc(hidden)]
pub use registry::{Graph, Registry, Witness, WitnessKind};
#[doc(hidden)]
pub use report::utc;

use crate::error::{Error, Result};
use crate::lockfile::{LockDir, LockName};
use crate::raw::registry::{MAX_CLASSES, WITNESS_EDGE, WITNESS_HELD, WITNESS_REFUSED};
use held::Key;

/// What lock-order checking does for a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Neither check nor record.
    Off,
    /// Report a new inversion once per process, record it, go on.
    #[default]
    Warn,
    /// Refuse an acquisition that inverts the recorded order, before it
    /// blocks, with [`Error::LockOrder`].
    Error,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Mode, String> {
        match s {
            "off" => Ok(Mode::Off),
            "warn" => Ok(Mode::Warn),
            "error" => Ok(Mode::Error),
            other => Err(format!(
                "invalid lock-order mode {:?}: use off, warn or error",
                crate::escape(other)
            )),
        }
    }
}

impl Mode {
    /// The process's mode: `$BUSLOCK_LOCKDEP` (`off`, `warn` or `error`),
    /// read once; [`Mode::Warn`] when unset. An invalid value is reported
    /// once through [`log`] and counts as `warn`.
    pub fn from_env() -> Mode {
        static MODE: OnceLock<Mode> = OnceLock::new();
        *MODE.get_or_init(|| match std::env::var("BUSLOCK_LOCKDEP") {
            Err(_) => Mode::Warn,
            Ok(v) => v.parse().unwrap_or_else(|e| {
                log::warn!(target: "buslock::lockdep", "BUSLOCK_LOCKDEP: {e}; using warn");
                Mode::Warn
            }),
        })
    }

    /// `off`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Warn => "warn",
            Mode::Error => "error",
        }
    }
}

/// One directory's registry as this process uses it.
struct Shared {
    id: u16,
    dir: PathBuf,
    registry: Registry,
    full_reported: AtomicBool,
}

/// Registries opened by this process, by directory (device, inode); `None`
/// for a directory whose registry was refused (reported once).
type Dirs = Vec<((u64, u64), Option<Arc<Shared>>)>;
static DIRS: StdMutex<Dirs> = StdMutex::new(Vec::new());

/// Inversions this process already reported: (registry id, from, to).
static REPORTED: StdMutex<Vec<(u16, u16, u16)>> = StdMutex::new(Vec::new());

thread_local! {
    static WARNING: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Whether the calling thread holds a buslock lock that takes part in
/// lock-order checking (one thread-local read). Bindings that try a lock
/// before they wait for it skip the try then, so that the check, which a
/// try does not make, runs.
pub fn holds_any() -> bool {
    !held::is_empty()
}

/// The last inversion reported in [`Mode::Warn`] on the calling thread and
/// not taken yet (for language bindings that raise their own warnings).
pub fn take_warning() -> Option<String> {
    WARNING.with(|w| w.borrow_mut().take())
}

fn shared_for(dir: &LockDir, create: bool) -> Option<Arc<Shared>> {
    let st = fstat(dir.fd()).ok()?;
    let key = (st.st_dev, st.st_ino);
    let mut dirs = DIRS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, s)) = dirs.iter().find(|(k, _)| *k == key) {
        return s.clone();
    }
    let opened = match Registry::open(dir, create) {
        Ok(Some(registry)) => Some(Arc::new(Shared {
            id: dirs.len() as u16,
            dir: dir.path().to_path_buf(),
            registry,
            full_reported: AtomicBool::new(false),
        })),
        // Not created by an inspection handle; a later handle may create it.
        Ok(None) => return None,
        Err(e) => {
            log::warn!(target: "buslock::lockdep", "{e}");
            None
        }
    };
    if dirs.len() < usize::from(u16::MAX) {
        dirs.push((key, opened.clone()));
    }
    opened
}

/// A lock's lock-order class as one [`Mutex`](crate::Mutex) handle uses it.
pub(crate) struct Class {
    shared: Option<Arc<Shared>>,
    key: Key,
    mode: Mode,
    name: String,
}

/// What [`Class::before`] found: whether the acquisition adds new edges
/// (to record once it holds the lock) and whether one closes a cycle.
#[derive(Clone, Copy)]
#[must_use]
pub(crate) struct Pending(u8);

const NEW_EDGE: u8 = 1;
const CYCLIC: u8 = 2;

impl Class {
    /// The class of lock `name` in `dir` (`mode`: the handle's choice, else
    /// the process's). Never fails: a registry that cannot be used turns
    /// checking off for the directory.
    /// Inspection handles (`create` false) neither create the registry nor
    /// add their name to it; they are checked only if the name is known.
    pub(crate) fn open(dir: &LockDir, name: &LockName, mode: Option<Mode>, create: bool) -> Class {
        let name = name.as_str();
        let mode = mode.unwrap_or_else(Mode::from_env);
        let off = Class {
            shared: None,
            key: 0,
            mode: Mode::Off,
            name: name.to_owned(),
        };
        if mode == Mode::Off {
            return off;
        }
        let Some(shared) = shared_for(dir, create) else {
            return off;
        };
        // Inspection handles only look their class up: looking must not
        // add lock names to the registry.
        let class = if create {
            shared.registry.register(name)
        } else {
            Ok(shared.registry.find_class(name))
        };
        match class {
            Ok(Some(idx)) => Class {
                key: (u32::from(shared.id) << 16) | u32::from(idx),
                shared: Some(shared),
                mode,
                name: name.to_owned(),
            },
            Ok(None) => {
                if !shared.full_reported.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        target: "buslock::lockdep",
                        "lock-order registry '{}' is full: it records at most {MAX_CLASSES} lock \
                         names (MAX_CLASSES); lock '{name}' and later new names are not \
                         order-checked (locking works as usual). Remove the registry when no \
                         program uses the directory to start afresh",
                        shared.registry.path().display()
                    );
                }
                off
            }
            Err(e) => {
                log::warn!(target: "buslock::lockdep", "{e}");
                off
            }
        }
    }

    /// Before an acquisition that may block: check the edges from every
    /// held lock to this one. Nothing but a thread-local read when the
    /// thread holds no lock.
    ///
    /// # Errors
    ///
    /// [`Error::LockOrder`] in [`Mode::Error`] when the acquisition would
    /// close a cycle of recorded orders.
    #[inline(always)]
    pub(crate) fn before(&self, try_only: bool) -> Result<Pending> {
        if held::is_empty() || try_only {
            return Ok(Pending(0));
        }
        let Some(shared) = &self.shared else {
            return Ok(Pending(0));
        };
        // Every edge from a held lock known and not an inversion: one or
        // two loads per held lock.
        let (reg, to, id) = (&shared.registry, self.key as u16, self.key >> 16);
        if held::all(|h| h >> 16 != id || h == self.key || reg.is_plain_edge(h as u16, to)) {
            return Ok(Pending(0));
        }
        self.before_nested()
    }

    #[inline(never)]
    fn before_nested(&self) -> Result<Pending> {
        let Some(shared) = &self.shared else {
            return Ok(Pending(0));
        };
        let reg = &shared.registry;
        let mut held = [0; HELD_MAX];
        let n = held::snapshot(&mut held);
        let to = self.key as u16;
        let mut pending = 0;
        for &h in &held[..n] {
            if h >> 16 != self.key >> 16 || h == self.key {
                continue;
            }
            let from = h as u16;
            if reg.has_edge(from, to) {
                if reg.is_cyclic(from, to) {
                    self.inversion(shared, from, &held[..n])?;
                }
                continue;
            }
            pending |= NEW_EDGE;
            if self.inversion(shared, from, &held[..n])? {
                pending |= CYCLIC;
            }
        }
        Ok(Pending(pending))
    }

    /// If a path `to -> ... -> from` is recorded, report it (warn) or
    /// refuse (error). Returns whether there is one.
    #[cold]
    fn inversion(&self, shared: &Shared, from: u16, held: &[Key]) -> Result<bool> {
        let reg = &shared.registry;
        let to = self.key as u16;
        let Some(chain) = reg.find_path(to, from) else {
            return Ok(false);
        };
        let first = {
            let mut reported = REPORTED.lock().unwrap_or_else(PoisonError::into_inner);
            let pair = (shared.id, from, to);
            let first = !reported.contains(&pair);
            if first {
                reported.push(pair);
            }
            first
        };
        if self.mode == Mode::Warn && !first {
            return Ok(true);
        }
        let me = crate::identity::me();
        let held_idx = held_indices(shared.id, held);
        let taker = Witness {
            kind: WitnessKind::Refused,
            from_idx: from,
            to_idx: to,
            from: reg.name(from),
            to: reg.name(to),
            pid: me.pid,
            tid: me.tid,
            start_time: me.start_time,
            program: crate::raw::layout::text_string(me.program),
            at: std::time::SystemTime::now(),
            held: held_idx.iter().map(|&c| reg.name(c)).collect(),
        };
        let text = report::inversion(reg, &shared.dir.to_string_lossy(), &taker, &chain);
        match self.mode {
            Mode::Error => {
                if first {
                    if let Ok(lock) = reg.lock_briefly() {
                        reg.record(&lock, WITNESS_REFUSED, false, from, to, &me, &held_idx);
                    }
                }
                Err(Error::LockOrder {
                    name: self.name.clone(),
                    report: text,
                })
            }
            _ => {
                log::warn!(target: "buslock::lockdep", "{text}");
                WARNING.with(|w| *w.borrow_mut() = Some(text));
                Ok(true)
            }
        }
    }

    /// After the acquisition succeeded: push this lock on the thread's
    /// stack and record the new edges [`Class::before`] found.
    #[inline(always)]
    pub(crate) fn acquired(&self, pending: Pending) {
        if self.shared.is_none() {
            return;
        }
        if pending.0 & NEW_EDGE != 0 {
            self.record(pending.0 & CYCLIC != 0);
        }
        held::push(self.key);
    }

    #[cold]
    fn record(&self, cyclic: bool) {
        let Some(shared) = &self.shared else {
            return;
        };
        let reg = &shared.registry;
        let mut held = [0; HELD_MAX];
        let n = held::snapshot(&mut held);
        let to = self.key as u16;
        let me = crate::identity::me();
        let held_idx = held_indices(shared.id, &held[..n]);
        let Ok(lock) = reg.lock_briefly() else {
            return; // a stopped holder: the edge is recorded next time
        };
        for &h in &held[..n] {
            if h >> 16 != self.key >> 16 || h == self.key {
                continue;
            }
            let from = h as u16;
            if !reg.has_edge(from, to) {
                let closes = cyclic && reg.find_path(to, from).is_some();
                reg.record(&lock, WITNESS_EDGE, closes, from, to, &me, &held_idx);
            }
        }
    }

    /// On release: pop this lock from the thread's stack.
    #[inline(always)]
    pub(crate) fn released(&self) {
        if self.shared.is_some() {
            held::pop(self.key);
        }
    }

    /// The mode in effect (`Off` also when the registry was unusable).
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }
}

fn held_indices(id: u16, held: &[Key]) -> Vec<u16> {
    held.iter()
        .filter(|&&h| h >> 16 == u32::from(id))
        .map(|&h| h as u16)
        .take(WITNESS_HELD)
        .collect()
}

/// An inversion recorded in a registry, for `buslock order`.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Inversion {
    /// The cycle of lock names, each taken while holding the one before
    /// (the last one while holding the first... and so on round).
    pub cycle: Vec<String>,
    /// The witnesses of the cycle's edges that the ring still has, and the
    /// refused acquisition if it was refused.
    pub witnesses: Vec<Witness>,
    /// The report text, as the warning or error showed it.
    pub report: String,
}

/// Every inversion recorded in `reg` (edges that closed a cycle, and
/// acquisitions refused in `error` mode). `dir` is shown in the reports.
#[doc(hidden)]
pub fn inversions(reg: &Registry, dir: &str) -> Vec<Inversion> {
    let graph = reg.graph();
    let witnesses = reg.witnesses();
    let mut out = Vec::new();
    let mut seen: Vec<(u16, u16)> = Vec::new();
    let mut add = |from: u16, to: u16, taker: Witness, out: &mut Vec<Inversion>| {
        if seen.contains(&(from, to)) {
            return;
        }
        // The chain recorded without this edge.
        let Some(chain) = reg.find_path(to, from) else {
            return;
        };
        seen.push((from, to));
        let cycle: Vec<String> = chain.iter().map(|&c| reg.name(c)).collect();
        let mut ws: Vec<Witness> = chain
            .windows(2)
            .filter_map(|p| reg.edge_witness(p[0], p[1]))
            .collect();
        ws.push(taker.clone());
        let report = report::inversion(reg, dir, &taker, &chain);
        out.push(Inversion {
            cycle,
            witnesses: ws,
            report,
        });
    };
    for &(from, to) in &graph.cyclic {
        if let Some(w) = reg.edge_witness(from, to) {
            add(from, to, w, &mut out);
        }
    }
    for w in witnesses
        .into_iter()
        .filter(|w| w.kind == WitnessKind::Refused)
    {
        add(w.from_idx, w.to_idx, w.clone(), &mut out);
    }
    out
}
