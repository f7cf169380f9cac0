//! The waiters table: who is waiting for a lock and since when.
//!
//! A waiter claims a free slot by compare-and-swap on its `ident` before it
//! blocks and frees it when it stops waiting. A waiter that dies while
//! waiting leaves its slot behind; readers recognise such slots because the
//! recorded process no longer exists, skip them and free them.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock;
use crate::identity::{Me, ProcessState, process_state};
use crate::raw::layout::{WaiterSlot, ident, split_ident, text_string};

/// A process (thread) waiting for a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Process start time, clock ticks after boot.
    pub start_time: u64,
    /// Program name (or its handle's label).
    pub program: String,
    /// When it started waiting.
    pub since: SystemTime,
    /// How long it has waited, as of this read.
    pub waiting_for: Duration,
    /// What the process is doing now, from `/proc`.
    pub state: ProcessState,
}

/// A claimed slot; freed on drop.
pub(crate) struct WaiterEntry<'a> {
    slot: Option<(&'a WaiterSlot, u64)>,
}

impl<'a> WaiterEntry<'a> {
    /// Claim a slot for `me` (none if the table is full: the wait still
    /// works, it is just not listed).
    pub(crate) fn enter(slots: &'a [WaiterSlot], me: &Me, since_mono_ns: u64) -> Self {
        let id = ident(me.pid, me.tid);
        for slot in slots {
            if slot
                .ident
                .compare_exchange(0, id, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                slot.since_mono_ns.store(since_mono_ns, Ordering::Relaxed);
                slot.since_real_ns
                    .store(clock::to_realtime_ns(since_mono_ns), Ordering::Relaxed);
                slot.program.store(me.program);
                slot.start_time.store(me.start_time, Ordering::Release);
                return WaiterEntry {
                    slot: Some((slot, id)),
                };
            }
        }
        WaiterEntry { slot: None }
    }
}

impl Drop for WaiterEntry<'_> {
    fn drop(&mut self) {
        if let Some((slot, id)) = self.slot {
            slot.start_time.store(0, Ordering::Relaxed);
            // Only free it if it is still ours (a reader may have freed it
            // after deciding, wrongly, that we were gone).
            let _ = slot
                .ident
                .compare_exchange(id, 0, Ordering::Release, Ordering::Relaxed);
        }
    }
}

/// Which slots [`scan`] returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Live waiters; slots of dead ones are freed.
    Live,
    /// Slots left by waiters that died, left in place.
    Stale,
    /// Live waiters; nothing is written (for read-only mappings).
    LiveReadOnly,
}

/// List waiters, longest waiting first.
pub(crate) fn scan(slots: &[WaiterSlot], which: Scan) -> Vec<Waiter> {
    let now_mono = clock::monotonic_ns_syscall();
    let mut out = Vec::new();
    for slot in slots {
        let id = slot.ident.load(Ordering::Acquire);
        if id == 0 {
            continue;
        }
        let start_time = slot.start_time.load(Ordering::Acquire);
        let since_mono = slot.since_mono_ns.load(Ordering::Relaxed);
        let since_real = slot.since_real_ns.load(Ordering::Relaxed);
        let program = slot.program.load();
        if slot.ident.load(Ordering::Acquire) != id || start_time == 0 {
            continue; // changing hands, or still being filled in
        }
        let (pid, tid) = split_ident(id);
        let state = process_state(pid, start_time);
        if state.is_alive() == (which == Scan::Stale) {
            if which == Scan::Live {
                let _ = slot
                    .ident
                    .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
            continue;
        }
        out.push(Waiter {
            pid,
            tid,
            start_time,
            program: text_string(&program),
            since: UNIX_EPOCH + Duration::from_nanos(since_real),
            waiting_for: Duration::from_nanos(now_mono.saturating_sub(since_mono)),
            state,
        });
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.waiting_for));
    out
}

/// Free the slots of waiters that no longer exist; returns how many.
pub(crate) fn reap(slots: &[WaiterSlot]) -> usize {
    let mut freed = 0;
    for slot in slots {
        let id = slot.ident.load(Ordering::Acquire);
        if id == 0 {
            continue;
        }
        let (pid, _) = split_ident(id);
        let start_time = slot.start_time.load(Ordering::Acquire);
        if start_time != 0
            && !process_state(pid, start_time).is_alive()
            && slot
                .ident
                .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            freed += 1;
        }
    }
    freed
}
