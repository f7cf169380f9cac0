//! Durations and wall-clock times as Python floats (seconds), the unit of
//! `time.time()` and `threading.Lock.acquire(timeout=...)`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;

/// Seconds since the Unix epoch, as `time.time()` gives them.
pub(crate) fn epoch_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// A duration in seconds.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A `threading`-style timeout: `-1` (or `None`) means no limit, anything
/// else must be a non-negative number of seconds.
pub(crate) fn timeout(value: Option<f64>) -> PyResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(-1.0) => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(
            "timeout value must be a non-negative number (or -1 for no limit)",
        )),
        Some(t) if t.is_infinite() => Ok(None),
        Some(t) => Duration::try_from_secs_f64(t)
            .map(Some)
            .map_err(|_| PyOverflowError::new_err("timeout value is too large")),
    }
}
