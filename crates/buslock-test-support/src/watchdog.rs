//! Watchdogs: bounds after which a test fails instead of hanging.

use std::time::{Duration, Instant};

/// Longest any step of a test may wait before the test fails (a watchdog,
/// not a timing claim).
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Poll `cond` every `every` until it holds; `false` if it never held
/// within `limit` (checked one last time at the end).
pub fn poll_until(limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(every);
    }
    cond()
}

/// Poll `cond` until it holds, failing the test after [`WATCHDOG`].
///
/// # Panics
///
/// If `cond` does not hold within [`WATCHDOG`] (the message names `what`).
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(WATCHDOG, Duration::from_millis(2), cond),
        "timed out waiting for {what}"
    );
}
