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
