//! buslock's own robust priority-inheritance futex lock word.
//!
//! # The word
//!
//! A 32-bit word in the shared mapping, in the kernel's PI futex format
//! (`futex(2)`): the owner's TID in bits 0..30 (0: free),
//! `FUTEX_OWNER_DIED` (bit 30) set by the kernel when the owner thread
//! died holding it, `FUTEX_WAITERS` (bit 31) set by the kernel while
//! threads wait in it. Beside it, a robust-list node (see [`super::robust`])
//! at the distance glibc's `futex_offset` expects.
//!
//! # The protocol (after glibc 2.36's robust PI mutex)
//!
//! Lock ([`RawMutex::lock_until`], `pthread_mutex_lock.c`):
//!
//! 1. `list_op_pending` := node | 1, so that a death from here on is
//!    examined by the kernel for this word.
//! 2. The word's TID is ours: [`RawError::WouldDeadlock`] (recursion),
//!    before any change.
//! 3. Compare-and-swap 0 → TID in user space (acquire). Done if it worked:
//!    no system call.
//! 4. Otherwise `FUTEX_LOCK_PI2` (monotonic deadline; `FUTEX_LOCK_PI` with
//!    the same deadline on `CLOCK_REALTIME` on kernels before 5.14). The
//!    kernel queues us by priority (FIFO among equals), lends the owner our
//!    priority, and on release hands the word *to us* (it writes our TID):
//!    when the call returns 0 we own it; we never retry the user-space
//!    compare-and-swap after a wake-up, so nobody barges past the queue.
//!    - `EDEADLK`: the kernel's PI chain walk found a cycle (we wait, via
//!      other locks' owners, for ourselves): [`RawError::Deadlock`];
//!      nothing was changed.
//!    - `ESRCH`: the word names a thread that does not exist (a lock file
//!      copied or saved while held, or a word whose owner died without a
//!      robust list). No kernel waiter can be queued on such a word (the
//!      kernel would have found the owner), so we take it over with a
//!      compare-and-swap from the value seen to our TID (keeping
//!      `FUTEX_WAITERS`), and report [`Acquire::OwnerDied`]. A concurrent
//!      taker loses the compare-and-swap and calls the kernel again, which
//!      now queues it behind us.
//!    - `EAGAIN`/`EINTR`: the owner is exiting or a signal came: call again.
//!    - `EINVAL`: the kernel's PI state has lost its owner (it died without
//!      a robust list marking the word) and the waiter the kernel woke has
//!      not yet written its TID: call again 1 ms later, for as long as the
//!      word names a thread that is gone (within the deadline), else up to
//!      two seconds (then the error: the word was not written by this
//!      protocol).
//!    - `ETIMEDOUT`: [`Acquire::Busy`].
//! 5. If the word has `FUTEX_OWNER_DIED`, clear that bit only (atomic AND,
//!    keeping `FUTEX_WAITERS` so that the release still goes through the
//!    kernel to hand off to waiters) and report [`Acquire::OwnerDied`]: the
//!    new owner has made the word consistent.
//! 6. Link the node into the thread's robust list, then clear
//!    `list_op_pending`.
//!
//! Unlock ([`RawMutex::unlock`], `pthread_mutex_unlock.c`):
//!
//! 1. The word's TID must be ours, else [`RawError::NotOwner`].
//! 2. `list_op_pending` := node | 1; unlink the node.
//! 3. Compare-and-swap TID → 0 (release) if the word is exactly our TID
//!    (no waiters); otherwise `FUTEX_UNLOCK_PI`, which hands the word to
//!    the first waiter.
//! 4. Clear `list_op_pending`.
//!
//! A death at any instant leaves the kernel what it needs: before step 3 of
//! a lock the word is not ours and the pending entry is ignored; after it
//! the word is ours and the pending entry (or the list) names it, so the
//! kernel sets `FUTEX_OWNER_DIED` and hands it to the first waiter. The
//! same holds for unlock in reverse.
//!
//! Ownership is tested on the word itself, so a thread can hold any number
//! of these locks, and glibc robust mutexes, in any order.

use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use rustix::time::Timespec;

use super::robust::{self, Node, Op};

