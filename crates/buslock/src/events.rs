//! The ring of recent holds, for `buslock watch`.
//!
//! The holder appends one event per hold when it releases. Each slot is a
//! sequence lock ([`crate::seqlock`]) of its own: its word is `u64::MAX`
//! while being written and the event number + 1 once complete, so a reader
//! can tell a complete event from one being overwritten without taking the
//! lock.
//!
//! A mutex's ring has one writer at a time (the holder), which publishes
//! the head after the event ([`push`]). A readers-writer lock's ring has
//! many (readers release at the same time): each claims its event's number
//! by an atomic add on the head, then writes the slot ([`push_shared`]), so
//! the head can run ahead of complete events. A reader of the ring stops at
//! the first event still being written and takes it up next time, unless
//! [`EVENT_SLOTS`]` / 2` later events were claimed since (its writer died
//! in the middle, or is very slow): then it is skipped, and shows as lost.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::identity::Me;
use crate::raw::layout::{
    EVENT_SLOTS, EventRing, FLAG_DIED, FLAG_OWNER_DIED, FLAG_READ, TEXT_BYTES, ident, split_ident,
    text_string,
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
    /// A read (shared) hold of a readers-writer lock; `false` for a write
    /// or a mutex hold.
    pub read: bool,
    /// Not a completed hold: this holder was found dead holding the lock
    /// (a reader whose share was freed, or a writer whose death the next
    /// holder was told of; a mutex's ring has no such events), and
    /// [`Event::held`] runs until it was found.
    pub died: bool,
}

/// What one acquisition contributed to its event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HoldRecord {
    pub acquired_mono_ns: u64,
    pub waited_ns: u64,
    pub held_ns: u64,
    pub owner_died: bool,
}

/// Flags of a readers-writer lock's event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RwEvent {
    /// A read hold (else a write hold).
    pub read: bool,
    /// A holder found dead, not a release.
    pub died: bool,
}

/// Who an event is about: `pid << 32 | tid` and program.
pub(crate) struct Who<'a> {
    pub ident: u64,
    pub program: &'a [u8; TEXT_BYTES],
}

impl<'a> From<&'a Me> for Who<'a> {
    #[inline]
    fn from(me: &'a Me) -> Self {
        Who {
            ident: ident(me.pid, me.tid),
            program: me.program,
        }
    }
}

/// Append an event. Called under the lock.
#[inline]
pub(crate) fn push(ring: &EventRing, me: &Me, hold: &HoldRecord) {
    let kind = RwEvent {
        read: false,
        died: false,
    };
    push_exclusive(ring, &Who::from(me), hold, kind);
}

/// The flag bits of an event.
#[inline]
fn flags(hold: &HoldRecord, kind: RwEvent) -> u64 {
    let mut flags = 0;
    if hold.owner_died {
        flags |= FLAG_OWNER_DIED;
    }
    if kind.read {
        flags |= FLAG_READ;
    }
    if kind.died {
        flags |= FLAG_DIED;
    }
    u64::from(flags)
}

/// Fill event `n`'s slot.
#[inline]
fn write_slot(ring: &EventRing, n: u64, who: &Who<'_>, hold: &HoldRecord, flags: u64) {
    let slot = &ring.slots[(n % EVENT_SLOTS as u64) as usize];
    slot.write(u64::MAX, n + 1, |slot| {
        slot.ident.store(who.ident, Ordering::Relaxed);
        slot.acquired_mono_ns
            .store(hold.acquired_mono_ns, Ordering::Relaxed);
        slot.waited_ns.store(hold.waited_ns, Ordering::Relaxed);
        slot.held_ns.store(hold.held_ns, Ordering::Relaxed);
        slot.flags.store(flags, Ordering::Relaxed);
        slot.program.store(who.program);
    });
}

/// Append an event while no other thread can append: a mutex's holder, or
/// a readers-writer lock's writer holding it alone (readers record their
/// events before they give their share back, so none is recording while a
/// writer holds). The head is published after the event, with a plain
/// store (no locked instruction).
#[inline]
pub(crate) fn push_exclusive(ring: &EventRing, who: &Who<'_>, hold: &HoldRecord, kind: RwEvent) {
    let n = ring.head.load(Ordering::Relaxed);
    write_slot(ring, n, who, hold, flags(hold, kind));
    ring.head.store(n + 1, Ordering::Release);
}

/// Append an event to a ring with many writers (a readers-writer lock's
/// readers): claim the next number, then fill its slot. Not under any lock.
/// The number is this writer's alone; a writer of the same slot
/// [`EVENT_SLOTS`] events later is told apart by its number.
#[inline]
pub(crate) fn push_shared(ring: &EventRing, who: &Who<'_>, hold: &HoldRecord, kind: RwEvent) {
    let n = ring.head.fetch_add(1, Ordering::Relaxed);
    write_slot(ring, n, who, hold, flags(hold, kind));
}

/// Number of events ever written.
pub(crate) fn head(ring: &EventRing) -> u64 {
    ring.head.load(Ordering::Acquire)
}

/// Events numbered `from..head`, as far as they are still in the ring, and
/// the number to ask from next time. Events overwritten before they could
/// be read are skipped (the gap shows in their numbers); an event still
/// being written ends the list, and is asked for again next time (see the
/// module docs).
pub(crate) fn read_from(ring: &EventRing, from: u64) -> (Vec<Event>, u64) {
    let head = head(ring);
    let start = from.max(head.saturating_sub(EVENT_SLOTS as u64));
    let mut out = Vec::new();
    let mut wall = None;
    for n in start..head {
        let slot = &ring.slots[(n % EVENT_SLOTS as u64) as usize];
        let s1 = slot.seq.load(Ordering::Acquire);
        if s1 != n + 1 {
            if (s1 > n + 1 && s1 != u64::MAX) || head - n > EVENT_SLOTS as u64 / 2 {
                // Overwritten already, or abandoned by its writer.
                continue;
            }
            // Still being written: take it up next time.
            return (out, n);
        }
        // Skip a slot that a later event began to overwrite meanwhile.
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
            acquired: wall
                .get_or_insert_with(crate::clock::WallClock::now)
                .at(acquired),
            waited: Duration::from_nanos(waited),
            held: Duration::from_nanos(held),
            previous_owner_died: flags & u64::from(FLAG_OWNER_DIED) != 0,
            read: flags & u64::from(FLAG_READ) != 0,
            died: flags & u64::from(FLAG_DIED) != 0,
        });
    }
    (out, head.max(from))
}
