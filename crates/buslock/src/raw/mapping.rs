//! The shared mapping of one lock file and its one-time initialisation.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{FlockOperation, flock};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};

use super::layout::{
    FILE_SIZE, INIT_NONE, INIT_READY, INIT_RUNNING, LAYOUT_VERSION, LockPage, MAGIC, RwPage, Text,
};
use super::mutex::RawMutex;

/// A lock file mapped `MAP_SHARED` read-write, [`FILE_SIZE`] bytes.
///
/// The mapping is unmapped on drop unless [`Mapping::leak`] was called; the
/// layer above leaks it when a guard was leaked, because the kernel would
/// otherwise find a robust-list entry pointing into unmapped memory.
pub struct Mapping {
    page: NonNull<LockPage>,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory whose every field is an
// atomic; it may be used from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out `&LockPage`.
unsafe impl Sync for Mapping {}

/// What [`Mapping::initialize`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// Another process had already initialised the file.
    AlreadyReady,
    /// This call initialised it.
    Initialised,
}

/// Why [`Mapping::initialize`] did not initialise.
#[derive(Debug)]
pub enum InitError {
    /// The init state or magic holds a value no buslock writes: the file is
    /// not a (complete) buslock file and is left untouched.
    Unrecognised {
        /// The init state found.
        state: u32,
        /// The magic found.
        magic: u64,
    },
    /// `flock` failed.
    Sys(std::io::Error),
}

/// What the initialiser writes into the header.
pub struct HeaderInit<'a> {
    /// Page size of this machine.
    pub page_size: u32,
    /// Inode of this process's PID namespace.
    pub pid_ns: u64,
    /// Creation time, ns since the Unix epoch.
    pub created_real_ns: u64,
    /// [`super::layout::abi_tag`] bytes.
    pub abi: &'a [u8; super::layout::TEXT_BYTES],
    /// This boot's id.
    pub boot_id: [u64; 2],
    /// What the file will hold (`layout::KIND_*`).
    pub kind: u32,
    /// Initialise even though the file is ready: it is from an earlier
    /// boot (the caller checked the boot id).
    pub stale_boot: bool,
}

