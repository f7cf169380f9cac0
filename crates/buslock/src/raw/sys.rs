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

/// The CPU's free-running counter, if this architecture has one that user
/// space may read: `rdtsc` on x86_64, `CNTVCT_EL0` on aarch64.
///
/// The caller decides whether the counter is trustworthy (the kernel's
/// clocksource is built on it: `tsc`, `arch_sys_counter`) and measures its
/// rate against `CLOCK_MONOTONIC`.
///
/// # References
///
/// Intel SDM, "RDTSC"; Arm ARM, "CNTVCT_EL0".
#[inline]
pub fn cycle_counter() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no memory
        // effects.
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ticks: u64;
        // SAFETY: reading CNTVCT_EL0 has no side effects; Linux enables it
        // for user space (its vDSO clock_gettime reads it too).
        unsafe {
            core::arch::asm!(
                "mrs {}, cntvct_el0",
                out(reg) ticks,
                options(nomem, nostack, preserves_flags)
            );
        }
        Some(ticks)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

/// The name of the kernel clocksource that [`cycle_counter`] reads, when
/// the kernel uses it for `CLOCK_MONOTONIC` (and so keeps it invariant and
/// synchronised across CPUs).
pub const COUNTER_CLOCKSOURCE: &str = if cfg!(target_arch = "aarch64") {
    "arch_sys_counter"
} else {
    "tsc"
};

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

/// Make a command's process die with the thread that spawns it:
/// `prctl(PR_SET_PDEATHSIG, SIGKILL)` in the child between `fork` and
/// `exec`, then a check that the parent did not die before that (in which
/// case the child gives up with `ESRCH` instead of running unsupervised).
///
/// For `buslock run`: a command started under a lock must not outlive the
/// process that holds the lock for it, even when that process is killed
/// with `SIGKILL`. The death signal fires when the *thread* that called
/// `spawn` exits, so spawn from a thread that lives as long as the command
/// should (the main thread). It is cleared in the command's own children
/// and by executing a set-user-ID program.
///
/// # References
///
/// `prctl(2)`, `PR_SET_PDEATHSIG`
pub fn kill_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child after `fork`, where only
    // async-signal-safe work is allowed: it makes two system calls through
    // rustix (no allocation, no locks) and builds an `io::Error` from a raw
    // code (no allocation). It captures only a `Pid` (Copy).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
