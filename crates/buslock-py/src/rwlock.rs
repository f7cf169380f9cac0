//! `buslock.RwLock`: a readers-writer lock across processes.
//!
//! As for `buslock.Mutex`, Python cannot keep a borrowing Rust guard
//! between `acquire_*()` and `release_*()`, so each object keeps the
//! library's proofs of its holds ([`ReadHeld`], [`WriteHeld`]) per thread.
//! Waits happen without the GIL, in interruptible slices, asking Python
//! between slices whether a signal handler (Ctrl-C) raised.

use std::path::PathBuf;
use std::sync::{Mutex as StdMutex, MutexGuard as StdGuard, PoisonError};
use std::time::Duration;

use buslock::{ReadGuard, ReadHeld, Wait, WriteGuard, WriteHeld};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use crate::info::{PyEvent, PyOwner, PyWaiter};
use crate::mutex::Truthy;
use crate::time;

/// What one Python `RwLock` object holds, per thread.
#[derive(Debug, Default)]
struct State {
    /// Read holds taken through this object: (native thread id, proof).
    readers: Vec<(u32, ReadHeld)>,
    /// The write hold taken through this object, if any.
    writer: Option<(u32, WriteHeld)>,
    /// Whether the last acquisition through this object was told that a
    /// writer died.
    previous_owner_died: bool,
}

/// A reader holding a readers-writer lock.
#[pyclass(name = "Reader", module = "buslock", frozen, get_all)]
pub(crate) struct PyReader {
    /// Process id.
    pid: u32,
    /// Thread id (`threading.get_native_id()` in that thread).
    tid: u32,
    /// Program name (or its handle's label).
    program: String,
    /// When it took its share, seconds since the epoch.
    since: f64,
    /// What the process is doing now (`"running"`, `"sleeping"`, ...).
    state: String,
}

#[pymethods]
impl PyReader {
    fn __repr__(&self) -> String {
        format!(
            "Reader(pid={}, tid={}, program={:?}, since={:.6}, state={:?})",
            self.pid, self.tid, self.program, self.since, self.state
        )
    }
}

/// A readers-writer lock shared by every process and thread on this
/// machine that opens the same name in the same lock directory: many
/// readers at once, or one writer.
///
/// `with rw.read():` shares it, `with rw.write():` takes it alone. A reader
/// that dies frees its share; a writer that dies is reported to the next
/// holder of either kind (`previous_owner_died`). Once a writer waits, new
/// readers queue behind it. Reading again from a reading thread, or
/// writing from it, raises RuntimeError (it could deadlock).
///
/// RwLock(name, dir=None, *, create=True, lockdep=None)
#[pyclass(name = "RwLock", module = "buslock", frozen)]
pub(crate) struct PyRwLock {
    inner: buslock::RwLock,
    state: StdMutex<State>,
}

impl PyRwLock {
    fn state(&self) -> StdGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait without the GIL as `limit` says; Ctrl-C raises.
    fn wait<T: Send>(
        &self,
        py: Python<'_>,
        limit: Option<Duration>,
        blocking: bool,
        take: impl FnOnce(&buslock::RwLock, Wait<'_>) -> buslock::Result<Option<T>> + Send,
    ) -> PyResult<Option<T>> {
        if !blocking || limit == Some(Duration::ZERO) {
            return take(&self.inner, Wait::Try).map_err(|e| to_py(py, e));
        }
        let mut raised: Option<PyErr> = None;
        let outcome = py.detach(|| {
            let mut interrupted = || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        raised = Some(e);
                        true
                    }
                })
            };
            take(
                &self.inner,
                Wait::Interruptible {
                    timeout: limit,
                    interrupted: &mut interrupted,
                },
            )
        });
        match outcome {
            Ok(held) => Ok(held),
            Err(buslock::Error::Interrupted { name }) => Err(raised.unwrap_or_else(|| {
                PyRuntimeError::new_err(format!("waiting for lock '{name}' was interrupted"))
            })),
            Err(e) => Err(to_py(py, e)),
        }
    }

    fn limit(blocking: bool, timeout: Option<f64>) -> PyResult<Option<Duration>> {
        let limit = time::timeout(timeout)?;
        if !blocking && limit.is_some() {
            return Err(PyValueError::new_err(
                "can't specify a timeout for a non-blocking call",
            ));
        }
        Ok(limit)
    }

    fn not_held(&self, what: &str) -> PyErr {
        PyRuntimeError::new_err(format!(
            "release unlocked lock: this thread does not {what} lock '{}' through this RwLock \
             object; call release_{what}() once per successful acquire_{what}(), from the same \
             thread",
            self.inner.name()
        ))
    }
}

