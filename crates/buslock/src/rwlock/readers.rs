//! The readers table of a readers-writer lock: one slot per reading
//! thread, claimed by compare-and-swap on its `ident` (pid << 32 | tid),
//! then its process start time, so that a dead reader is recognised (its
//! thread is gone, or its pid now names a process that started at another
//! time) and its share freed.

use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock;
use crate::identity::{Me, ProcessState, process_state, thread_of};
use crate::raw::layout::{READER_SLOTS, RwPage, WaiterSlot, ident, split_ident, text_string};

/// A reader holding a readers-writer lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Program name (or its handle's label).
    pub program: String,
    /// When it took its share.
    pub since: SystemTime,
    /// What the process is doing now, from `/proc`.
    pub state: ProcessState,
}

/// Claim a free slot for `me`, starting at a slot chosen by the thread id
/// so that threads spread over the table. The claim is sequentially
/// consistent: it is the reader's half of the handshake with a writer
/// (see `mod.rs`). `None` when every slot is taken.
#[inline]
pub(super) fn claim(page: &RwPage, me: &Me, now_mono: u64) -> Option<usize> {
    let id = ident(me.pid, me.tid);
    let start = me.tid as usize % READER_SLOTS;
    for i in 0..READER_SLOTS {
        let n = (start + i) % READER_SLOTS;
        let slot = &page.readers[n];
        if slot.ident.load(Ordering::Relaxed) == 0
            && slot
                .ident
                .compare_exchange(0, id, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            slot.since_mono_ns.store(now_mono, Ordering::Relaxed);
            slot.program.store(me.program);
            slot.start_time.store(me.start_time, Ordering::Release);
            return Some(n);
        }
    }
    None
}

/// Give back slot `n` claimed as `id`, and wake a writer waiting for the
/// readers to drain. Does nothing if the slot no longer holds `id` (a
/// writer judged us dead, which cannot happen to a live thread, or a
/// `fork`ed child dropping its copy of a guard).
#[inline]
pub(super) fn release(page: &RwPage, n: usize, id: u64) {
    let slot = &page.readers[n];
    if slot
        .ident
        .compare_exchange(id, 0, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    leave(page);
}

/// A reader left: bump the drain sequence and wake the writer waiting on
/// it, if any.
#[inline]
pub(super) fn leave(page: &RwPage) {
    page.rw.drain_seq.fetch_add(1, Ordering::SeqCst);
    if page.rw.writer_waiting.load(Ordering::SeqCst) != 0 {
        crate::raw::futex::wake(&page.rw.drain_seq, 1);
    }
}

/// Whether slot `slot`, holding `id`, belongs to a reader that no longer
/// exists: its thread is gone, or its process is not the one that started
/// at the recorded time.
fn is_dead(slot: &WaiterSlot, id: u64) -> bool {
    let (pid, tid) = split_ident(id);
    if !thread_of(pid, tid) {
        return true;
    }
    let start = slot.start_time.load(Ordering::Acquire);
    start != 0 && !process_state(pid, start).is_alive()
}

/// Whether any slot is taken (after a sequentially consistent fence: the
/// writer's half of the handshake).
#[inline]
pub(super) fn any(page: &RwPage) -> bool {
    fence(Ordering::SeqCst);
    page.readers
        .iter()
        .any(|s| s.ident.load(Ordering::SeqCst) != 0)
}

/// Free the slots of readers that died; returns how many. Each is counted
/// once in the reader deaths (the compare-and-swap decides who frees it).
pub(super) fn reap(page: &RwPage) -> u64 {
    let mut freed = 0;
    for slot in &page.readers {
        let id = slot.ident.load(Ordering::Acquire);
        if id != 0
            && is_dead(slot, id)
            && slot
                .ident
                .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            freed += 1;
        }
    }
    if freed > 0 {
        page.rw.reader_deaths.fetch_add(freed, Ordering::Relaxed);
        page.rw.drain_seq.fetch_add(1, Ordering::SeqCst);
    }
    freed
}

/// The readers now, longest holding first; slots of dead readers are left
/// (a writer frees and counts them) and not listed.
pub(super) fn list(page: &RwPage) -> Vec<Reader> {
    let mut out = Vec::new();
    for slot in &page.readers {
        let id = slot.ident.load(Ordering::Acquire);
        if id == 0 {
            continue;
        }
        let start = slot.start_time.load(Ordering::Acquire);
        let since = slot.since_mono_ns.load(Ordering::Relaxed);
        let program = slot.program.load();
        if slot.ident.load(Ordering::Acquire) != id || start == 0 {
            continue;
        }
        let (pid, tid) = split_ident(id);
        let state = process_state(pid, start);
        if !state.is_alive() || !thread_of(pid, tid) {
            continue;
        }
        out.push(Reader {
            pid,
            tid,
            program: text_string(&program),
            since: UNIX_EPOCH + Duration::from_nanos(clock::to_realtime_ns(since)),
            state,
        });
    }
    out.sort_by_key(|r| r.since);
    out
}
