//! The state the holders share outside the lock: a small plain file read and
//! written with `pread`/`pwrite` (no mapping, no `unsafe`). Only a holder
//! may touch it, so any surprise in it is an exclusion violation.
//!
//! | offset | field |
//! |-------:|-------|
//! | 0 | `inside`: pid of the holder inside its critical section, 0 outside |
//! | 8 | `counter`: number of completed increments |
//! | 16 | `first_done`: pid of the first contender that finished (contend runs) |

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// File name of the shared state inside the run directory.
pub const STATE_FILE: &str = "torture.state";

/// The three words, as read in one `pread`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Words {
    /// Pid of the holder inside its critical section, 0 when outside.
    pub inside: u64,
    /// Completed increments.
    pub counter: u64,
    /// Pid of the first contender that finished its acquisitions.
    pub first_done: u64,
}

/// The shared state file of a run.
pub struct SharedState {
    file: File,
    path: PathBuf,
}

impl SharedState {
    /// Create (or reset to zeros) the state file in `dir`.
    pub fn create(dir: &Path) -> Result<SharedState, String> {
        let path = dir.join(STATE_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| format!("cannot create '{}': {e}", path.display()))?;
        let state = SharedState { file, path };
        state.write(&Words::default())?;
        Ok(state)
    }

    /// Open the state file a harness created in `dir`.
    pub fn open(dir: &Path) -> Result<SharedState, String> {
        let path = dir.join(STATE_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
        Ok(SharedState { file, path })
    }

    /// Read all three words.
    pub fn read(&self) -> Result<Words, String> {
        let mut buf = [0u8; 24];
        self.file
            .read_exact_at(&mut buf, 0)
            .map_err(|e| format!("cannot read '{}': {e}", self.path.display()))?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Words {
            inside: word(0),
            counter: word(1),
            first_done: word(2),
        })
    }

    /// Write all three words in one `pwrite`.
    pub fn write(&self, w: &Words) -> Result<(), String> {
        let mut buf = [0u8; 24];
        buf[..8].copy_from_slice(&w.inside.to_le_bytes());
        buf[8..16].copy_from_slice(&w.counter.to_le_bytes());
        buf[16..].copy_from_slice(&w.first_done.to_le_bytes());
        self.file
            .write_all_at(&buf, 0)
            .map_err(|e| format!("cannot write '{}': {e}", self.path.display()))
    }

    /// Write only the `inside` word.
    pub fn set_inside(&self, pid: u64) -> Result<(), String> {
        self.file
            .write_all_at(&pid.to_le_bytes(), 0)
            .map_err(|e| format!("cannot write '{}': {e}", self.path.display()))
    }

    /// Write only the `counter` word.
    pub fn set_counter(&self, value: u64) -> Result<(), String> {
        self.file
            .write_all_at(&value.to_le_bytes(), 8)
            .map_err(|e| format!("cannot write '{}': {e}", self.path.display()))
    }
}