#[pymethods]
impl PyRwLock {
    /// Open readers-writer lock `name`; `dir`, `create` and `lockdep` as
    /// for `Mutex`.
    #[new]
    #[pyo3(signature = (name, dir=None, *, create=true, lockdep=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        dir: Option<PathBuf>,
        create: bool,
        lockdep: Option<&str>,
    ) -> PyResult<Self> {
        let mut b = buslock::RwLock::builder(name).create(create);
        if let Some(dir) = dir {
            b = b.dir(dir);
        }
        if let Some(mode) = lockdep {
            let mode = mode.parse().map_err(PyValueError::new_err)?;
            b = b.lockdep(mode);
        }
        let inner = py.detach(|| b.open()).map_err(|e| to_py(py, e))?;
        Ok(PyRwLock {
            inner,
            state: StdMutex::new(State::default()),
        })
    }

    /// Share the lock: wait while a writer holds or waits (`blocking`,
    /// `timeout` as for `threading.Lock.acquire`). True when taken.
    #[pyo3(signature = (blocking=Truthy(true), timeout=-1.0), text_signature = "($self, blocking=True, timeout=-1)")]
    fn acquire_read(
        &self,
        py: Python<'_>,
        blocking: Truthy,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let Truthy(blocking) = blocking;
        let limit = Self::limit(blocking, timeout)?;
        let got = self.wait(py, limit, blocking, |rw, wait| {
            Ok(rw.acquire_read(wait)?.map(ReadGuard::into_held))
        })?;
        let Some(held) = got else { return Ok(false) };
        let mut st = self.state();
        st.previous_owner_died = held.previous_owner_died();
        st.readers.push((buslock::identity::tid(), held));
        Ok(true)
    }

    /// Give back this thread's share.
    fn release_read(&self, py: Python<'_>) -> PyResult<()> {
        let me = buslock::identity::tid();
        let mut st = self.state();
        let Some(i) = st.readers.iter().position(|(t, _)| *t == me) else {
            return Err(self.not_held("read"));
        };
        let (_, held) = st.readers.swap_remove(i);
        match self.inner.release_read(held) {
            Ok(()) => Ok(()),
            Err((e, held)) => {
                st.readers.push((me, held));
                Err(to_py(py, e))
            }
        }
    }

    /// Take the lock alone: wait for the writer before and for readers to
    /// leave. True when taken.
    #[pyo3(signature = (blocking=Truthy(true), timeout=-1.0), text_signature = "($self, blocking=True, timeout=-1)")]
    fn acquire_write(
        &self,
        py: Python<'_>,
        blocking: Truthy,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let Truthy(blocking) = blocking;
        let limit = Self::limit(blocking, timeout)?;
        let got = self.wait(py, limit, blocking, |rw, wait| {
            Ok(rw.acquire_write(wait)?.map(WriteGuard::into_held))
        })?;
        let Some(held) = got else { return Ok(false) };
        let mut st = self.state();
        st.previous_owner_died = held.previous_owner_died();
        st.writer = Some((buslock::identity::tid(), held));
        Ok(true)
    }

    /// Release this thread's write hold.
    fn release_write(&self, py: Python<'_>) -> PyResult<()> {
        let me = buslock::identity::tid();
        let mut st = self.state();
        match st.writer.take() {
            Some((t, held)) if t == me => match self.inner.release_write(held, false) {
                Ok(()) => Ok(()),
                Err((e, held)) => {
                    st.writer = Some((t, held));
                    Err(to_py(py, e))
                }
            },
            other => {
                st.writer = other;
                Err(self.not_held("write"))
            }
        }
    }

    /// Turn this thread's write hold into a read hold, with no moment in
    /// between where another writer could get in.
    fn downgrade(&self, py: Python<'_>) -> PyResult<()> {
        let me = buslock::identity::tid();
        let mut st = self.state();
        match st.writer.take() {
            Some((t, held)) if t == me => match self.inner.downgrade_held(held) {
                Ok(read) => {
                    st.readers.push((me, read));
                    Ok(())
                }
                Err((e, held)) => {
                    st.writer = Some((t, held));
                    Err(to_py(py, e))
                }
            },
            other => {
                st.writer = other;
                Err(PyRuntimeError::new_err(format!(
                    "downgrade: this thread does not write lock '{}' through this RwLock object",
                    self.inner.name()
                )))
            }
        }
    }

    /// `with rw.read():` shares the lock for the block.
    fn read(slf: &Bound<'_, Self>) -> PyHold {
        PyHold {
            lock: slf.clone().unbind(),
            write: false,
        }
    }

    /// `with rw.write():` holds the lock alone for the block.
    fn write(slf: &Bound<'_, Self>) -> PyHold {
        PyHold {
            lock: slf.clone().unbind(),
            write: true,
        }
    }

    /// Whether the last acquisition through this object was told that a
    /// writer died holding the lock (or ended abandoned): what it protects
    /// may be half written.
    #[getter]
    fn previous_owner_died(&self) -> bool {
        self.state().previous_owner_died
    }

    /// The writer holding the lock, or None.
    #[getter]
    fn writer(&self, py: Python<'_>) -> PyResult<Option<PyOwner>> {
        Ok(self
            .inner
            .writer()
            .map_err(|e| to_py(py, e))?
            .map(PyOwner::from))
    }

    /// The readers holding the lock now.
    #[getter]
    fn readers(&self) -> Vec<PyReader> {
        self.inner
            .readers()
            .into_iter()
            .map(|r| PyReader {
                pid: r.pid,
                tid: r.tid,
                program: r.program,
                since: time::epoch_seconds(r.since),
                state: r.state.as_str().to_owned(),
            })
            .collect()
    }

    /// Reads, writes and holders found dead numbered `start` and later
    /// still in the ring, and the number to pass next time (`Event.read`
    /// tells the kind, `Event.died` a holder found dead).
    fn events_since(&self, start: u64) -> (Vec<PyEvent>, u64) {
        let (events, next) = self.inner.events_since(start);
        (events.into_iter().map(PyEvent::from).collect(), next)
    }

    /// Number of events recorded in the ring so far.
    fn event_head(&self) -> u64 {
        self.inner.event_head()
    }

    /// Threads waiting to write, longest first.
    fn writers_waiting(&self) -> Vec<PyWaiter> {
        self.inner
            .writers_waiting()
            .into_iter()
            .map(PyWaiter::from)
            .collect()
    }

    /// Threads waiting to read, longest first.
    fn readers_waiting(&self) -> Vec<PyWaiter> {
        self.inner
            .readers_waiting()
            .into_iter()
            .map(PyWaiter::from)
            .collect()
    }

    /// Counters: reads, reads_contended, read_wait (s), read_timeouts,
    /// reader_deaths, writes, writes_contended, write_timeouts,
    /// writer_deaths.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("reads", s.reads)?;
        d.set_item("reads_contended", s.reads_contended)?;
        d.set_item("read_wait", time::seconds(s.read_wait))?;
        d.set_item("read_timeouts", s.read_timeouts)?;
        d.set_item("reader_deaths", s.reader_deaths)?;
        d.set_item("writes", s.writes.acquisitions)?;
        d.set_item("writes_contended", s.writes.contended)?;
        d.set_item("write_timeouts", s.writes.timeouts)?;
        d.set_item("writer_deaths", s.writer_deaths)?;
        Ok(d)
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

    fn __repr__(&self) -> String {
        format!(
            "<buslock.RwLock {:?} at {:?}>",
            self.inner.name(),
            self.inner.path()
        )
    }
}

