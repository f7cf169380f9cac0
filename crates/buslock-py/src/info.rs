//! Read-only snapshots handed to Python: who holds a lock ([`PyOwner`]), who
//! waits ([`PyWaiter`]), what happened ([`PyEvent`]) and the statistics
//! ([`PyStats`]). Times are floats: durations in seconds, instants in
//! seconds since the epoch (as `time.time()`).

use pyo3::prelude::*;

use crate::time::{epoch_seconds, seconds};

/// The holder of a lock, as recorded by the holder itself.
#[pyclass(name = "Owner", module = "buslock", frozen)]
pub(crate) struct PyOwner {
    /// Process id of the holder.
    #[pyo3(get)]
    pid: u32,
    /// Thread id of the holder (`threading.get_native_id()` in that thread).
    #[pyo3(get)]
    tid: u32,
    /// Holder process start time, clock ticks after boot.
    #[pyo3(get)]
    start_time: u64,
    /// Holder program name (the script name for Python programs).
    #[pyo3(get)]
    program: String,
    /// When the holder took the lock, seconds since the epoch.
    #[pyo3(get)]
    since: f64,
    /// How long it has held the lock as of this read, in seconds.
    #[pyo3(get)]
    held_for: f64,
    /// Whether the holder took over from a holder that died.
    #[pyo3(get)]
    took_over_from_dead: bool,
    /// What the holder process is doing now: "running", "sleeping",
    /// "uninterruptible sleep", "stopped", "zombie" or "gone".
    #[pyo3(get)]
    state: &'static str,
    /// Whether the record was torn (its writer died while writing it).
    #[pyo3(get)]
    torn: bool,
    /// Whether the holder still exists, and so really holds the lock
    /// (False: it died holding it; the lock is free and the next holder is
    /// told). The library decides, as for the `buslock` command.
    #[pyo3(get)]
    alive: bool,
    /// The holder in words, as the library and the `buslock` command say
    /// it (`str(owner)`).
    text: String,
}

#[pymethods]
impl PyOwner {
    /// `pid 1234 tid 1240 (motor), held for 2.31s`: the wording of the
    /// library's errors and of the `buslock` command.
    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Owner(pid={}, tid={}, program={:?}, since={:.6}, held_for={:.6}, state={:?})",
            self.pid, self.tid, self.program, self.since, self.held_for, self.state
        )
    }
}

impl From<buslock::Owner> for PyOwner {
    fn from(o: buslock::Owner) -> Self {
        let alive = o.is_alive();
        let text = o.to_string();
        PyOwner {
            pid: o.pid,
            tid: o.tid,
            start_time: o.start_time,
            program: o.program,
            since: epoch_seconds(o.since),
            held_for: seconds(o.held_for),
            took_over_from_dead: o.took_over_from_dead,
            state: o.state.as_str(),
            torn: o.torn,
            alive,
            text,
        }
    }
}

/// A thread waiting for a lock.
#[pyclass(name = "Waiter", module = "buslock", frozen, get_all)]
pub(crate) struct PyWaiter {
    /// Process id.
    pid: u32,
    /// Thread id.
    tid: u32,
    /// Process start time, clock ticks after boot.
    start_time: u64,
    /// When it started waiting, seconds since the epoch.
    since: f64,
    /// How long it has waited as of this read, in seconds.
    waiting_for: f64,
    /// What the waiting process is doing now (see `Owner.state`).
    state: &'static str,
}

#[pymethods]
impl PyWaiter {
    fn __repr__(&self) -> String {
        format!(
            "Waiter(pid={}, tid={}, waiting_for={:.6}, state={:?})",
            self.pid, self.tid, self.waiting_for, self.state
        )
    }
}

