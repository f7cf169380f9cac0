//! The calling thread's robust futex list, kept exactly as glibc keeps it.
//!
//! When a thread exits (or its process dies in any way), the kernel walks
//! the thread's *robust list* (`set_robust_list(2)`) and, for every futex
//! word on it whose owner TID is the dying thread, sets
//! `FUTEX_OWNER_DIED` (and hands a PI futex to its first waiter). glibc
//! registers one list per thread at thread start (its head lives in
//! glibc's thread descriptor, `struct pthread`, `robust_head`) and links
//! every robust pthread mutex the thread holds into it. buslock's own
//! lock word (see [`super::mutex`]) is linked into the *same* list, with
//! glibc's own steps, so that:
//!
//! - the kernel marks a buslock lock whose holder thread died, exactly as
//!   it would mark a glibc robust mutex;
//! - glibc's own robust mutexes locked by the same thread (before, after or
//!   between buslock locks) keep working: the list stays a valid glibc list
//!   at every instant the thread could be interrupted by its death.
//!
//! # The list (glibc 2.36, `nptl/descr.h`, `nptl/pthread_mutex_lock.c`)
//!
//! `struct robust_list_head { void *list; long futex_offset; void
//! *list_op_pending; }`. Each entry is a pointer to a *node* inside a lock;
//! the kernel finds the futex word at `entry + futex_offset`. glibc sets
//! `futex_offset` to `offsetof(pthread_mutex_t, __lock) -
//! offsetof(pthread_mutex_t, __list.__next)`: -32 on 64-bit targets, -20 on
//! 32-bit ones ([`FUTEX_OFFSET`]). buslock's lock block puts its node at
//! the same distance from its word (see `layout.rs`), so the one
//! `futex_offset` of the thread is right for both kinds of entry.
//! Bit 0 of an entry pointer marks a PI futex (`ENQUEUE_MUTEX_PI`).
//!
//! On 64-bit targets (`__PTHREAD_MUTEX_HAVE_PREV`) the list is doubly
//! linked: a node is `{ prev, next }`, every pointer points at the *next*
//! field of a node, and the head itself acts as a node whose `prev` field is
//! the word just before it in `struct pthread` (`robust_prev`). New entries
//! go at the front (`ENQUEUE_MUTEX_BOTH`); removal unlinks in place
//! (`DEQUEUE_MUTEX`). On 32-bit targets the list is singly linked and
//! removal walks from the head.
//!
//! # `list_op_pending`
//!
//! A thread can die between taking the lock word and linking it into the
//! list, or between unlinking it and releasing the word. glibc closes both
//! windows with `list_op_pending`: it points at the node (with the PI bit)
//! *before* the acquiring compare-and-swap or system call, stays set until
//! the node is linked, and is set again around the unlink and the release.
//! The kernel examines the pending entry too (`exit_robust_list`), and marks
//! its word only if the word's TID is the dying thread, so a pending entry
//! for a lock the thread did not get (or already released) is harmless.
//!
//! # When there is no list
//!
//! `get_robust_list(2)` fails under qemu-user (`ENOSYS`) and in seccomp
//! sandboxes that forbid it; glibc may also be absent (musl) or lay out its
//! mutexes differently (a `futex_offset` other than [`FUTEX_OFFSET`]). Then
//! [`available`] is false, the list is never touched, and locking still
//! works; a holder's death is then found by the next locker through
//! `ESRCH` (its TID no longer exists, see [`super::mutex`]) rather than
//! marked by the kernel.

use core::cell::Cell;
use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering, compiler_fence};

/// `futex_offset` glibc registers on this target: from a node's `next`
/// field to its futex word.
#[cfg(target_pointer_width = "64")]
pub const FUTEX_OFFSET: isize = -32;
/// `futex_offset` glibc registers on this target: from a node's `next`
/// field to its futex word.
#[cfg(target_pointer_width = "32")]
pub const FUTEX_OFFSET: isize = -20;

/// The kernel's `struct robust_list_head`, as glibc embeds it in
/// `struct pthread`.
#[repr(C)]
struct Head {
    /// First entry (a node's `next` field, bit 0: PI), or the head itself
    /// when the list is empty.
    list: AtomicUsize,
    /// From an entry to its futex word.
    futex_offset: AtomicIsize,
    /// The entry being locked or unlocked, or 0.
    list_op_pending: AtomicUsize,
}

/// Per-thread cache: the head's address; [`UNKNOWN`] before the first look,
/// [`NONE`] when the thread has no usable list.
const UNKNOWN: usize = 0;
const NONE: usize = 1;

