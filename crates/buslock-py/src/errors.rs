//! buslock errors as Python exceptions.
//!
//! The exception classes live in the pure-Python module `buslock.errors`
//! (so that they can also derive from the built-in `PermissionError`); this
//! module picks the class for each [`buslock::Error`] and keeps the
//! library's message, which names the lock or path and says how to fix it.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// The Python exception for a library error.
pub(crate) fn to_py(py: Python<'_>, err: buslock::Error) -> PyErr {
    let message = err.to_string();
    match err {
        buslock::Error::Recursive { name } => PyRuntimeError::new_err(format!(
            "this thread already holds lock '{name}': buslock mutexes are not recursive; \
             call release() first"
        )),
        buslock::Error::NotOwner { .. } | buslock::Error::RecursiveRw { .. } => {
            PyRuntimeError::new_err(message)
        }
        buslock::Error::InvalidName { .. } => buslock_error(py, "InvalidName", message),
        buslock::Error::LockOrder { .. } => buslock_error(py, "LockOrderError", message),
        buslock::Error::Deadlock { .. } => buslock_error(py, "DeadlockError", message),
        e if e.is_permission() => buslock_error(py, "PermissionDenied", message),
        e if e.is_corrupt() => buslock_error(py, "CorruptLockFile", message),
        _ => buslock_error(py, "Error", message),
    }
}

/// Raise `buslock.errors.<class>(message)`; if the Python part of the
/// package is missing (the extension imported on its own), fall back to a
/// built-in class so that the message is never lost.
fn buslock_error(py: Python<'_>, class: &str, message: String) -> PyErr {
    let made = py
        .import("buslock.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call1((message.clone(),)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) if class == "InvalidName" => PyValueError::new_err(message),
        Err(_) => PyRuntimeError::new_err(message),
    }
}