impl From<buslock::Waiter> for PyWaiter {
    fn from(w: buslock::Waiter) -> Self {
        PyWaiter {
            pid: w.pid,
            tid: w.tid,
            start_time: w.start_time,
            since: epoch_seconds(w.since),
            waiting_for: seconds(w.waiting_for),
            state: w.state.as_str(),
        }
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// One completed hold of a lock, from its ring of recent events.
#[pyclass(name = "Event", module = "buslock", frozen, get_all)]
pub(crate) struct PyEvent {
    /// Sequence number of the hold.
    seq: u64,
    /// Holder process id.
    pid: u32,
    /// Holder thread id.
    tid: u32,
    /// Holder program name.
    program: String,
    /// When the lock was taken, seconds since the epoch.
    acquired: f64,
    /// How long the holder waited for it, in seconds.
    waited: f64,
    /// How long it was held, in seconds.
    held: f64,
    /// Whether the holder took over from a holder that died.
    previous_owner_died: bool,
    /// A read (shared) hold of a readers-writer lock; False for a write
    /// or a mutex hold.
    read: bool,
    /// Not a completed hold: the holder of a readers-writer lock was found
    /// dead holding it (`held` runs until then).
    died: bool,
}

#[pymethods]
impl PyEvent {
    fn __repr__(&self) -> String {
        format!(
            "Event(seq={}, pid={}, tid={}, program={:?}, waited={:.6}, held={:.6}, \
             previous_owner_died={}, read={}, died={})",
            self.seq,
            self.pid,
            self.tid,
            self.program,
            self.waited,
            self.held,
            py_bool(self.previous_owner_died),
            py_bool(self.read),
            py_bool(self.died),
        )
    }
}

impl From<buslock::Event> for PyEvent {
    fn from(e: buslock::Event) -> Self {
        PyEvent {
            seq: e.seq,
            pid: e.pid,
            tid: e.tid,
            program: e.program,
            acquired: epoch_seconds(e.acquired),
            waited: seconds(e.waited),
            held: seconds(e.held),
            previous_owner_died: e.previous_owner_died,
            read: e.read,
            died: e.died,
        }
    }
}

/// The longest hold seen and who held it.
#[pyclass(name = "LongestHold", module = "buslock", frozen, get_all)]
pub(crate) struct PyLongestHold {
    /// How long, in seconds.
    duration: f64,
    /// Holder process id.
    pid: u32,
    /// Holder thread id.
    tid: u32,
    /// Holder program name.
    program: String,
    /// When the hold began, seconds since the epoch.
    at: f64,
}

#[pymethods]
impl PyLongestHold {
    fn __repr__(&self) -> String {
        format!(
            "LongestHold(duration={:.6}, pid={}, tid={}, program={:?})",
            self.duration, self.pid, self.tid, self.program
        )
    }
}

/// A snapshot of a lock's statistics, shared by all its users since the
/// lock file was created or the statistics were last reset. The same
/// numbers as the Rust API's `Stats`; durations in seconds.
#[pyclass(name = "Stats", module = "buslock", frozen, get_all)]
pub(crate) struct PyStats {
    /// Successful acquisitions.
    acquisitions: u64,
    /// Acquisitions that had to wait for another holder.
    contended: u64,
    /// Acquisitions that found the previous holder dead.
    owner_died: u64,
    /// Waits that gave up at their timeout.
    timeouts: u64,
    /// Sum of the wait times of contended acquisitions, in seconds.
    total_wait: f64,
    /// Sum of the hold times, in seconds.
    total_hold: f64,
    /// Wait-time histogram of contended acquisitions: counts per log2
    /// bucket (see `Stats.bucket_bounds`).
    wait_histogram: Vec<u64>,
    /// Hold-time histogram: counts per log2 bucket.
    hold_histogram: Vec<u64>,
    /// The longest hold, if any hold finished.
    longest_hold: Option<Py<PyLongestHold>>,
    /// Since when these numbers count, seconds since the epoch.
    since: f64,
}

fn quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let hist = buslock::Histogram {
        buckets: std::array::from_fn(|i| buckets.get(i).copied().unwrap_or(0)),
    };
    hist.quantile_upper_bound(q).map(seconds)
}

#[pymethods]
impl PyStats {
    /// Contended acquisitions as a fraction of all (0.0 when none).
    fn contention_ratio(&self) -> f64 {
        if self.acquisitions == 0 {
            0.0
        } else {
            self.contended as f64 / self.acquisitions as f64
        }
    }

    /// An upper bound, in seconds, for the `q` quantile (0.0 to 1.0) of the
    /// wait times of contended acquisitions; None when there were none.
    fn wait_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.wait_histogram, q)
    }

    /// An upper bound, in seconds, for the `q` quantile of the hold times;
    /// None when no hold finished.
    fn hold_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.hold_histogram, q)
    }

    /// Lower and upper bound, in seconds, of histogram bucket `i` (the last
    /// bucket has no upper bound: None).
    #[staticmethod]
    fn bucket_bounds(i: usize) -> PyResult<(f64, Option<f64>)> {
        let n = buslock::Histogram {
            buckets: std::array::from_fn(|_| 0),
        }
        .buckets
        .len();
        if i >= n {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "histogram bucket {i} does not exist; buckets are 0 to {}",
                n - 1
            )));
        }
        let (lower, upper) = buslock::Histogram::bounds(i);
        Ok((seconds(lower), upper.map(seconds)))
    }

    fn __repr__(&self) -> String {
        format!(
            "Stats(acquisitions={}, contended={}, owner_died={}, timeouts={}, total_wait={:.6}, \
             total_hold={:.6})",
            self.acquisitions,
            self.contended,
            self.owner_died,
            self.timeouts,
            self.total_wait,
            self.total_hold
        )
    }
}

impl PyStats {
    /// Convert a library snapshot.
    pub(crate) fn new(py: Python<'_>, s: buslock::Stats) -> PyResult<Self> {
        let longest_hold = s
            .longest_hold
            .map(|l| {
                Py::new(
                    py,
                    PyLongestHold {
                        duration: seconds(l.duration),
                        pid: l.pid,
                        tid: l.tid,
                        program: l.program,
                        at: epoch_seconds(l.at),
                    },
                )
            })
            .transpose()?;
        Ok(PyStats {
            acquisitions: s.acquisitions,
            contended: s.contended,
            owner_died: s.owner_died,
            timeouts: s.timeouts,
            total_wait: seconds(s.total_wait),
            total_hold: seconds(s.total_hold),
            wait_histogram: s.wait_histogram.buckets.to_vec(),
            hold_histogram: s.hold_histogram.buckets.to_vec(),
            longest_hold,
            since: epoch_seconds(s.since),
        })
    }
}
