//! The calling thread's stack of held buslock locks: a fixed-capacity
//! thread-local, so the lock path never allocates, and a thread that holds
//! nothing pays one thread-local read.

use std::cell::Cell;

/// How many held locks a thread's stack records. Deeper nesting still
/// locks correctly; the locks beyond it are not order-checked.
pub const HELD_MAX: usize = 16;

/// An entry: registry id (high 16 bits) and class index (low 16 bits).
pub(crate) type Key = u32;

struct Stack {
    len: Cell<usize>,
    /// Pushes beyond [`HELD_MAX`] not yet popped.
    overflow: Cell<usize>,
    /// The thread the entries belong to (a `fork()`ed child's copy of the
    /// stack belongs to its parent's thread).
    tid: Cell<u32>,
    entries: [Cell<Key>; HELD_MAX],
}

thread_local! {
    static HELD: Stack = const {
        Stack {
            len: Cell::new(0),
            overflow: Cell::new(0),
            tid: Cell::new(0),
            entries: [const { Cell::new(0) }; HELD_MAX],
        }
    };
}

/// Whether the calling thread holds no recorded lock (one thread-local
/// read).
#[inline(always)]
pub(crate) fn is_empty() -> bool {
    HELD.with(|s| s.len.get() == 0)
}

/// Whether `f` holds for every key on the calling thread's stack (in
/// place: no copy).
#[inline(always)]
pub(crate) fn all(f: impl Fn(Key) -> bool) -> bool {
    HELD.with(|s| {
        s.entries[..s.len.get().min(HELD_MAX)]
            .iter()
            .all(|e| f(e.get()))
    })
}

/// Record that the calling thread now holds `key`.
#[inline(always)]
pub(crate) fn push(key: Key) {
    HELD.with(|s| {
        let mut len = s.len.get();
        if len > 0 && s.tid.get() != crate::identity::tid() {
            // A `fork()`ed child: the entries are its parent's thread's.
            s.overflow.set(0);
            len = 0;
        }
        if len < HELD_MAX {
            if len == 0 {
                s.tid.set(crate::identity::tid());
            }
            s.entries[len].set(key);
            s.len.set(len + 1);
        } else {
            s.overflow.set(s.overflow.get() + 1);
        }
    });
}

/// Record that the calling thread released `key` (the most recent entry
/// for it: releases need not be in reverse order).
#[inline(always)]
pub(crate) fn pop(key: Key) {
    HELD.with(|s| {
        let len = s.len.get();
        if len > 0 && s.entries[len - 1].get() == key && s.overflow.get() == 0 {
            s.len.set(len - 1);
            return;
        }
        pop_slow(s, key);
    });
}

#[cold]
fn pop_slow(s: &Stack, key: Key) {
    if s.overflow.get() > 0 {
        s.overflow.set(s.overflow.get() - 1);
        return;
    }
    let len = s.len.get();
    if let Some(at) = (0..len).rev().find(|&i| s.entries[i].get() == key) {
        for i in at..len - 1 {
            s.entries[i].set(s.entries[i + 1].get());
        }
        s.len.set(len - 1);
    }
}

/// The calling thread's held keys, oldest first, in `out`; returns how
/// many. A stack inherited through `fork()` is cleared first.
pub(crate) fn snapshot(out: &mut [Key; HELD_MAX]) -> usize {
    HELD.with(|s| {
        if s.len.get() > 0 && s.tid.get() != crate::identity::tid() {
            s.len.set(0);
            s.overflow.set(0);
        }
        let len = s.len.get();
        for (o, e) in out.iter_mut().zip(&s.entries[..len]) {
            *o = e.get();
        }
        len
    })
}
