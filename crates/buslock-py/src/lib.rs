//! Python bindings for buslock, built with PyO3 into the extension module
//! `buslock._buslock`; the Python package `buslock` re-exports it and adds
//! the pure-Python drop-ins (`buslock.compat`).
//!
//! The extension holds no `unsafe` code of its own: the only `unsafe` lives
//! in the library's `raw` layer and in PyO3's generated glue.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod errors;
mod info;
mod mutex;
mod rwlock;
mod time;
mod wait;

use std::path::PathBuf;

use pyo3::prelude::*;

/// Resolve the lock directory the way `Mutex(name, dir)` does: `dir`, else
/// `$BUSLOCK_DIR`, else `/run/lock/buslock`; never creates it.
#[pyfunction]
#[pyo3(signature = (dir=None))]
fn lock_dir(py: Python<'_>, dir: Option<PathBuf>) -> PyResult<PathBuf> {
    let resolved = buslock::LockDir::resolve(dir.as_deref()).map_err(|e| errors::to_py(py, e))?;
    Ok(resolved.path().to_owned())
}

/// Names of the locks in a lock directory (resolved as by `lock_dir`).
#[pyfunction]
#[pyo3(signature = (dir=None))]
fn lock_names(py: Python<'_>, dir: Option<PathBuf>) -> PyResult<Vec<String>> {
    let resolved = buslock::LockDir::resolve(dir.as_deref()).map_err(|e| errors::to_py(py, e))?;
    resolved.lock_names().map_err(|e| errors::to_py(py, e))
}

/// The lock name of the bus behind device node `path` (`/dev/spidev0.1`
/// -> `spi0`, `/dev/i2c-1` -> `i2c-1`), by `buslock::bus_lock_name`.
#[pyfunction]
fn bus_lock_name(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    buslock::bus_lock_name(&path)
        .map(String::from)
        .map_err(|e| errors::to_py(py, e))
}

/// The native part of the `buslock` package.
#[pymodule]
fn _buslock(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<mutex::PyMutex>()?;
    m.add_class::<rwlock::PyRwLock>()?;
    m.add_class::<rwlock::PyReader>()?;
    m.add_class::<rwlock::PyHold>()?;
    m.add_class::<info::PyOwner>()?;
    m.add_class::<info::PyStats>()?;
    m.add_class::<info::PyLongestHold>()?;
    m.add_class::<info::PyWaiter>()?;
    m.add_class::<info::PyEvent>()?;
    m.add_function(wrap_pyfunction!(lock_dir, m)?)?;
    m.add_function(wrap_pyfunction!(lock_names, m)?)?;
    m.add_function(wrap_pyfunction!(bus_lock_name, m)?)?;
    m.add("INTERRUPT_SLICE", buslock::INTERRUPT_SLICE.as_secs_f64())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