thread_local! {
    static HEAD: Cell<usize> = const { Cell::new(UNKNOWN) };
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's id (`gettid`), cached per thread.
#[inline]
pub fn tid() -> u32 {
    TID.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        let v = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        t.set(v);
        v
    })
}

/// Forget the cached thread id: called in the single thread of a new child
/// process, whose tid differs. The robust list head keeps its address in
/// the child (glibc's `fork` re-registers the same head, emptied).
pub fn forget_tid() {
    TID.with(|t| t.set(0));
}

/// `get_robust_list(0, &head, &len)`: the calling thread's registered list
/// head, if it is glibc's layout for this target.
///
/// # References
///
/// `get_robust_list(2)`; glibc `nptl/pthread_create.c` (`futex_offset`).
#[cold]
fn look_up() -> usize {
    let mut head: *mut Head = core::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: pid 0 means the calling thread; the kernel writes one pointer
    // and one size_t into the two valid out-parameters.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0 as libc::c_long,
            &mut head as *mut *mut Head,
            &mut len as *mut libc::size_t,
        )
    };
    if rc != 0 || head.is_null() || len != core::mem::size_of::<Head>() {
        return NONE;
    }
    // SAFETY: the kernel returned the head this thread registered; glibc
    // keeps it in the thread descriptor, alive as long as the thread, and
    // only this thread (and the kernel when it exits) touches it.
    let offset = unsafe { (*head).futex_offset.load(Ordering::Relaxed) };
    if offset != FUTEX_OFFSET || (head as usize) & 7 != 0 {
        return NONE;
    }
    head as usize
}

/// The calling thread's list head, or `None` (see the module docs).
#[inline]
fn head() -> Option<&'static Head> {
    let mut addr = HEAD.with(Cell::get);
    if addr == UNKNOWN {
        addr = look_up();
        HEAD.with(|h| h.set(addr));
    }
    if addr == NONE {
        return None;
    }
    // SAFETY: `addr` is this thread's registered head (see `look_up`); the
    // reference does not leave this thread (`thread_local` cache, and the
    // callers use it at once).
    Some(unsafe { &*(addr as *const Head) })
}

/// Whether this thread has a robust list that buslock links its locks
/// into: false under qemu-user and other emulators or sandboxes without
/// `get_robust_list`. Without it locks still work, but a dead holder is
/// noticed by the next locker (`ESRCH`) instead of being marked by the
/// kernel, and a dead thread's TID reused at once would look alive.
///
/// For tests that need kernel death marking, to skip themselves.
#[doc(hidden)]
pub fn available() -> bool {
    head().is_some()
}

/// Whether the calling thread's robust list is known to be empty: it
/// holds no buslock lock and no glibc robust mutex (so it cannot be part of
/// a priority-inheritance deadlock cycle). `false` when there is no list.
pub fn holds_nothing() -> bool {
    match head() {
        Some(h) => h.list.load(Ordering::Relaxed) & !PI == &h.list as *const AtomicUsize as usize,
        None => false,
    }
}

/// The list node inside a lock block: its address is what the thread's
/// list links (64-bit: `{prev, next}`, linked by the `next` field; 32-bit:
/// `{next}`).
#[repr(C)]
pub struct Node {
    /// Previous node's `next` field (or the head).
    #[cfg(target_pointer_width = "64")]
    pub prev: AtomicUsize,
    /// Next entry (bit 0: PI), or the head.
    pub next: AtomicUsize,
}

impl Node {
    /// The entry value for this node: the address of its `next` field.
    #[inline]
    fn entry(&self) -> usize {
        &self.next as *const AtomicUsize as usize
    }
}

/// A robust-list operation on one lock, bracketed by `list_op_pending`.
/// `None` when the thread has no list: every step is then a no-op.
pub(super) struct Op {
    head: Option<&'static Head>,
}

/// `ENQUEUE_MUTEX_PI` marks entries of PI futexes with bit 0.
const PI: usize = 1;

impl Op {
    /// Point `list_op_pending` at `node` (PI bit set) before the acquiring
    /// compare-and-swap or system call, or before unlinking.
    #[inline]
    pub(super) fn begin(node: &Node) -> Op {
        let head = head();
        if let Some(h) = head {
            h.list_op_pending
                .store(node.entry() | PI, Ordering::Relaxed);
            // glibc: "We need to set op_pending before starting the
            // operation." Only this thread and the kernel (when this thread
            // exits) read it, so program order is enough: stop the compiler
            // from moving the word's atomic operation above this store.
            compiler_fence(Ordering::SeqCst);
        }
        Op { head }
    }