/// `FUTEX_WAITERS`: threads wait in the kernel.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// `FUTEX_OWNER_DIED`: the owner died holding the lock.
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// `FUTEX_TID_MASK`: the owner's TID.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_LOCK_PI2: i32 = 13;

/// What an attempt to take the lock returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is now held by the calling thread.
    Taken,
    /// The lock is now held by the calling thread, but its previous owner
    /// died while holding it (the kernel marked `FUTEX_OWNER_DIED`, or the
    /// word named a thread that no longer exists). The word is already
    /// consistent again; the caller repairs what the lock protects.
    OwnerDied,
    /// Someone else holds it (a try) or the deadline passed.
    Busy,
}

/// Why the lock word refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawError {
    /// The calling thread's TID is already in the word: recursion.
    WouldDeadlock,
    /// `EDEADLK` from the kernel's PI chain walk: waiting would close a
    /// cycle of threads each waiting for a lock the next one holds.
    Deadlock,
    /// The calling thread does not hold the lock.
    NotOwner,
    /// Any other error code.
    Other(i32),
}

impl RawError {
    /// The errno value behind this error.
    pub fn code(self) -> i32 {
        match self {
            RawError::WouldDeadlock | RawError::Deadlock => libc::EDEADLK,
            RawError::NotOwner => libc::EPERM,
            RawError::Other(code) => code,
        }
    }
}

/// The lock word and its robust-list node, laid out so that the node's
/// `next` field plus glibc's `futex_offset` is the word (see
/// [`robust::FUTEX_OFFSET`] and the pinned offsets in `layout.rs`).
///
/// It lives in a `MAP_SHARED` mapping and must never be moved or copied
/// while held: the holder's robust list links it by address.
#[repr(C)]
pub struct RawMutex {
    word: AtomicU32,
    #[cfg(target_pointer_width = "64")]
    _gap: [AtomicU32; 5],
    #[cfg(target_pointer_width = "32")]
    _gap: [AtomicU32; 4],
    node: Node,
}

/// Offset of the node's `next` field from the word (the kernel adds
/// glibc's `futex_offset` to it to find the word).
pub const NODE_NEXT_OFFSET: usize =
    core::mem::offset_of!(RawMutex, node) + core::mem::offset_of!(Node, next);

const _: () = assert!(NODE_NEXT_OFFSET as isize + robust::FUTEX_OFFSET == 0);

/// How many times a blocking lock calls the kernel again after `EINVAL`
/// (1 ms apart) while the word names a live thread, before it reports the
/// error: the kernel's PI state and the word disagree only until the waiter
/// it woke runs (see `RawMutex::lock_until`); a word naming a live thread
/// that stays inconsistent for seconds was written by something other than
/// this protocol.
const SETTLE_TRIES: u32 = 2000;

/// Whether the `CLOCK_MONOTONIC` instant `deadline` has passed.
fn passed(deadline: Timespec) -> bool {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (now.tv_sec, now.tv_nsec) >= (deadline.tv_sec, deadline.tv_nsec)
}

/// Kernels before 5.14 lack `FUTEX_LOCK_PI2`: remembered after the first
/// `ENOSYS`.
static NO_LOCK_PI2: AtomicU8 = AtomicU8::new(0);

/// `futex(uaddr, op, 0, timeout, NULL, 0)` on a shared (not private) word:
/// 0 or the errno.
///
/// # References
///
/// `futex(2)`
fn futex(word: &AtomicU32, op: i32, timeout: Option<&libc::timespec>) -> i32 {
    let ts = timeout.map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 in shared memory; the PI ops
    // read `timeout` (a valid timespec or NULL) and ignore the rest.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op as libc::c_long,
            0 as libc::c_long,
            ts,
            core::ptr::null::<u32>(),
            0 as libc::c_long,
        )
    };
    if rc == 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    }
}

fn to_libc(ts: Timespec) -> libc::timespec {
    libc::timespec {
        tv_sec: ts.tv_sec as libc::time_t,
        tv_nsec: ts.tv_nsec as _,
    }
}

