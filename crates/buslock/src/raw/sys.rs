//! Process-level calls that need `unsafe`: fork hooks and the cycle counter.

use std::sync::Once;

/// `pthread_atfork(NULL, NULL, child)`, registered once per process.
///
/// `child` runs in the only thread of a new child process, before `fork`
/// returns there; the library uses it to forget cached thread and process
/// ids, which differ in the child.
///
/// # References
///
/// `pthread_atfork(3p)`
pub fn on_fork_child(child: extern "C" fn()) {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `child` is a plain `extern "C" fn()` that lives forever;
        // pthread_atfork only stores it. Registration cannot fail except for
        // ENOMEM, in which case caches are merely not reset (the guard's
        // drop then still compares thread ids with gettid on the slow path).
        unsafe {
            libc::pthread_atfork(None, None, Some(child));
        }
    });
}

/// `rdtsc`: the time-stamp counter, if this CPU has a usable one.
///
/// The caller decides whether the counter is trustworthy (invariant and
/// synchronised: the kernel's clocksource is `tsc`).
///
/// # References
///
/// Intel SDM, "RDTSC".
#[inline]
pub fn cycle_counter() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no memory
        // effects.
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The outcome of [`ofd_lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordLock {
    /// The exclusive lock is now held through this open file description.
    Taken,
    /// Someone else holds a conflicting lock (non-blocking call only).
    Busy,
}

fn whole_file(l_type: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        // Must be 0 for open-file-description locks.
        l_pid: 0,
    }
}

/// `fcntl(fd, F_OFD_SETLK or F_OFD_SETLKW, {F_WRLCK, whole file})`: take an
/// exclusive open-file-description record lock on the whole file. Such
/// locks conflict with the classic POSIX locks of `lockf(3)` and
/// `fcntl(F_SETLK)` in other programs, and belong to the open file
/// description rather than the process, so closing another descriptor of
/// the same file does not drop them. A blocking call returns `EINTR` when a
/// signal arrives.
///
/// # References
///
/// `fcntl(2)`, "Open file description locks (non-POSIX)"
pub fn ofd_lock(fd: std::os::fd::BorrowedFd<'_>, wait: bool) -> std::io::Result<RecordLock> {
    use std::os::fd::AsRawFd;
    let lock = whole_file(libc::F_WRLCK);
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    // SAFETY: `fd` is a valid open descriptor for the duration of the call
    // and `lock` is a valid, initialised `struct flock` that fcntl reads.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &lock) };
    if rc == 0 {
        return Ok(RecordLock::Taken);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => Ok(RecordLock::Busy),
        _ => Err(err),
    }
}

/// `fcntl(fd, F_OFD_SETLK, {F_UNLCK, whole file})`: drop the lock taken by
/// [`ofd_lock`].
///
/// # References
///
/// `fcntl(2)`
pub fn ofd_unlock(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let lock = whole_file(libc::F_UNLCK);
    // SAFETY: as in `ofd_lock`.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