impl Drop for PyRwLock {
    /// An object finalised while its thread still writes (an uncaught
    /// exception, `sys.exit()`): released as after a death, so the next
    /// holder is told. Its own thread's reads are given back.
    fn drop(&mut self) {
        let me = buslock::identity::tid();
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some((t, held)) = st.writer.take()
            && t == me
        {
            let _ = self.inner.release_write(held, true);
        }
        for (t, held) in std::mem::take(&mut st.readers) {
            if t == me {
                let _ = self.inner.release_read(held);
            }
        }
    }
}

/// What `RwLock.read()` and `RwLock.write()` return: a context manager.
#[pyclass(name = "RwLockHold", module = "buslock", frozen)]
pub(crate) struct PyHold {
    lock: Py<PyRwLock>,
    write: bool,
}

#[pymethods]
impl PyHold {
    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<PyRwLock>> {
        let lock = self.lock.get();
        if self.write {
            lock.acquire_write(py, Truthy(true), Some(-1.0))?;
        } else {
            lock.acquire_read(py, Truthy(true), Some(-1.0))?;
        }
        Ok(self.lock.clone_ref(py))
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let lock = self.lock.get();
        if self.write {
            lock.release_write(py)?;
        } else {
            lock.release_read(py)?;
        }
        Ok(false)
    }
}
