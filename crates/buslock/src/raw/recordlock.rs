//! Asking the kernel who holds a record lock (`F_OFD_GETLK`), for showing
//! who holds a legacy companion lock.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Who holds a lock that conflicts with an exclusive lock on a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Nobody.
    None,
    /// A classic POSIX record lock (`lockf`, `fcntl(F_SETLK)`) of process
    /// `pid`.
    Process(u32),
    /// An open-file-description lock (`F_OFD_SETLK`): the kernel does not
    /// say whose.
    OpenFileDescription,
}

/// `fcntl(fd, F_OFD_GETLK, {F_WRLCK, whole file})`: the lock, if any, that
/// would block an exclusive lock on the whole file through `fd`.
///
/// # Errors
///
/// The OS error of `fcntl`.
///
/// # References
///
/// `fcntl(2)`, "Open file description locks (non-POSIX)"
pub fn ofd_getlk(fd: BorrowedFd<'_>) -> std::io::Result<Conflict> {
    let mut lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        // Must be 0 for open-file-description locks.
        l_pid: 0,
    };
    // SAFETY: `fd` is a valid open descriptor for the duration of the call
    // and `lock` is a valid, initialised `struct flock` that fcntl reads
    // and overwrites with the conflicting lock.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(if lock.l_type == libc::F_UNLCK as libc::c_short {
        Conflict::None
    } else if lock.l_pid > 0 {
        Conflict::Process(lock.l_pid as u32)
    } else {
        Conflict::OpenFileDescription
    })
}
