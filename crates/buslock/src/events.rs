//! The ring of recent holds, for `buslock watch`.
//!
//! The holder appends one event per hold when it releases. Each slot is a
//! sequence lock ([`crate::seqlock`]) of its own: its word is `u64::MAX`
//! while being written and the event number + 1 once complete, so a reader
//! can tell a complete event from one being overwritten without taking the
//! lock.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::Me;
use crate::raw::layout::{
    EVENT_SLOTS, EventRing, FLAG_OWNER_DIED, ident, split_ident, text_string,
};
use crate::seqlock::SeqCell;

/// One completed hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event number (0, 1, 2, ... since the file was created).
    pub seq: u64,
    /// Holder pid.
    pub pid: u32,
    /// Holder tid.
    pub tid: u32,
    /// Holder program.
    pub program: String,
    /// When the hold began.
    pub acquired: SystemTime,
    /// How long the holder waited for the lock.
    pub waited: Duration,
    /// How long it held the lock.
    pub held: Duration,
    /// The holder took over from a holder that died.
    pub previous_owner_died: bool,
}

/// What one acquisition contributed to its event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoldRecord {
    pub acquired_mono_ns: u64,
    pub waited_ns: u64,
    pub held_ns: u64,
    pub owner_died: bool,
}

/// Append an event. Called under the lock.
#[inline]
pub(crate) fn push(ring: &EventRing, me: &Me, hold: &HoldRecord) {
    let n = ring.head.load(Ordering::Relaxed);
    let slot = &ring.slots[(n % EVENT_SLOTS as u64) as usize];
    slot.write(u64::MAX, n + 1, |slot| {
        slot.ident.store(ident(me.pid, me.tid), Ordering::Relaxed);
        slot.acquired_mono_ns
            .store(hold.acquired_mono_ns, Ordering::Relaxed);
        slot.waited_ns.store(hold.waited_ns, Ordering::Relaxed);
        slot.held_ns.store(hold.held_ns, Ordering::Relaxed);
        slot.flags.store(
            if hold.owner_died {
                u64::from(FLAG_OWNER_DIED)
            } else {
                0
            },
            Ordering::Relaxed,
        );
        slot.program.store(me.program);
    });
    ring.head.store(n + 1, Ordering::Release);
}

/// Number of events ever written.
pub(crate) fn head(ring: &EventRing) -> u64 {
    ring.head.load(Ordering::Acquire)
}

/// Events numbered `from..head`, as far as they are still in the ring, and
/// the number to ask from next time. Events overwritten before they could
/// be read are skipped (the gap shows in their numbers).
pub(crate) fn read_from(ring: &EventRing, from: u64) -> (Vec<Event>, u64) {
    let head = head(ring);
    let start = from.max(head.saturating_sub(EVENT_SLOTS as u64));
    let mut out = Vec::new();
    for n in start..head {
        let slot = &ring.slots[(n % EVENT_SLOTS as u64) as usize];
        // Skip a slot being written, or already holding a later event.
        let Some((_, (ident, acquired, waited, held, flags, program))) = slot.try_read(
            |seq| seq == n + 1,
            |slot| {
                (
                    slot.ident.load(Ordering::Relaxed),
                    slot.acquired_mono_ns.load(Ordering::Relaxed),
                    slot.waited_ns.load(Ordering::Relaxed),
                    slot.held_ns.load(Ordering::Relaxed),
                    slot.flags.load(Ordering::Relaxed),
                    slot.program.load(),
                )
            },
        ) else {
            continue;
        };
        let (pid, tid) = split_ident(ident);
        out.push(Event {
            seq: n,
            pid,
            tid,
            program: text_string(&program),
            acquired: UNIX_EPOCH + Duration::from_nanos(crate::clock::to_realtime_ns(acquired)),
            waited: Duration::from_nanos(waited),
            held: Duration::from_nanos(held),
            previous_owner_died: flags & u64::from(FLAG_OWNER_DIED) != 0,
        });
    }
    (out, head.max(from))
}
