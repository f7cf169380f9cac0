//! The robust, priority-inheritance, process-shared, error-checking pthread
//! mutex that every lock file holds.
//!
//! Each wrapper is named after the pthread call it makes. The mutex lives in
//! a `MAP_SHARED` mapping and must never be moved or copied: glibc links it
//! into the owning thread's robust list by address, and the kernel finds it
//! there when the owner dies.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

use rustix::time::Timespec;

/// What an attempt to take the mutex returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The mutex is now held by the calling thread.
    Taken,
    /// The mutex is now held by the calling thread, but its previous owner
    /// died while holding it (`EOWNERDEAD`). The caller must call
    /// [`RawMutex::consistent`] before unlocking.
    OwnerDied,
    /// Someone else holds it (`EBUSY` from a try) or the deadline passed
    /// (`ETIMEDOUT`).
    Busy,
}

/// A documented error of a pthread mutex call, or the raw code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawError {
    /// `EDEADLK`: the calling thread already holds the mutex.
    WouldDeadlock,
    /// `ENOTRECOVERABLE`: an owner died and the next owner unlocked it
    /// without marking it consistent.
    NotRecoverable,
    /// `EPERM`: the calling thread does not hold the mutex.
    NotOwner,
    /// Any other error code.
    Other(i32),
}

impl RawError {
    fn from_code(code: i32) -> Self {
        match code {
            libc::EDEADLK => RawError::WouldDeadlock,
            libc::ENOTRECOVERABLE => RawError::NotRecoverable,
            libc::EPERM => RawError::NotOwner,
            other => RawError::Other(other),
        }
    }

    /// The errno value behind this error.
    pub fn code(self) -> i32 {
        match self {
            RawError::WouldDeadlock => libc::EDEADLK,
            RawError::NotRecoverable => libc::ENOTRECOVERABLE,
            RawError::NotOwner => libc::EPERM,
            RawError::Other(code) => code,
        }
    }
}

