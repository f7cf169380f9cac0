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
use crate::wait;

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

/// A hold kept between `acquire_*()` and `release_*()`: how it is taken,
/// kept for its thread in [`State`] and given back, so that reads and
/// writes share one bookkeeping ([`PyRwLock::acquire`],
/// [`PyRwLock::release`]).
trait Hold: Sized + Send {
    /// `"read"` or `"write"`, as in the method names.
    const KIND: &'static str;

    /// Take it as `wait` allows.
    fn take(rw: &buslock::RwLock, wait: Wait<'_>) -> buslock::Result<Option<Self>>;

    /// Whether taking it was told that a writer died.
    fn died(&self) -> bool;

    /// Keep it as thread `me`'s.
    fn keep(self, st: &mut State, me: u32);

    /// Take out thread `me`'s, if it has one.
    fn take_out(st: &mut State, me: u32) -> Option<Self>;

    /// Give it back (`abandoned`: a write is released as after a death).
    fn give_back(self, rw: &buslock::RwLock, abandoned: bool)
    -> Result<(), (buslock::Error, Self)>;
}

impl Hold for ReadHeld {
    const KIND: &'static str = "read";

    fn take(rw: &buslock::RwLock, wait: Wait<'_>) -> buslock::Result<Option<Self>> {
        Ok(rw.acquire_read(wait)?.map(ReadGuard::into_held))
    }

    fn died(&self) -> bool {
        self.previous_owner_died()
    }

    fn keep(self, st: &mut State, me: u32) {
        st.readers.push((me, self));
    }

    fn take_out(st: &mut State, me: u32) -> Option<Self> {
        let i = st.readers.iter().position(|(t, _)| *t == me)?;
        Some(st.readers.swap_remove(i).1)
    }

    fn give_back(
        self,
        rw: &buslock::RwLock,
        _abandoned: bool,
    ) -> Result<(), (buslock::Error, Self)> {
        rw.release_read(self)
    }
}

impl Hold for WriteHeld {
    const KIND: &'static str = "write";

    fn take(rw: &buslock::RwLock, wait: Wait<'_>) -> buslock::Result<Option<Self>> {
        Ok(rw.acquire_write(wait)?.map(WriteGuard::into_held))
    }

    fn died(&self) -> bool {
        self.previous_owner_died()
    }

    fn keep(self, st: &mut State, me: u32) {
        st.writer = Some((me, self));
    }

    fn take_out(st: &mut State, me: u32) -> Option<Self> {
        match st.writer.take() {
            Some((t, held)) if t == me => Some(held),
            other => {
                st.writer = other;
                None
            }
        }
    }

    fn give_back(
        self,
        rw: &buslock::RwLock,
        abandoned: bool,
    ) -> Result<(), (buslock::Error, Self)> {
        rw.release_write(self, abandoned)
    }
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
        wait::interruptible(py, wait::no_check, |interrupted| {
            take(
                &self.inner,
                Wait::Interruptible {
                    timeout: limit,
                    interrupted,
                },
            )
        })
    }

    /// Take a hold of kind `H` as `blocking` and `timeout` say, and keep
    /// its proof for this thread. True when taken.
    fn acquire<H: Hold>(
        &self,
        py: Python<'_>,
        blocking: Truthy,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let Truthy(blocking) = blocking;
        let limit = wait::limit(blocking, timeout)?;
        let Some(held) = self.wait(py, limit, blocking, H::take)? else {
            return Ok(false);
        };
        let mut st = self.state();
        st.previous_owner_died = held.died();
        held.keep(&mut st, buslock::identity::tid());
        Ok(true)
    }

    /// Give back this thread's hold of kind `H`; it stays kept when the
    /// release fails.
    fn release<H: Hold>(&self, py: Python<'_>) -> PyResult<()> {
        let me = buslock::identity::tid();
        let mut st = self.state();
        let Some(held) = H::take_out(&mut st, me) else {
            return Err(self.not_held(H::KIND));
        };
        held.give_back(&self.inner, false).map_err(|(e, held)| {
            held.keep(&mut st, me);
            to_py(py, e)
        })
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
        self.acquire::<ReadHeld>(py, blocking, timeout)
    }

    /// Give back this thread's share.
    fn release_read(&self, py: Python<'_>) -> PyResult<()> {
        self.release::<ReadHeld>(py)
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
        self.acquire::<WriteHeld>(py, blocking, timeout)
    }

    /// Release this thread's write hold.
    fn release_write(&self, py: Python<'_>) -> PyResult<()> {
        self.release::<WriteHeld>(py)
    }

    /// Turn this thread's write hold into a read hold, with no moment in
    /// between where another writer could get in.
    fn downgrade(&self, py: Python<'_>) -> PyResult<()> {
        let me = buslock::identity::tid();
        let mut st = self.state();
        let Some(held) = WriteHeld::take_out(&mut st, me) else {
            return Err(PyRuntimeError::new_err(format!(
                "downgrade: this thread does not write lock '{}' through this RwLock object",
                self.inner.name()
            )));
        };
        match self.inner.downgrade_held(held) {
            Ok(read) => {
                read.keep(&mut st, me);
                Ok(())
            }
            Err((e, held)) => {
                held.keep(&mut st, me);
                Err(to_py(py, e))
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

    /// Zero the statistics of both sides for every user of the lock:
    /// takes the lock to write briefly, waiting as `with rw.write():` does
    /// (without the GIL; Ctrl-C raises KeyboardInterrupt and nothing is
    /// reset). The reset's own write is the first the new statistics
    /// count. If the previous writer had died, `previous_owner_died` says
    /// so afterwards, as after an acquire.
    fn reset_stats(&self, py: Python<'_>) -> PyResult<()> {
        let died = self
            .wait(py, None, true, |rw, wait| {
                Ok(rw.acquire_write(wait)?.map(|guard| {
                    guard.reset_stats();
                    guard.previous_owner_died()
                }))
            })?
            .expect("a wait without timeout ends with the lock or an error");
        if died {
            self.state().previous_owner_died = true;
        }
        Ok(())
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
        if let Some(held) = WriteHeld::take_out(st, me) {
            let _ = held.give_back(&self.inner, true);
        }
        while let Some(held) = ReadHeld::take_out(st, me) {
            let _ = held.give_back(&self.inner, true);
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
