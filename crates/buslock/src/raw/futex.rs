//! Plain (non-PI) futex waits and wakes on a shared word, for the
//! readers-writer lock's drain counter.

use core::sync::atomic::AtomicU32;
use std::time::Duration;

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;

/// How a [`wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Woken by [`wake`], or the word no longer held the expected value
    /// (`EAGAIN`), or a signal came (`EINTR`): look again.
    Changed,
    /// The timeout passed.
    TimedOut,
}

/// `futex(word, FUTEX_WAIT, expected, timeout)`: sleep while `word` holds
/// `expected`, at most `timeout`. The word is shared between processes
/// (no `FUTEX_PRIVATE_FLAG`).
///
/// # References
///
/// `futex(2)` (`FUTEX_WAIT`)
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Woken {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    // SAFETY: `word` is a live, aligned u32 (in shared memory, which is
    // what a non-private futex needs); the kernel reads `ts`, a valid
    // relative timespec, and ignores the last two arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            FUTEX_WAIT as libc::c_long,
            expected as libc::c_long,
            &ts as *const libc::timespec,
            core::ptr::null::<u32>(),
            0 as libc::c_long,
        )
    };
    if rc == 0 {
        return Woken::Changed;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => Woken::TimedOut,
        _ => Woken::Changed,
    }
}

/// `futex(word, FUTEX_WAKE, n)`: wake at most `n` threads sleeping in
/// [`wait`] on `word`.
///
/// # References
///
/// `futex(2)` (`FUTEX_WAKE`)
pub fn wake(word: &AtomicU32, n: u32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE only uses the
    // address as a key and reads nothing else.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            FUTEX_WAKE as libc::c_long,
            n.min(i32::MAX as u32) as libc::c_long,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0 as libc::c_long,
        );
    }
}