#[cfg(target_env = "gnu")]
unsafe extern "C" {
    /// glibc 2.30 and later; not in the `libc` crate yet.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// A `pthread_mutex_t` configured `PTHREAD_PROCESS_SHARED`,
/// `PTHREAD_MUTEX_ROBUST`, `PTHREAD_PRIO_INHERIT` and
/// `PTHREAD_MUTEX_ERRORCHECK`.
///
/// A `RawMutex` is only reachable through a [`Mapping`](super::Mapping)
/// whose init state is `READY`, which guarantees `pthread_mutex_init` ran on
/// it. Error checking makes every call defined for any calling thread: a
/// second lock by the owner is `EDEADLK`, an unlock by a non-owner `EPERM`.
#[repr(C)]
pub struct RawMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a process-shared pthread mutex is made to be used concurrently by
// many threads; every access goes through the pthread functions.
unsafe impl Sync for RawMutex {}

fn to_libc(ts: Timespec) -> libc::timespec {
    libc::timespec {
        tv_sec: ts.tv_sec as libc::time_t,
        tv_nsec: ts.tv_nsec as _,
    }
}

impl RawMutex {
    fn ptr(&self) -> *mut libc::pthread_mutex_t {
        self.inner.get()
    }

    /// `pthread_mutex_init(m, attr)`: make this a fresh, unlocked robust PI
    /// mutex.
    ///
    /// # Safety
    ///
    /// No thread in any process may use the mutex while it is initialised:
    /// the caller holds the lock file's creation `flock` and has seen an init
    /// state other than `READY`.
    ///
    /// # References
    ///
    /// `pthread_mutex_init(3p)`, `pthread_mutexattr_setrobust(3)`,
    /// `pthread_mutexattr_setprotocol(3p)`.
    pub(super) unsafe fn init(&self) -> Result<(), RawError> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is a valid place for an attribute object; it is only
        // read after pthread_mutexattr_init succeeded.
        let rc = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
        if rc != 0 {
            return Err(RawError::from_code(rc));
        }
        let attr_ptr = attr.as_mut_ptr();
        // SAFETY: `attr_ptr` was initialised above; each setter only writes it.
        let rc = unsafe {
            let mut rc = libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED);
            if rc == 0 {
                rc = libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST);
            }
            if rc == 0 {
                rc = libc::pthread_mutexattr_setprotocol(attr_ptr, libc::PTHREAD_PRIO_INHERIT);
            }
            if rc == 0 {
                rc = libc::pthread_mutexattr_settype(attr_ptr, libc::PTHREAD_MUTEX_ERRORCHECK);
            }
            if rc == 0 {
                // The caller guarantees nobody else uses the mutex.
                rc = libc::pthread_mutex_init(self.ptr(), attr_ptr);
            }
            libc::pthread_mutexattr_destroy(attr_ptr);
            rc
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(RawError::from_code(rc))
        }
    }

    fn acquire_result(rc: i32) -> Result<Acquire, RawError> {
        match rc {
            0 => Ok(Acquire::Taken),
            libc::EOWNERDEAD => Ok(Acquire::OwnerDied),
            libc::EBUSY | libc::ETIMEDOUT => Ok(Acquire::Busy),
            other => Err(RawError::from_code(other)),
        }
    }

    /// `pthread_mutex_trylock(m)`: take the mutex if nobody holds it; never
    /// blocks. The uncontended path is one compare-and-swap in user space.
    ///
    /// # References
    ///
    /// `pthread_mutex_trylock(3p)`
    #[inline]
    pub fn try_lock(&self) -> Result<Acquire, RawError> {
        // SAFETY: the mutex was initialised (see the type's docs) and lives in
        // a mapping that outlives `&self`.
        Self::acquire_result(unsafe { libc::pthread_mutex_trylock(self.ptr()) })
    }

    /// `pthread_mutex_lock(m)`: block until the mutex is held. Waiters queue
    /// in the kernel's PI futex (priority order, FIFO among equals); the
    /// wait is not interrupted by signals.
    ///
    /// # References
    ///
    /// `pthread_mutex_lock(3p)`, `futex(2)` (`FUTEX_LOCK_PI`)
    pub fn lock(&self) -> Result<Acquire, RawError> {
        // SAFETY: as in `try_lock`.
        Self::acquire_result(unsafe { libc::pthread_mutex_lock(self.ptr()) })
    }

    /// `pthread_mutex_clocklock(m, CLOCK_MONOTONIC, deadline)`: block until
    /// the mutex is held or the monotonic `deadline` passes
    /// ([`Acquire::Busy`]). Falls back to `pthread_mutex_timedlock` with a
    /// `CLOCK_REALTIME` deadline on kernels without `FUTEX_LOCK_PI2`.
    ///
    /// # References
    ///
    /// `pthread_mutex_clocklock(3)`, `pthread_mutex_timedlock(3p)`
    pub fn lock_until(&self, deadline: Timespec) -> Result<Acquire, RawError> {
        let abs = to_libc(deadline);
        #[cfg(target_env = "gnu")]
        {
            // SAFETY: as in `try_lock`; `abs` is a valid timespec.
            let rc = unsafe { pthread_mutex_clocklock(self.ptr(), libc::CLOCK_MONOTONIC, &abs) };
            if rc != libc::EINVAL && rc != libc::ENOSYS {
                return Self::acquire_result(rc);
            }
        }
        let now_mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let now_real = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let left_ns = (i128::from(abs.tv_sec) - i128::from(now_mono.tv_sec)) * 1_000_000_000
            + (i128::from(abs.tv_nsec) - i128::from(now_mono.tv_nsec));
        let real_ns = i128::from(now_real.tv_sec) * 1_000_000_000
            + i128::from(now_real.tv_nsec)
            + left_ns.max(0);
        let real = libc::timespec {
            tv_sec: (real_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (real_ns % 1_000_000_000) as _,
        };
        // SAFETY: as in `try_lock`; `real` is a valid timespec.
        Self::acquire_result(unsafe { libc::pthread_mutex_timedlock(self.ptr(), &real) })
    }

    /// `pthread_mutex_unlock(m)`: release the mutex, handing it to the first
    /// waiter (one `FUTEX_UNLOCK_PI` when someone waits). Fails with
    /// [`RawError::NotOwner`] when the calling thread does not hold it.
    ///
    /// # References
    ///
    /// `pthread_mutex_unlock(3p)`
    #[inline]
    pub fn unlock(&self) -> Result<(), RawError> {
        // SAFETY: as in `try_lock`; error checking makes a foreign unlock EPERM.
        match unsafe { libc::pthread_mutex_unlock(self.ptr()) } {
            0 => Ok(()),
            rc => Err(RawError::from_code(rc)),
        }
    }

    /// `pthread_mutex_consistent(m)`: after [`Acquire::OwnerDied`], mark the
    /// mutex usable again. Unlocking without this makes it
    /// `ENOTRECOVERABLE` for everyone.
    ///
    /// # References
    ///
    /// `pthread_mutex_consistent(3p)`
    pub fn consistent(&self) -> Result<(), RawError> {
        // SAFETY: as in `try_lock`.
        match unsafe { libc::pthread_mutex_consistent(self.ptr()) } {
            0 => Ok(()),
            rc => Err(RawError::from_code(rc)),
        }
    }
}
