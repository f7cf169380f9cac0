//! `buslock.Mutex`: a buslock mutex with the interface of `threading.Lock`.
//!
//! Python cannot keep a Rust guard across `acquire()` and `release()`, so
//! each object keeps the library's proof of ownership ([`Held`]) and the
//! thread that took it. Waiting happens without the GIL, in the library's
//! interruptible slices, asking Python between slices whether a signal
//! handler (Ctrl-C) raised.

use std::path::PathBuf;
use std::sync::{Mutex as StdMutex, MutexGuard as StdGuard, PoisonError};
use std::time::Duration;

use buslock::{Held, Wait};
use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::info::{PyEvent, PyOwner, PyStats, PyWaiter};
use crate::time;
use crate::wait;

/// Raise the calling thread's pending lock-order report (warn mode) as a
/// `buslock.LockOrderWarning`.
fn order_warning(py: Python<'_>) -> PyResult<()> {
    let Some(text) = buslock::lockdep::take_warning() else {
        return Ok(());
    };
    let category = py.import("buslock.errors")?.getattr("LockOrderWarning")?;
    let text = std::ffi::CString::new(text.replace('\0', "?"))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    PyErr::warn(py, &category, &text, 1)
}

/// What `Mutex._reopen` needs: name, lock directory, legacy lock path,
/// lock-order mode, legacy semaphore, legacy polling interval (seconds).
type ReopenArgs = (
    String,
    PathBuf,
    Option<PathBuf>,
    &'static str,
    Option<String>,
    Option<f64>,
);

/// A Python argument taken for its truth value, as `threading.Lock.acquire`
/// takes `blocking` (`acquire(0)` does not wait, `acquire(1)` does).
pub(crate) struct Truthy(pub(crate) bool);

impl<'a, 'py> FromPyObject<'a, 'py> for Truthy {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        obj.is_truthy().map(Truthy)
    }
}

/// What one Python `Mutex` object knows about its own holds.
#[derive(Debug, Default)]
struct State {
    /// The proof of the current hold taken through this object.
    held: Option<Held>,
    /// Native thread id of the thread holding through this object.
    holder: u32,
    /// Whether the last acquisition through this object found the previous
    /// holder dead.
    previous_owner_died: bool,
    /// How long the last acquisition through this object waited.
    waited: Duration,
}

/// A named lock shared by every process and thread on this machine that
/// opens the same name in the same lock directory.
///
/// Used like `threading.Lock` (`with spi:`, `acquire()`, `release()`,
/// `locked()`), but it also excludes other processes, is released when its
/// holder dies (the next holder sees `previous_owner_died`), serves waiters
/// in arrival order, and knows who holds it (`owner`). It is not recursive:
/// acquiring it again from the holding thread raises RuntimeError, and only
/// the holding thread can release it.
///
/// Mutex(name, dir=None, *, create=True, legacy_record_lock=None)
///
/// name: the lock's name, 1 to 64 characters from A-Z a-z 0-9 . _ - not
///   starting with '.' or '-'; case-sensitive ("SPI" and "spi" are two
///   locks). Every program that uses the same name in the same directory
///   shares the lock.
/// dir: the lock directory; None means $BUSLOCK_DIR (an absolute path),
///   else /run/lock/buslock (created by the first program run as root;
///   other users get an error saying what the admin must run).
/// create: when True (the default) the lock file is created if it does
///   not exist yet; when False a missing lock file raises buslock.Error
///   instead (for monitoring tools that must not create locks).
/// legacy_record_lock: a path that is also locked, with an exclusive POSIX
///   record lock (the lock of fcntl.lockf), after the mutex is taken and
///   released before it, so that old programs that still lock that file
///   with lockf (Dexter's DI_Mutex files) are excluded too. None: no such
///   lock.
#[pyclass(name = "Mutex", module = "buslock", frozen)]
pub(crate) struct PyMutex {
    inner: buslock::Mutex,
    state: StdMutex<State>,
}

impl PyMutex {
    fn state(&self) -> StdGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a successful acquisition.
    fn took(&self, held: Held) {
        let mut st = self.state();
        st.previous_owner_died = held.previous_owner_died();
        st.waited = held.waited();
        st.holder = buslock::identity::tid();
        st.held = Some(held);
    }

