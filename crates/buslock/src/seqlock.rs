//! A sequence lock: a record in shared memory written by one writer at a
//! time (the holder of a lock) and read by anyone, without a lock, by
//! checking a sequence word before and after copying it.
//!
//! [`SeqCell`] is implemented by the records that work this way (the
//! owner record, each event slot, each lock-order witness slot); it gives them [`SeqCell::write`] and
//! [`SeqCell::try_read`]. The fields are atomics, each stored and loaded
//! `Relaxed`, so a torn copy is a mix of whole field values and never
//! undefined behaviour; the sequence word says whether the copy is whole.
//! A seqlock primitive (a value of any `Copy` type, shared across
//! processes) can be built on the same two methods with its value stored as
//! atomic words.
//!
//! # Memory ordering (the one place it is argued)
//!
//! The writer stores the sequence word's *busy* value (`Relaxed`), then a
//! `Release` fence, then the fields (`Relaxed`), then the word's *done*
//! value (`Release`). A reader loads the word (`Acquire`), gives up if it
//! says busy (or is not the version it wants), loads the fields
//! (`Relaxed`), then an `Acquire` fence, then the word again (`Relaxed`),
//! and keeps the copy only if both loads of the word agree.
//!
//! - A copy kept is whole: if any field load saw a store of a later write,
//!   that store comes after the later write's `Release` fence, which then
//!   synchronises with the reader's `Acquire` fence, so the busy store
//!   before it happens-before the second load of the word: that load sees
//!   busy or a later version, never the first one.
//! - A copy kept is not older than the version read: the first load
//!   (`Acquire`) saw the done store (`Release`) of the write that made that
//!   version, so every field store of that write happens-before the field
//!   loads.
//!
//! Writers are serialised by the lock the record belongs to, and the
//! word's values never repeat while a reader could look (a counter, or the
//! event number). A writer that dies mid-write leaves the word busy: the
//! next holder repairs it (the owner record) or overwrites it (an event
//! slot); readers meanwhile report the record torn or skip it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::raw::layout::{Event, OwnerRecord};
use crate::raw::registry::WitnessSlot;

/// An atomic sequence word: `AtomicU32` or `AtomicU64`.
pub(crate) trait SeqWord {
    /// Its value.
    type Value: Copy + Eq;
    /// `load`.
    fn load(&self, order: Ordering) -> Self::Value;
    /// `store`.
    fn store(&self, value: Self::Value, order: Ordering);
}

impl SeqWord for AtomicU32 {
    type Value = u32;
    #[inline]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline]
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order)
    }
}

impl SeqWord for AtomicU64 {
    type Value = u64;
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
}

/// A record guarded by a sequence word (see the module docs for the
/// protocol and why it holds).
pub(crate) trait SeqCell {
    /// The sequence word's type.
    type Word: SeqWord;

    /// The sequence word.
    fn seq_word(&self) -> &Self::Word;

    /// The sequence word now (`Relaxed`: for the writer, which holds the
    /// lock, to pick the next values).
    #[inline]
    fn version(&self) -> <Self::Word as SeqWord>::Value {
        self.seq_word().load(Ordering::Relaxed)
    }

    /// Write the record: mark it `busy`, run `stores` (`Relaxed` stores to
    /// the record's fields), then publish version `done`. The caller is the
    /// only writer (it holds the lock).
    #[inline]
    fn write(
        &self,
        busy: <Self::Word as SeqWord>::Value,
        done: <Self::Word as SeqWord>::Value,
        stores: impl FnOnce(&Self),
    ) {
        let word = self.seq_word();
        word.store(busy, Ordering::Relaxed);
        fence(Ordering::Release);
        stores(self);
        word.store(done, Ordering::Release);
    }

    /// Copy the record once, without a lock: `loads` (`Relaxed` loads of
    /// the record's fields) runs only when the version is one `wanted`
    /// accepts; `Some` with the version and the copy when the copy is
    /// whole, `None` when the record was being written (try again).
    #[inline]
    fn try_read<T>(
        &self,
        wanted: impl FnOnce(<Self::Word as SeqWord>::Value) -> bool,
        loads: impl FnOnce(&Self) -> T,
    ) -> Option<(<Self::Word as SeqWord>::Value, T)> {
        let word = self.seq_word();
        let before = word.load(Ordering::Acquire);
        if !wanted(before) {
            return None;
        }
        let copy = loads(self);
        fence(Ordering::Acquire);
        (word.load(Ordering::Relaxed) == before).then_some((before, copy))
    }
}

/// The owner record: a counter, odd while the holder writes.
impl SeqCell for OwnerRecord {
    type Word = AtomicU32;
    #[inline]
    fn seq_word(&self) -> &AtomicU32 {
        &self.seq
    }
}

/// An event slot: `u64::MAX` while written, then its event number + 1.
impl SeqCell for Event {
    type Word = AtomicU64;
    #[inline]
    fn seq_word(&self) -> &AtomicU64 {
        &self.seq
    }
}

/// A lock-order witness slot: a counter, odd while written (0: never).
impl SeqCell for WitnessSlot {
    type Word = AtomicU64;
    #[inline]
    fn seq_word(&self) -> &AtomicU64 {
        &self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record like the ones in lock files: a counter and two fields that
    /// a whole copy always finds equal.
    #[derive(Default)]
    struct Pair {
        seq: AtomicU32,
        a: AtomicU64,
        b: AtomicU64,
    }

    impl SeqCell for Pair {
        type Word = AtomicU32;
        fn seq_word(&self) -> &AtomicU32 {
            &self.seq
        }
    }

    #[test]
    fn a_copy_kept_is_never_torn() {
        let pair = Pair::default();
        std::thread::scope(|s| {
            s.spawn(|| {
                for n in 1..=200_000u64 {
                    let v = pair.version();
                    pair.write(v + 1, v + 2, |p| {
                        p.a.store(n, Ordering::Relaxed);
                        p.b.store(n, Ordering::Relaxed);
                    });
                }
            });
            let mut whole = 0;
            while whole < 10_000 {
                if let Some((v, (a, b))) = pair.try_read(
                    |v| v % 2 == 0,
                    |p| (p.a.load(Ordering::Relaxed), p.b.load(Ordering::Relaxed)),
                ) {
                    assert_eq!(a, b, "torn copy kept at version {v}");
                    whole += 1;
                }
            }
        });
    }

    #[test]
    fn a_busy_record_is_not_read() {
        let pair = Pair::default();
        pair.seq.store(1, Ordering::Relaxed);
        assert!(pair.try_read(|v| v % 2 == 0, |_| ()).is_none());
        pair.seq.store(2, Ordering::Relaxed);
        assert_eq!(pair.try_read(|v| v % 2 == 0, |_| 7), Some((2, 7)));
    }
}