impl Mapping {
    /// `mmap(NULL, FILE_SIZE, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
    ///
    /// The caller has checked that the file is a regular file of at least
    /// [`FILE_SIZE`] bytes; a file truncated later by a hostile writer makes
    /// accesses fault with `SIGBUS` (a limit documented in RELIABILITY.md).
    ///
    /// # References
    ///
    /// `mmap(2)`
    pub fn map(fd: OwnedFd) -> std::io::Result<Self> {
        // SAFETY: a fresh shared mapping of the file chosen by the kernel;
        // it aliases no Rust object. All access goes through atomics, which
        // tolerate concurrent writers in other processes.
        let ptr = unsafe {
            mmap(
                core::ptr::null_mut(),
                FILE_SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        let page = NonNull::new(ptr.cast::<LockPage>())
            .ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        Ok(Mapping { page, fd })
    }

    /// `mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0)`: a mapping
    /// for inspection by a user who may read the lock file but not write
    /// it.
    ///
    /// Any store through it faults (`SIGSEGV`): the caller must only ever
    /// load from [`Mapping::page`], and never lock, initialise or clear
    /// anything through it. `buslock::LockView` is the one user, and has
    /// no method that writes.
    ///
    /// # References
    ///
    /// `mmap(2)`
    pub fn map_read_only(fd: OwnedFd) -> std::io::Result<Self> {
        // SAFETY: as in `map`; the mapping is read-only, which only limits
        // what may be done through it (see the doc comment).
        let ptr = unsafe {
            mmap(
                core::ptr::null_mut(),
                FILE_SIZE,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        let page = NonNull::new(ptr.cast::<LockPage>())
            .ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        Ok(Mapping { page, fd })
    }

    /// The mapped page.
    #[inline]
    pub fn page(&self) -> &LockPage {
        // SAFETY: `page` points to FILE_SIZE >= size_of::<LockPage>() mapped,
        // page-aligned bytes that stay mapped while `self` lives; every field
        // is an atomic, valid for any bit pattern.
        unsafe { self.page.as_ref() }
    }

    /// The mapped page seen as a readers-writer lock's page. Only
    /// meaningful when the header's kind says so (the caller checked).
    #[inline]
    pub fn rw_page(&self) -> &RwPage {
        // SAFETY: as in `page`: FILE_SIZE >= size_of::<RwPage>() mapped,
        // page-aligned bytes (asserted in layout.rs) that stay mapped while
        // `self` lives; every field is an atomic, valid for any bits.
        unsafe { self.page.cast::<RwPage>().as_ref() }
    }

    /// The robust mutex. Only meaningful once the init state is READY.
    #[inline]
    pub fn mutex(&self) -> &RawMutex {
        &self.page().mutex.mutex
    }

    /// The file descriptor of the lock file.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Keep the memory mapped for the rest of the process's life.
    pub fn leak(self) {
        core::mem::forget(self);
    }

    /// Initialise the file unless it is ready (and, with
    /// [`HeaderInit::stale_boot`], of this boot): under an exclusive `flock`
    /// on the file, zero it, write the header, free the lock word, write
    /// the boot id, then publish [`INIT_READY`] with release ordering.
    ///
    /// The `flock` is kept until [`Mapping::end_init`]; a process that dies
    /// while initialising loses it, and the next opener initialises again.
    pub fn initialize(&self, header: &HeaderInit<'_>) -> Result<InitOutcome, InitError> {
        flock(self.fd.as_fd(), FlockOperation::LockExclusive)
            .map_err(|e| InitError::Sys(e.into()))?;
        let page = self.page();
        let state = page.header.init_state.load(Ordering::Acquire);
        let magic = page.header.magic.load(Ordering::Relaxed);
        if state == INIT_READY {
            let current = page
                .header
                .boot_id
                .iter()
                .zip(header.boot_id)
                .all(|(w, id)| w.load(Ordering::Acquire) == id);
            if !header.stale_boot || current || magic != MAGIC {
                return Ok(InitOutcome::AlreadyReady);
            }
            // From an earlier boot: every thread that used it is gone
            // (threads do not survive a reboot), and every opener of this
            // boot either waits for our flock or checks the boot id first.
        }
        if !(state == INIT_NONE || state == INIT_RUNNING || state == INIT_READY)
            || !(magic == 0 || magic == MAGIC)
        {
            return Err(InitError::Unrecognised { state, magic });
        }
        page.header
            .init_state
            .store(INIT_RUNNING, Ordering::Relaxed);
        // Zero everything after the header's first 16 bytes (magic, version,
        // init state) word by word.
        // SAFETY: the page is FILE_SIZE bytes, 8-aligned; AtomicU64 has the
        // size and alignment of u64 and is valid for any bits.
        let words: &[AtomicU64] = unsafe {
            core::slice::from_raw_parts(self.page.as_ptr().cast::<AtomicU64>(), FILE_SIZE / 8)
        };
        for word in &words[2..] {
            word.store(0, Ordering::Relaxed);
        }
        let h = &page.header;
        h.magic.store(MAGIC, Ordering::Relaxed);
        h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        h.file_size.store(FILE_SIZE as u32, Ordering::Relaxed);
        h.page_size.store(header.page_size, Ordering::Relaxed);
        h.pid_ns.store(header.pid_ns, Ordering::Relaxed);
        h.created_real_ns
            .store(header.created_real_ns, Ordering::Relaxed);
        Text::store(&h.abi, header.abi);
        h.kind.store(header.kind, Ordering::Relaxed);
        page.stats
            .reset_real_ns
            .store(header.created_real_ns, Ordering::Relaxed);
        // We hold the creation flock and the state was not READY (or the
        // file is from an earlier boot), so no thread uses the lock.
        self.mutex().init();
        // Last before READY, with release ordering: an opener that sees
        // this boot id (acquire) sees the whole initialised file.
        for (word, id) in h.boot_id.iter().zip(header.boot_id) {
            word.store(id, Ordering::Release);
        }
        page.header.init_state.store(INIT_READY, Ordering::Release);
        Ok(InitOutcome::Initialised)
    }

    /// Drop the creation `flock` taken by [`Mapping::initialize`].
    pub fn end_init(&self) {
        // Unlocking an flock we hold cannot fail in a way we could handle;
        // the lock also goes away when the descriptor is closed.
        let _ = flock(self.fd.as_fd(), FlockOperation::Unlock);
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `page` came from mmap with FILE_SIZE bytes and nothing
        // borrows it any more (`&self` borrows ended). Robust-list entries
        // cannot point here: the layer above leaks the mapping while a lock
        // taken through it may still be held.
        let _ = unsafe { munmap(self.page.as_ptr().cast(), FILE_SIZE) };
    }
}