/// A monotonic deadline as the same instant on `CLOCK_REALTIME`.
fn realtime_deadline(deadline: Timespec) -> libc::timespec {
    let now_mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let now_real = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let left_ns = (i128::from(deadline.tv_sec) - i128::from(now_mono.tv_sec)) * 1_000_000_000
        + (i128::from(deadline.tv_nsec) - i128::from(now_mono.tv_nsec));
    let real_ns =
        i128::from(now_real.tv_sec) * 1_000_000_000 + i128::from(now_real.tv_nsec) + left_ns.max(0);
    libc::timespec {
        tv_sec: (real_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (real_ns % 1_000_000_000) as _,
    }
}

impl RawMutex {
    /// Make this a free lock. The caller holds the lock file's creation
    /// `flock` and has seen an init state other than `READY`, so no thread
    /// uses it.
    pub(super) fn init(&self) {
        self.word.store(0, Ordering::Relaxed);
        self.node.next.store(0, Ordering::Relaxed);
        #[cfg(target_pointer_width = "64")]
        self.node.prev.store(0, Ordering::Relaxed);
    }

    /// The word as it is now (for inspection: owner TID and flag bits).
    #[inline]
    pub fn word(&self) -> u32 {
        self.word.load(Ordering::Relaxed)
    }

    /// The word as it is now, loaded with sequentially consistent ordering
    /// (for a handshake with a thread that takes the word and then looks
    /// at other memory, as the readers-writer lock's readers do).
    #[inline]
    pub fn word_seq_cst(&self) -> u32 {
        self.word.load(Ordering::SeqCst)
    }

    /// Take the lock if nobody holds it; never blocks, no system call
    /// unless the last owner died (then `FUTEX_TRYLOCK_PI`).
    ///
    /// # References
    ///
    /// glibc `nptl/pthread_mutex_trylock.c` (PI robust case)
    #[inline]
    pub fn try_lock(&self) -> Result<Acquire, RawError> {
        let tid = robust::tid();
        let op = Op::begin(&self.node);
        match self
            .word
            .compare_exchange(0, tid, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                op.enqueue(&self.node);
                op.end();
                Ok(Acquire::Taken)
            }
            Err(seen) => self.try_lock_contended(op, tid, seen),
        }
    }

    #[cold]
    fn try_lock_contended(&self, op: Op, tid: u32, seen: u32) -> Result<Acquire, RawError> {
        if seen & FUTEX_TID_MASK == tid {
            op.end();
            return Err(RawError::WouldDeadlock);
        }
        if seen & FUTEX_TID_MASK != 0 || seen & FUTEX_OWNER_DIED == 0 {
            op.end();
            return Ok(Acquire::Busy);
        }
        // Free, but marked: the kernel takes it for us, keeping the mark.
        self.kernel_try(op, tid)
    }

    /// `FUTEX_TRYLOCK_PI`: take the lock in the kernel if it can be taken
    /// without waiting; also takes over a word naming a thread that does not
    /// exist (`ESRCH`). Slower than [`RawMutex::try_lock`] (one system call
    /// when the lock is busy); for non-blocking attempts that must not mistake
    /// a stale owner for a live one.
    ///
    /// # References
    ///
    /// `futex(2)` (`FUTEX_TRYLOCK_PI`)
    pub fn try_lock_kernel(&self) -> Result<Acquire, RawError> {
        let tid = robust::tid();
        let op = Op::begin(&self.node);
        match self
            .word
            .compare_exchange(0, tid, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                op.enqueue(&self.node);
                op.end();
                Ok(Acquire::Taken)
            }
            Err(seen) if seen & FUTEX_TID_MASK == tid => {
                op.end();
                Err(RawError::WouldDeadlock)
            }
            Err(_) => self.kernel_try(op, tid),
        }
    }

    fn kernel_try(&self, op: Op, tid: u32) -> Result<Acquire, RawError> {
        loop {
            match futex(&self.word, FUTEX_TRYLOCK_PI, None) {
                0 => return Ok(self.acquired(op)),
                libc::ESRCH => {
                    if let Some(got) = self.take_over_vanished(&op, tid) {
                        return Ok(got);
                    }
                }
                // The owner is exiting (the kernel has not finished
                // marking it): busy, as glibc's trylock says.
                // EINVAL: the kernel's PI state lost its owner and the
                // waiter it woke has not yet taken the word (see
                // `lock_inner`); that waiter gets it, so busy.
                libc::EAGAIN | libc::EBUSY | libc::EINTR | libc::EINVAL => {
                    op.end();
                    return Ok(Acquire::Busy);
                }
                libc::EDEADLK => {
                    op.end();
                    return Err(RawError::WouldDeadlock);
                }
                e => {
                    op.end();
                    return Err(RawError::Other(e));
                }
            }
        }
    }

    /// Block until the lock is held. Waiters queue in the kernel's PI
    /// futex (priority order, FIFO among equals); the wait is not
    /// interrupted by signals.
    ///
    /// # Errors
    ///
    /// [`RawError::WouldDeadlock`] when the calling thread holds it,
    /// [`RawError::Deadlock`] when waiting would close a cycle.
    ///
    /// # References
    ///
    /// `futex(2)` (`FUTEX_LOCK_PI`); glibc `nptl/pthread_mutex_lock.c`
    pub fn lock(&self) -> Result<Acquire, RawError> {
        self.lock_inner(None)
    }

    /// Block until the lock is held or the `CLOCK_MONOTONIC` `deadline`
    /// passes ([`Acquire::Busy`]).
    ///
    /// # Errors
    ///
    /// As [`RawMutex::lock`].
    ///
    /// # References
    ///
    /// `futex(2)` (`FUTEX_LOCK_PI2`, `FUTEX_LOCK_PI`); glibc
    /// `nptl/pthread_mutex_timedlock.c`
    pub fn lock_until(&self, deadline: Timespec) -> Result<Acquire, RawError> {
        self.lock_inner(Some(deadline))
    }

    fn lock_inner(&self, deadline: Option<Timespec>) -> Result<Acquire, RawError> {
        let tid = robust::tid();
        let op = Op::begin(&self.node);
        let seen = match self
            .word
            .compare_exchange(0, tid, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                op.enqueue(&self.node);
                op.end();
                return Ok(Acquire::Taken);
            }
            Err(seen) => seen,
        };
        if seen & FUTEX_TID_MASK == tid {
            op.end();
            return Err(RawError::WouldDeadlock);
        }
        let mono = deadline.map(to_libc);
        let mut settling = 0;
        loop {
            let rc = if NO_LOCK_PI2.load(Ordering::Relaxed) == 0 {
                match futex(&self.word, FUTEX_LOCK_PI2, mono.as_ref()) {
                    libc::ENOSYS => {
                        NO_LOCK_PI2.store(1, Ordering::Relaxed);
                        continue;
                    }
                    // Some kernels reject the op as invalid: try the old one
                    // for this call (a real EINVAL comes back from it too).
                    libc::EINVAL => self.lock_pi(deadline),
                    rc => rc,
                }
            } else {
                self.lock_pi(deadline)
            };
            match rc {
                0 => return Ok(self.acquired(op)),
                libc::ETIMEDOUT => {
                    op.end();
                    return Ok(Acquire::Busy);
                }
                libc::EDEADLK => {
                    op.end();
                    // Our own TID in the word was ruled out above, and only
                    // this thread can put it there: a cycle.
                    return Err(RawError::Deadlock);
                }
                libc::ESRCH => {
                    if let Some(got) = self.take_over_vanished(&op, tid) {
                        return Ok(got);
                    }
                }
                libc::EAGAIN | libc::EINTR => {}
                libc::EINVAL if settling < SETTLE_TRIES || self.owner_vanished() => {
                    // The kernel's PI state has no owner while the word
                    // names one: the owner died without its robust list
                    // marking the word (no robust list, as under an
                    // emulator), and the waiter the kernel woke has not yet
                    // written itself into the word. Let it run, for as
                    // long as it takes while the word names a thread that
                    // is gone (a starved waiter can take seconds).
                    settling += 1;
                    if deadline.is_some_and(passed) {
                        op.end();
                        return Ok(Acquire::Busy);
                    }
                    std::thread::sleep(core::time::Duration::from_millis(1));
                }
                e => {
                    op.end();
                    return Err(RawError::Other(e));
                }
            }
        }
    }

    /// Whether the word names a thread that no longer exists (`kill(tid,
    /// 0)` finds any thread by its id, not only a process).
    #[cold]
    fn owner_vanished(&self) -> bool {
        let tid = self.word.load(Ordering::Relaxed) & FUTEX_TID_MASK;
        let Some(pid) = rustix::process::Pid::from_raw(tid as i32) else {
            return false;
        };
        rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
    }

    /// `FUTEX_LOCK_PI` with the deadline on `CLOCK_REALTIME`.
    fn lock_pi(&self, deadline: Option<Timespec>) -> i32 {
        let real = deadline.map(realtime_deadline);
        futex(&self.word, FUTEX_LOCK_PI, real.as_ref())
    }

    /// After the kernel gave us the word: clear `FUTEX_OWNER_DIED` (keeping
    /// `FUTEX_WAITERS`), link the node, end the operation.
    fn acquired(&self, op: Op) -> Acquire {
        let word = self.word.load(Ordering::Acquire);
        let got = if word & FUTEX_OWNER_DIED != 0 {
            self.word.fetch_and(!FUTEX_OWNER_DIED, Ordering::AcqRel);
            Acquire::OwnerDied
        } else {
            Acquire::Taken
        };
        op.enqueue(&self.node);
        op.end();
        got
    }

    /// The kernel said `ESRCH`: the word names a thread that does not exist.
    /// Take it over from the value seen, keeping `FUTEX_WAITERS`. `None`
    /// when the word changed meanwhile (call the kernel again).
    fn take_over_vanished(&self, op: &Op, tid: u32) -> Option<Acquire> {
        let seen = self.word.load(Ordering::Relaxed);
        if seen & FUTEX_TID_MASK == 0 || seen & FUTEX_TID_MASK == tid {
            return None;
        }
        let new = tid | (seen & FUTEX_WAITERS);
        self.word
            .compare_exchange(seen, new, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        op.enqueue(&self.node);
        op.end();
        Some(Acquire::OwnerDied)
    }

    /// Take over the word from `seen`, a value naming a live thread that
    /// the caller has established is not the lock's owner (see
    /// `Mutex`'s stale-owner rules). Keeps `FUTEX_WAITERS`; `None` when
    /// the word no longer holds `seen`.
    ///
    /// Waiters that the kernel queued behind the wrong owner stay queued:
    /// the kernel's PI state still names that thread, so our release goes
    /// through `FUTEX_UNLOCK_PI`, which hands the word on to them.
    #[cold]
    pub fn take_over_stale(&self, seen: u32) -> Option<Acquire> {
        let tid = robust::tid();
        if seen & FUTEX_TID_MASK == 0 {
            return None;
        }
        let op = Op::begin(&self.node);
        let new = tid | (seen & FUTEX_WAITERS);
        if self
            .word
            .compare_exchange(seen, new, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            op.end();
            return None;
        }
        op.enqueue(&self.node);
        op.end();
        Some(Acquire::OwnerDied)
    }

    /// Release the lock, handing it to the first waiter (one
    /// `FUTEX_UNLOCK_PI` when someone waits).
    ///
    /// # Errors
    ///
    /// [`RawError::NotOwner`] when the calling thread does not hold it.
    ///
    /// # References
    ///
    /// `futex(2)` (`FUTEX_UNLOCK_PI`); glibc `nptl/pthread_mutex_unlock.c`
    #[inline]
    pub fn unlock(&self) -> Result<(), RawError> {
        let tid = robust::tid();
        let mut word = self.word.load(Ordering::Relaxed);
        if word & FUTEX_TID_MASK != tid {
            return Err(RawError::NotOwner);
        }
        let op = Op::begin(&self.node);
        op.dequeue(&self.node);
        let mut result = Ok(());
        loop {
            if word != tid {
                // Waiters (or a flag): the kernel hands the word on.
                let rc = futex(&self.word, FUTEX_UNLOCK_PI, None);
                if rc != 0 {
                    result = Err(RawError::Other(rc));
                }
                break;
            }
            match self
                .word
                .compare_exchange_weak(word, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        op.end();
        result
    }
}