    /// Refuse recursion before waiting: the library would report it too,
    /// but only once the lock is tried.
    fn check_not_mine(&self, py: Python<'_>) -> PyResult<()> {
        let st = self.state();
        if st.held.is_some() && st.holder == buslock::identity::tid() {
            return Err(to_py(
                py,
                buslock::Error::Recursive {
                    name: self.inner.name().to_owned(),
                },
            ));
        }
        Ok(())
    }

    /// Wait without the GIL, asking Python every slice whether a signal
    /// handler raised (KeyboardInterrupt on Ctrl-C); that exception is
    /// raised instead of waiting on, and nothing stays held.
    fn wait(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<Held>> {
        wait::interruptible(py, order_warning, |interrupted| {
            self.inner.acquire(Wait::Interruptible {
                timeout,
                interrupted,
            })
        })
    }

    /// The first try of an acquisition: skipped, when the acquisition
    /// would wait, while this thread holds another buslock lock, so that
    /// the lock-order check (which a try does not make) runs.
    fn first_try(&self, py: Python<'_>, will_wait: bool) -> PyResult<Option<Held>> {
        if will_wait && buslock::lockdep::holds_any() {
            return Ok(None);
        }
        self.inner.acquire(Wait::Try).map_err(|e| to_py(py, e))
    }

    /// Record a successful acquisition, then raise the pending lock-order
    /// warning; if the warning is turned into an exception, release first.
    fn took_and_warn(&self, py: Python<'_>, held: Held) -> PyResult<()> {
        self.took(held);
        if let Err(e) = order_warning(py) {
            let mut st = self.state();
            let _ = self.inner.release(&mut st.held);
            return Err(e);
        }
        Ok(())
    }

    /// Why the calling thread cannot release.
    fn not_owner(&self, st: &State) -> PyErr {
        let me = buslock::identity::tid();
        let name = self.inner.name();
        if st.held.is_some() {
            PyRuntimeError::new_err(format!(
                "lock '{name}' is held by thread {} (native id), not by this thread ({me}): \
                 only the thread that acquired a buslock mutex can release it",
                st.holder
            ))
        } else {
            PyRuntimeError::new_err(format!(
                "release unlocked lock: lock '{name}' is not held through this Mutex object; \
                 call release() once per successful acquire(), from the same thread"
            ))
        }
    }
}

#[pymethods]
impl PyMutex {
    /// Open lock `name` (see the class documentation for the arguments).
    ///
    /// `lockdep`: lock-order checking for this object, `"off"`, `"warn"`
    /// or `"error"` (None: `$BUSLOCK_LOCKDEP`, else `"warn"`).
    /// `legacy_semaphore`: a POSIX named semaphore (`/NAME`) taken after the
    /// mutex, like `legacy_record_lock`, for programs still using
    /// `global_lock`; healed after a holder died holding it.
    /// `legacy_poll_interval`: how often the programs behind
    /// `legacy_record_lock` poll it, in seconds (default 0.001).
    #[new]
    #[pyo3(signature = (name, dir=None, *, create=true, legacy_record_lock=None, lockdep=None, legacy_semaphore=None, legacy_poll_interval=None))]
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    fn new(
        py: Python<'_>,
        name: &str,
        dir: Option<PathBuf>,
        create: bool,
        legacy_record_lock: Option<PathBuf>,
        lockdep: Option<&str>,
        legacy_semaphore: Option<String>,
        legacy_poll_interval: Option<f64>,
    ) -> PyResult<Self> {
        let mut builder = buslock::Mutex::builder(name).create(create);
        if let Some(mode) = lockdep {
            let mode: buslock::lockdep::Mode = mode.parse().map_err(PyValueError::new_err)?;
            builder = builder.lockdep(mode);
        }
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        if let Some(path) = legacy_record_lock {
            builder = builder.legacy_record_lock(path);
        }
        if let Some(sem) = legacy_semaphore {
            builder = builder.legacy_semaphore(&sem);
        }
        if let Some(secs) = legacy_poll_interval {
            let interval = std::time::Duration::try_from_secs_f64(secs).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "legacy_poll_interval must be a non-negative number of seconds, not {secs}"
                ))
            })?;
            builder = builder.legacy_poll_interval(interval);
        }
        let inner = builder.open().map_err(|e| to_py(py, e))?;
        Ok(PyMutex {
            inner,
            state: StdMutex::new(State::default()),
        })
    }

    /// Take the lock, as `threading.Lock.acquire`.
    ///
    /// With `blocking` false (any false value: False, 0), never wait.
    /// Otherwise wait at most `timeout` seconds (-1 or None: no limit).
    /// Returns True when the lock was taken, False when the wait gave up.
    /// Ctrl-C while waiting raises KeyboardInterrupt, leaving nothing held.
    /// Raises RuntimeError if this thread already holds the lock (it is not
    /// recursive).
    #[pyo3(signature = (blocking=Truthy(true), timeout=-1.0), text_signature = "($self, blocking=True, timeout=-1)")]
    fn acquire(&self, py: Python<'_>, blocking: Truthy, timeout: Option<f64>) -> PyResult<bool> {
        let Truthy(blocking) = blocking;
        let limit = wait::limit(blocking, timeout)?;
        let will_wait = blocking && limit != Some(Duration::ZERO);
        let mut held = self.first_try(py, will_wait)?;
        if held.is_none() && will_wait {
            self.check_not_mine(py)?;
            held = self.wait(py, limit)?;
        }
        match held {
            Some(h) => {
                self.took_and_warn(py, h)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Release the lock. Raises RuntimeError when the calling thread does
    /// not hold it through this object.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let mut st = self.state();
        match self.inner.release(&mut st.held) {
            Ok(()) => Ok(()),
            Err(buslock::Error::NotOwner { .. }) => Err(self.not_owner(&st)),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// `with spi:` takes the lock, waiting as long as it takes (Ctrl-C
    /// raises KeyboardInterrupt).
    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        let this = slf.get();
        let py = slf.py();
        match this.first_try(py, true)? {
            Some(h) => this.took_and_warn(py, h)?,
            None => {
                this.check_not_mine(py)?;
                match this.wait(py, None)? {
                    Some(h) => this.took_and_warn(py, h)?,
                    None => unreachable!("a wait without timeout ended without the lock"),
                }
            }
        }
        Ok(slf.clone().unbind())
    }

    /// Release at the end of a `with` block; exceptions propagate (it
    /// returns None, as `threading.Lock.__exit__` does).
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.release(py)
    }

    /// Whether some live thread holds the lock (a snapshot).
    fn locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Whether the calling thread holds the lock.
    fn is_held_by_current_thread(&self) -> bool {
        self.inner.is_held_by_current_thread()
    }

    /// Raise AssertionError (naming the holder) unless the calling thread
    /// holds the lock.
    fn assert_held(&self, py: Python<'_>) -> PyResult<()> {
        if self.inner.is_held_by_current_thread() {
            return Ok(());
        }
        let holder = match self.inner.owner().map_err(|e| to_py(py, e))? {
            Some(o) => format!("held by {o:#}"),
            None => "free".to_owned(),
        };
        Err(PyAssertionError::new_err(format!(
            "lock '{}' is not held by this thread (pid {} tid {}); it is {holder}",
            self.inner.name(),
            std::process::id(),
            buslock::identity::tid()
        )))
    }

    /// Who holds the lock (an `Owner`), or None when it is free. Read
    /// without taking the lock.
    #[getter]
    fn owner(&self, py: Python<'_>) -> PyResult<Option<PyOwner>> {
        Ok(self
            .inner
            .owner()
            .map_err(|e| to_py(py, e))?
            .map(PyOwner::from))
    }

    /// Native id (`threading.get_native_id()`) of the thread that holds the
    /// lock through this object, or None when this object does not hold it.
    #[getter]
    fn holder_thread(&self) -> Option<u32> {
        let st = self.state();
        st.held.as_ref().map(|_| st.holder)
    }

    /// Whether the previous holder died while holding the lock, as found
    /// by the last successful acquire through this object. If True, reset
    /// the bus or device before using it.
    #[getter]
    fn previous_owner_died(&self) -> bool {
        self.state().previous_owner_died
    }

    /// How long the last successful acquire through this object waited, in
    /// seconds.
    #[getter]
    fn waited(&self) -> f64 {
        time::seconds(self.state().waited)
    }

    /// The lock's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The lock file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_owned()
    }

    /// The legacy companion lock file, or None.
    #[getter]
    fn legacy_path(&self) -> Option<PathBuf> {
        self.inner.legacy_path().map(|p| p.to_owned())
    }

    /// A snapshot of the lock's statistics, shared by all its users.
    fn stats(&self, py: Python<'_>) -> PyResult<PyStats> {
        let s = self.inner.stats().map_err(|e| to_py(py, e))?;
        PyStats::new(py, s)
    }

    /// Zero the statistics: takes the lock briefly, waiting as `with`
    /// does (without the GIL; Ctrl-C raises KeyboardInterrupt and nothing
    /// is reset). The reset's own hold is the first the new statistics
    /// count. If the previous holder had died, `previous_owner_died` says
    /// so afterwards, as after an acquire.
    fn reset_stats(&self, py: Python<'_>) -> PyResult<()> {
        self.check_not_mine(py)?;
        let died = wait::interruptible(py, wait::no_check, |interrupted| {
            let guard = self.inner.lock_interruptible(None, interrupted)?;
            let guard = guard.expect("a wait without timeout ends with the lock or an error");
            guard.reset_stats();
            Ok(guard.previous_owner_died())
        })?;
        if died {
            self.state().previous_owner_died = true;
        }
        Ok(())
    }

    /// Threads waiting for the lock now, longest waiting first.
    fn waiters(&self, py: Python<'_>) -> PyResult<Vec<PyWaiter>> {
        Ok(self
            .inner
            .waiters()
            .map_err(|e| to_py(py, e))?
            .into_iter()
            .map(PyWaiter::from)
            .collect())
    }

    /// Completed holds numbered `start` and later still in the ring, and
    /// the number to pass next time.
    fn events_since(&self, start: u64) -> (Vec<PyEvent>, u64) {
        let (events, next) = self.inner.events_since(start);
        (events.into_iter().map(PyEvent::from).collect(), next)
    }

    /// Number of holds recorded in the event ring so far.
    fn event_head(&self) -> u64 {
        self.inner.event_head()
    }

    /// Pickling (e.g. passing the Mutex to a `multiprocessing` worker)
    /// gives a new handle on the same lock, not holding it, opened with the
    /// same options (legacy companion, its polling interval, lock-order
    /// mode).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, ReopenArgs)> {
        let this = slf.get();
        let dir = this
            .inner
            .path()
            .parent()
            .map(|p| p.to_owned())
            .unwrap_or_default();
        let legacy = this.inner.legacy_path().map(|p| p.to_owned());
        Ok((
            slf.get_type().getattr("_reopen")?,
            (
                this.inner.name().to_owned(),
                dir,
                legacy,
                this.inner.lockdep_mode().as_str(),
                this.inner.legacy_semaphore().map(str::to_owned),
                this.inner.legacy_poll_interval().map(|d| d.as_secs_f64()),
            ),
        ))
    }

    /// Reopen a pickled Mutex (see `__reduce__`; the later arguments are
    /// optional so that pickles made by older versions still load).
    #[staticmethod]
    #[pyo3(signature = (name, dir, legacy_record_lock, lockdep=None, legacy_semaphore=None, legacy_poll_interval=None))]
    fn _reopen(
        py: Python<'_>,
        name: &str,
        dir: PathBuf,
        legacy_record_lock: Option<PathBuf>,
        lockdep: Option<&str>,
        legacy_semaphore: Option<String>,
        legacy_poll_interval: Option<f64>,
    ) -> PyResult<Self> {
        Self::new(
            py,
            name,
            Some(dir),
            true,
            legacy_record_lock,
            lockdep,
            legacy_semaphore,
            legacy_poll_interval,
        )
    }

    fn __repr__(&self) -> String {
        let state = match self.inner.owner() {
            Ok(Some(o)) => format!("locked by {o:#}"),
            _ => "unlocked".to_owned(),
        };
        format!(
            "<buslock.Mutex {:?} at {:?} {state}>",
            self.inner.name(),
            self.inner.path()
        )
    }
}

impl Drop for PyMutex {
    /// A Mutex object collected while its own thread holds it (the program
    /// dropped it, or the interpreter is finalising after an uncaught
    /// exception or `sys.exit()`) was never released by `release()` or
    /// `__exit__`: the holder's work was cut short, so the lock is released
    /// as after a death and the next holder is told
    /// (`previous_owner_died`). Held by another thread, the lock stays held
    /// until that thread ends, when the kernel releases it and the next
    /// holder is told the owner died.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if st.held.is_some() && st.holder == buslock::identity::tid() {
            let _ = self.inner.release_abandoned(&mut st.held);
        }
    }
}
