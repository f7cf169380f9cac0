//! The readers table of a readers-writer lock: one slot per reading
//! thread, claimed by compare-and-swap on its `ident` (pid << 32 | tid),
//! then its process start time, so that a dead reader is recognised (its
//! thread is gone, or its pid now names a process that started at another
//! time) and its share freed.
//!
//! A slot's bit in `occupied` is set (sequentially consistent) after the
//! slot is filled and cleared before it is emptied, so that a writer need
//! only look at one word: a set bit always has its slot's `ident` behind
//! it. A reader that died between claiming its slot and setting its bit
//! never held the lock: its slot is freed, but not counted as a death.

use std::sync::atomic::{Ordering, fence};
use std::time::SystemTime;

use crate::clock;
use crate::events::{self, HoldRecord, RwEvent, Who};
use crate::identity::{Me, ProcessState, process_state, thread_of};
use crate::raw::layout::{READER_SLOTS, ReaderSlot, RwPage, ident, split_ident, text_string};

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
/// so that threads spread over the table, and set its bit. Setting the bit
/// is sequentially consistent: it is the reader's half of the handshake
/// with a writer (see `mod.rs`). `None` when every slot is taken.
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
                .compare_exchange(0, id, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            slot.since_mono_ns.store(now_mono, Ordering::Relaxed);
            slot.program.store(me.program);
            slot.start_time.store(me.start_time, Ordering::Release);
            page.rw.occupied.fetch_or(1 << n, Ordering::SeqCst);
            return Some(n);
        }
    }
    None
}

/// Count a read taken through slot `n`, which the calling thread holds
/// (so no other thread writes its count: no locked instruction).
#[inline]
pub(super) fn count_read(page: &RwPage, n: usize) {
    let reads = &page.readers[n].reads;
    reads.store(
        reads.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Zero the read side's counters (the caller holds the lock to write, so
/// no reader is counting).
pub(super) fn reset_counts(page: &RwPage) {
    let rw = &page.rw;
    for c in [
        &rw.read_acquisitions,
        &rw.read_contended,
        &rw.read_wait_ns,
        &rw.read_timeouts,
        &rw.reader_deaths,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    for slot in &page.readers {
        slot.reads.store(0, Ordering::Relaxed);
    }
}

/// Every read ever counted ([`count_read`] and the block's own counter).
pub(super) fn reads(page: &RwPage) -> u64 {
    page.readers.iter().fold(
        page.rw.read_acquisitions.load(Ordering::Relaxed),
        |sum, slot| sum.wrapping_add(slot.reads.load(Ordering::Relaxed)),
    )
}

/// Whether slot `n` still holds `id` (not: a writer judged this reader
/// dead, which cannot happen to a live thread, or a `fork`ed child holds a
/// copy of the guard).
#[inline]
pub(super) fn holds(page: &RwPage, n: usize, id: u64) -> bool {
    page.readers[n].ident.load(Ordering::Relaxed) == id
}

/// Give back slot `n` claimed as `id`, and wake a writer waiting for the
/// readers to drain; `false` (nothing done) if the slot no longer holds
/// `id` (a writer judged us dead, which cannot happen to a live thread, or
/// a `fork`ed child dropping its copy of a guard).
#[inline]
pub(super) fn release(page: &RwPage, n: usize, id: u64) -> bool {
    let slot = &page.readers[n];
    if slot.ident.load(Ordering::Relaxed) != id {
        return false;
    }
    page.rw.occupied.fetch_and(!(1 << n), Ordering::SeqCst);
    slot.start_time.store(0, Ordering::Relaxed);
    slot.ident.store(0, Ordering::Release);
    leave(page);
    true
}

/// A reader left (its bit was cleared, sequentially consistent): if a
/// writer waits, bump the drain sequence and wake it.
///
/// Why a reader that sees no waiting writer may skip both: its bit was
/// cleared before it read `writer_waiting`, and a writer sets
/// `writer_waiting` before it reads the drain sequence and then the bitmap
/// (all sequentially consistent). If the reader read 0, the writer's store
/// comes later in the single order, so the writer's look at the bitmap
/// finds the bit cleared and it does not sleep.
#[inline]
pub(super) fn leave(page: &RwPage) {
    if page.rw.writer_waiting.load(Ordering::SeqCst) != 0 {
        page.rw.drain_seq.fetch_add(1, Ordering::SeqCst);
        crate::raw::futex::wake(&page.rw.drain_seq, 1);
    }
}

/// Whether slot `slot`, holding `id`, belongs to a reader that no longer
/// exists: its thread is gone, or its process is not the one that started
/// at the recorded time.
fn is_dead(slot: &ReaderSlot, id: u64) -> bool {
    let (pid, tid) = split_ident(id);
    if !thread_of(pid, tid) {
        return true;
    }
    let start = slot.start_time.load(Ordering::Acquire);
    start != 0 && !process_state(pid, start).is_alive()
}

/// Whether any reader holds the lock (after a sequentially consistent
/// fence: the writer's half of the handshake).
#[inline]
pub(super) fn any(page: &RwPage) -> bool {
    fence(Ordering::SeqCst);
    page.rw.occupied.load(Ordering::SeqCst) != 0
}

/// [`any`] for the writer's first look, as one sequentially consistent
/// read-modify-write of the bitmap (`0 → 0`) instead of a fence and a load:
/// cheaper on x86, where a full fence costs more than a locked instruction
/// on a line the writer usually has already. Why it is enough: a reader's
/// bit is set by a read-modify-write of the same word, so the two are
/// ordered; if the reader's comes later it reads from ours and so sees the
/// word this writer took before (and backs out); if earlier, we see its bit.
#[inline]
pub(super) fn any_rmw(page: &RwPage) -> bool {
    page.rw
        .occupied
        .compare_exchange(0, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
}

/// Free the slots of readers that died; returns how many of them held the
/// lock, each counted once in the reader deaths and recorded in the event
/// ring. The bit is cleared while the dead reader's `ident` still keeps
/// the slot from being claimed, so it can only be that reader's; whoever
/// clears a set bit counts it.
pub(super) fn reap(page: &RwPage) -> u64 {
    let mut freed = 0;
    for (n, slot) in page.readers.iter().enumerate() {
        let id = slot.ident.load(Ordering::Acquire);
        if id != 0 && is_dead(slot, id) {
            let bit = 1u64 << n;
            if page.rw.occupied.fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
                freed += 1;
                let since = slot.since_mono_ns.load(Ordering::Relaxed);
                let program = slot.program.load();
                events::push_shared(
                    &page.events,
                    &Who {
                        ident: id,
                        program: &program,
                    },
                    &HoldRecord {
                        acquired_mono_ns: since,
                        waited_ns: 0,
                        held_ns: clock::now_ns().saturating_sub(since),
                        owner_died: false,
                    },
                    RwEvent {
                        read: true,
                        died: true,
                    },
                );
            }
            let _ = slot
                .ident
                .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Relaxed);
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
    let wall = clock::WallClock::now();
    let mut out = Vec::new();
    let occupied = page.rw.occupied.load(Ordering::Acquire);
    for (n, slot) in page.readers.iter().enumerate() {
        let id = slot.ident.load(Ordering::Acquire);
        if id == 0 || occupied & (1 << n) == 0 {
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
            since: wall.at(since),
            state,
        });
    }
    out.sort_by_key(|r| r.since);
    out
}
