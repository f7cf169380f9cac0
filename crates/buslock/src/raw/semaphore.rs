//! POSIX named semaphores (`sem_open(3)`): the legacy companion of
//! programs that still use `global_lock` (a posix_ipc semaphore `/NAME`
//! with initial value 1 used as a lock).

use std::ffi::CString;
use std::io;
use std::time::Duration;

/// A named semaphore opened with `sem_open(name, O_CREAT, 0600, 1)`, as
/// `global_lock` opens it; closed (not unlinked) on drop.
#[derive(Debug)]
pub struct NamedSemaphore {
    sem: *mut libc::sem_t,
    name: String,
}

// SAFETY: the sem_* functions are thread-safe, and the mapping `sem` points
// to stays valid until `sem_close` in Drop, which needs `&mut self`.
unsafe impl Send for NamedSemaphore {}
// SAFETY: as above; every method takes `&self` and calls only thread-safe
// sem_* functions.
unsafe impl Sync for NamedSemaphore {}

/// The outcome of a wait on a [`NamedSemaphore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemWait {
    /// Decremented: this caller holds it.
    Taken,
    /// Not available (a try, or the deadline passed).
    Busy,
    /// A signal handler ran (`EINTR`).
    Interrupted,
}

impl NamedSemaphore {
    /// `sem_open(name, O_CREAT, 0600, 1)`: open the semaphore `name`
    /// (`/` followed by up to 250 characters, none of them `/`), creating
    /// it unlocked if it does not exist.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad name; the OS error of `sem_open` (e.g.
    /// `EACCES` for another user's semaphore).
    ///
    /// # References
    ///
    /// `sem_open(3)`, `sem_overview(7)`
    pub fn open(name: &str) -> io::Result<NamedSemaphore> {
        Self::open_with(name, true)
    }

    /// `sem_open(name, 0)`: open the semaphore `name` only if it exists
    /// (`ENOENT` otherwise), for looking at it without creating it.
    ///
    /// # Errors
    ///
    /// As [`NamedSemaphore::open`], and `ENOENT`.
    pub fn open_existing(name: &str) -> io::Result<NamedSemaphore> {
        Self::open_with(name, false)
    }

