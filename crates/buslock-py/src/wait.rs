//! Waiting for a lock from Python, as `Mutex` and `RwLock` both do: the
//! `blocking` and `timeout` arguments of `threading.Lock.acquire`, and
//! waits without the GIL that a signal handler (Ctrl-C) can end.

use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::time;

/// The longest wait `blocking` and `timeout` ask for, as
/// `threading.Lock.acquire` reads them (None: no limit). A timeout given
/// with `blocking` false raises ValueError.
pub(crate) fn limit(blocking: bool, timeout: Option<f64>) -> PyResult<Option<Duration>> {
    let limit = time::timeout(timeout)?;
    if !blocking && limit.is_some() {
        return Err(PyValueError::new_err(
            "can't specify a timeout for a non-blocking call",
        ));
    }
    Ok(limit)
}

/// Run `wait` without the GIL, handing it the `interrupted` check of a
/// [`buslock::Wait::Interruptible`]: between slices it asks Python whether
/// a signal handler raised (KeyboardInterrupt on Ctrl-C), then runs
/// `check`. An exception from either ends the wait and is raised instead;
/// other errors become Python exceptions.
pub(crate) fn interruptible<T: Send>(
    py: Python<'_>,
    check: fn(Python<'_>) -> PyResult<()>,
    wait: impl FnOnce(&mut dyn FnMut() -> bool) -> buslock::Result<T> + Send,
) -> PyResult<T> {
    let mut raised: Option<PyErr> = None;
    let outcome = py.detach(|| {
        let mut interrupted = || {
            Python::attach(|py| match py.check_signals().and_then(|()| check(py)) {
                Ok(()) => false,
                Err(e) => {
                    raised = Some(e);
                    true
                }
            })
        };
        wait(&mut interrupted)
    });
    match outcome {
        Ok(value) => Ok(value),
        Err(buslock::Error::Interrupted { name }) => Err(raised.unwrap_or_else(|| {
            PyRuntimeError::new_err(format!("waiting for lock '{name}' was interrupted"))
        })),
        Err(e) => Err(to_py(py, e)),
    }
}

/// A `check` for [`interruptible`] that adds nothing to the signal check.
pub(crate) fn no_check(_py: Python<'_>) -> PyResult<()> {
    Ok(())
}
