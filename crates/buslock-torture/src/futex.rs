//! Who holds a lock, according to the kernel: the thread id in the PI futex
//! word, read from the lock file with `pread` (the file is the shared
//! mapping's backing store, so this is the same memory every user sees).
//!
//! The harness uses it as ground truth for "was the victim inside when it
//! was killed": unlike the owner record, the futex word changes in the same
//! atomic instruction (or `FUTEX_LOCK_PI`/`FUTEX_UNLOCK_PI` call) that takes
//! or releases the lock.
//!
//! It relies on glibc's `pthread_mutex_t` layout: the futex word `__lock` is
//! its first field; the mutex sits at [`MUTEX_OFFSET`] in the lock file. For PI mutexes the word holds the
//! owner's tid in its low 30 bits, `FUTEX_OWNER_DIED` in bit 30 and
//! `FUTEX_WAITERS` in bit 31 (`futex(2)`).
//!
//! It also reads the owner record's sequence counter, to count kills that
//! landed while the holder was writing that record.

use std::fs::File;
use std::mem::offset_of;
use std::os::unix::fs::FileExt;
use std::path::Path;

use buslock::raw::layout::{LockPage, OwnerRecord};

/// Offset of the pthread mutex in a lock file (`MutexBlock`).
pub const MUTEX_OFFSET: u64 = offset_of!(LockPage, mutex) as u64;
/// Offset of the owner record's sequence counter in a lock file.
pub const OWNER_SEQ_OFFSET: u64 =
    (offset_of!(LockPage, owner) + offset_of!(OwnerRecord, seq)) as u64;
/// `FUTEX_TID_MASK`.
pub const TID_MASK: u32 = 0x3fff_ffff;

const _: () = assert!(
    cfg!(target_env = "gnu"),
    "the futex-word reader assumes glibc's pthread_mutex_t layout"
);

/// A read-only view of a lock file's futex word.
pub struct FutexWord {
    file: File,
}

impl FutexWord {
    /// Open the lock file at `path` read-only.
    pub fn open(path: &Path) -> Result<FutexWord, String> {
        File::open(path)
            .map(|file| FutexWord { file })
            .map_err(|e| format!("cannot open lock file '{}': {e}", path.display()))
    }

    /// The raw futex word.
    pub fn word(&self) -> Result<u32, String> {
        let mut buf = [0u8; 4];
        self.file
            .read_exact_at(&mut buf, MUTEX_OFFSET)
            .map_err(|e| format!("cannot read the futex word: {e}"))?;
        Ok(u32::from_ne_bytes(buf))
    }

    /// Whether the owner record's sequence counter is odd: its writer is in
    /// the middle of writing it (`OwnerRecord::seq`).
    pub fn owner_record_mid_write(&self) -> Result<bool, String> {
        let mut buf = [0u8; 4];
        self.file
            .read_exact_at(&mut buf, OWNER_SEQ_OFFSET)
            .map_err(|e| format!("cannot read the owner record: {e}"))?;
        Ok(u32::from_ne_bytes(buf) % 2 == 1)
    }

    /// The owner's thread id, 0 when free.
    pub fn owner_tid(&self) -> Result<u32, String> {
        Ok(self.word()? & TID_MASK)
    }
}