    fn open_with(name: &str, create: bool) -> io::Result<NamedSemaphore> {
        let valid = name.len() >= 2
            && name.len() <= 251
            && name.starts_with('/')
            && !name[1..].contains('/')
            && !name.contains('\0');
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a semaphore name is '/' followed by 1 to 250 characters other than '/' and NUL",
            ));
        }
        let c_name = CString::new(name).map_err(io::Error::other)?;
        let sem = if create {
            // SAFETY: `c_name` is a NUL-terminated string that outlives the
            // call; with O_CREAT, sem_open reads the two variadic arguments
            // mode (promoted to unsigned int) and value (unsigned int).
            unsafe {
                libc::sem_open(
                    c_name.as_ptr(),
                    libc::O_CREAT,
                    0o600 as libc::c_uint,
                    1 as libc::c_uint,
                )
            }
        } else {
            // SAFETY: as above; without O_CREAT sem_open reads no variadic
            // arguments.
            unsafe { libc::sem_open(c_name.as_ptr(), 0) }
        };
        if sem == libc::SEM_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(NamedSemaphore {
            sem,
            name: name.to_owned(),
        })
    }

    /// The semaphore's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `sem_trywait`: decrement if positive, never block.
    ///
    /// # Errors
    ///
    /// The OS error other than `EAGAIN`.
    ///
    /// # References
    ///
    /// `sem_wait(3)`
    pub fn try_wait(&self) -> io::Result<SemWait> {
        // SAFETY: `self.sem` is a valid semaphore until Drop.
        let rc = unsafe { libc::sem_trywait(self.sem) };
        Self::outcome(rc)
    }

    /// `sem_timedwait` until `CLOCK_REALTIME` reaches `deadline` (since the
    /// epoch): decrement, waiting in the kernel's queue. Returns early with
    /// [`SemWait::Interrupted`] when a signal handler runs (never
    /// restarted, whatever `SA_RESTART` says).
    ///
    /// # Errors
    ///
    /// The OS error other than `ETIMEDOUT` and `EINTR`.
    ///
    /// # References
    ///
    /// `sem_wait(3)`, `signal(7)`
    pub fn wait_until(&self, deadline: Duration) -> io::Result<SemWait> {
        let ts = libc::timespec {
            tv_sec: deadline.as_secs() as libc::time_t,
            tv_nsec: deadline.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `self.sem` is valid until Drop and `ts` is a valid,
        // normalised timespec that sem_timedwait only reads.
        let rc = unsafe { libc::sem_timedwait(self.sem, &ts) };
        Self::outcome(rc)
    }

    /// `sem_wait`: decrement, waiting as long as it takes in the kernel's
    /// queue; [`SemWait::Interrupted`] when a signal handler runs.
    ///
    /// # Errors
    ///
    /// The OS error other than `EINTR`.
    ///
    /// # References
    ///
    /// `sem_wait(3)`
    pub fn wait(&self) -> io::Result<SemWait> {
        // SAFETY: `self.sem` is a valid semaphore until Drop.
        let rc = unsafe { libc::sem_wait(self.sem) };
        Self::outcome(rc)
    }

    fn outcome(rc: libc::c_int) -> io::Result<SemWait> {
        if rc == 0 {
            return Ok(SemWait::Taken);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ETIMEDOUT) => Ok(SemWait::Busy),
            Some(libc::EINTR) => Ok(SemWait::Interrupted),
            _ => Err(err),
        }
    }

    /// `sem_post`: increment, waking one waiter.
    ///
    /// # Errors
    ///
    /// `EOVERFLOW` at the maximum value.
    ///
    /// # References
    ///
    /// `sem_post(3)`
    pub fn post(&self) -> io::Result<()> {
        // SAFETY: `self.sem` is a valid semaphore until Drop.
        if unsafe { libc::sem_post(self.sem) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `sem_getvalue`: the current count (0 while someone holds it as a
    /// lock).
    ///
    /// # Errors
    ///
    /// The OS error.
    ///
    /// # References
    ///
    /// `sem_getvalue(3)`
    pub fn value(&self) -> io::Result<i32> {
        let mut value: libc::c_int = 0;
        // SAFETY: `self.sem` is valid until Drop; `value` is a valid
        // c_int that sem_getvalue writes.
        if unsafe { libc::sem_getvalue(self.sem, &mut value) } == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `sem_unlink(name)`: remove the name (tests clean up with it).
    ///
    /// # Errors
    ///
    /// `ENOENT` when no such semaphore exists, or another OS error.
    ///
    /// # References
    ///
    /// `sem_unlink(3)`
    pub fn unlink(name: &str) -> io::Result<()> {
        let c_name = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: `c_name` is NUL-terminated and outlives the call.
        if unsafe { libc::sem_unlink(c_name.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // SAFETY: `self.sem` came from sem_open and is closed exactly once;
        // nothing uses it afterwards.
        unsafe {
            libc::sem_close(self.sem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semaphore_is_a_lock_with_value_one() {
        let name = format!("/buslock-unit-{}", std::process::id());
        let a = NamedSemaphore::open(&name).unwrap();
        let b = NamedSemaphore::open(&name).unwrap();
        assert_eq!(a.value().unwrap(), 1);
        assert_eq!(a.try_wait().unwrap(), SemWait::Taken);
        assert_eq!(b.try_wait().unwrap(), SemWait::Busy);
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            + Duration::from_millis(20);
        assert_eq!(b.wait_until(soon).unwrap(), SemWait::Busy);
        a.post().unwrap();
        assert_eq!(b.wait().unwrap(), SemWait::Taken);
        b.post().unwrap();
        NamedSemaphore::unlink(&name).unwrap();
        for bad in ["", "/", "NAME", "/a/b", "/a\0"] {
            let e = NamedSemaphore::open(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