    /// Clear `list_op_pending` (after linking, or after releasing).
    #[inline]
    pub(super) fn end(&self) {
        if let Some(h) = self.head {
            compiler_fence(Ordering::SeqCst);
            h.list_op_pending.store(0, Ordering::Relaxed);
        }
    }

    /// Link `node` at the front of the list, once the lock is ours
    /// (glibc's `ENQUEUE_MUTEX_BOTH(mutex, 1)`).
    #[inline]
    pub(super) fn enqueue(&self, node: &Node) {
        let Some(h) = self.head else { return };
        // "We must not enqueue the mutex before we have acquired it."
        compiler_fence(Ordering::SeqCst);
        let first = h.list.load(Ordering::Relaxed);
        #[cfg(target_pointer_width = "64")]
        {
            let head_entry = &h.list as *const AtomicUsize as usize;
            // SAFETY: `first` (PI bit cleared) is the `next` field of the
            // first node on this thread's list, or the head itself, whose
            // `prev` word (`robust_prev`) glibc keeps just before it. Every
            // node on the list is a glibc mutex or a buslock lock block
            // this thread holds, mapped until it is unlinked.
            unsafe { prev_of(first & !PI) }.store(node.entry(), Ordering::Relaxed);
            node.prev.store(head_entry, Ordering::Relaxed);
        }
        node.next.store(first, Ordering::Relaxed);
        // "Ensure that the new list entry is ready before we insert it."
        compiler_fence(Ordering::SeqCst);
        h.list.store(node.entry() | PI, Ordering::Relaxed);
    }

    /// Unlink `node`, before releasing the lock (glibc's `DEQUEUE_MUTEX`).
    #[inline]
    pub(super) fn dequeue(&self, node: &Node) {
        let Some(h) = self.head else { return };
        compiler_fence(Ordering::SeqCst);
        #[cfg(target_pointer_width = "64")]
        {
            let _ = h;
            let next = node.next.load(Ordering::Relaxed);
            let prev = node.prev.load(Ordering::Relaxed);
            if next == 0 || prev == 0 {
                return; // never linked (the list was unavailable then)
            }
            // SAFETY: `node` is on this thread's list (linked by `enqueue`
            // when the lock was taken; glibc only relinks its neighbours),
            // so `next` and `prev` name live nodes of this list or the head.
            unsafe {
                prev_of(next & !PI).store(prev, Ordering::Relaxed);
                next_of(prev & !PI).store(next, Ordering::Relaxed);
            }
        }
        #[cfg(target_pointer_width = "32")]
        {
            let me = node.entry();
            let first = h.list.load(Ordering::Relaxed);
            if first & !PI == me {
                h.list
                    .store(node.next.load(Ordering::Relaxed), Ordering::Relaxed);
            } else {
                let mut run = first & !PI;
                let head_entry = &h.list as *const AtomicUsize as usize;
                // The kernel walks at most 2048 entries; so do we.
                for _ in 0..2048 {
                    if run == head_entry || run == 0 {
                        return; // not on the list
                    }
                    // SAFETY: `run` is an entry of this thread's list.
                    let next_field = unsafe { next_of(run) };
                    let next = next_field.load(Ordering::Relaxed);
                    if next & !PI == me {
                        next_field.store(node.next.load(Ordering::Relaxed), Ordering::Relaxed);
                        break;
                    }
                    run = next & !PI;
                }
            }
        }
        // "Ensure that we remove the entry from the list before we change
        // the __next pointer of the entry, which is read by the kernel."
        compiler_fence(Ordering::SeqCst);
        #[cfg(target_pointer_width = "64")]
        node.prev.store(0, Ordering::Relaxed);
        node.next.store(0, Ordering::Relaxed);
    }
}

/// The `prev` field of the node whose `next` field is at `entry`.
///
/// # Safety
///
/// `entry` is the `next` field of a live node of this thread's list, or
/// the list head (whose `prev` is glibc's `robust_prev`, just before it).
#[cfg(target_pointer_width = "64")]
#[inline]
unsafe fn prev_of(entry: usize) -> &'static AtomicUsize {
    // SAFETY: per the contract, one pointer-sized, aligned, live word
    // precedes `entry`; only this thread touches list words.
    unsafe { &*((entry - core::mem::size_of::<usize>()) as *const AtomicUsize) }
}

/// The `next` field at `entry`.
///
/// # Safety
///
/// `entry` is the `next` field of a live node of this thread's list, or
/// the list head.
#[inline]
unsafe fn next_of(entry: usize) -> &'static AtomicUsize {
    // SAFETY: per the contract, a pointer-sized, aligned, live word.
    unsafe { &*(entry as *const AtomicUsize) }
}
