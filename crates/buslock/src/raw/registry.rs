//! The lock-order registry file (`.lockdep` in a lock directory): its
//! layout and its shared mapping.
//!
//! One file per lock directory, [`REGISTRY_SIZE`] bytes, mapped
//! `MAP_SHARED` read-write by every process that takes buslock locks there.
//! Every field is an atomic; readers treat every value as untrusted input.
//!
//! | block | content | written by |
//! |-------|---------|------------|
//! | header (64 B) | magic `BUSLKDEP`, layout version, file size, class capacity, witness-ring length, class count, next witness slot, reset generation | the creator once; the count and slot under the registry `flock` |
//! | classes | [`MAX_CLASSES`] × [`ClassSlot`]: a lock name (length, 64 bytes) | appended under the `flock`; the count is published after the name |
//! | edges | [`MAX_CLASSES`]² bits, row `from`, column `to`: "a thread holding `from` acquired `to`" | set under the `flock` (`fetch_or`), only ever set; cleared only by `buslock order --reset` under the `flock` |
//! | cyclic | same shape: edges that closed a cycle when first taken (`warn` mode) | with the edge bit, before it |
//! | witnesses | [`WITNESS_SLOTS`] × [`WitnessSlot`]: who first took an edge, or had an inversion refused, and when | under the `flock`, each slot behind a sequence counter |
//!
//! A process killed at any point while holding the `flock` leaves at worst
//! a class name not yet counted (overwritten by the next registration), a
//! witness with an odd sequence (skipped by readers) or a witness whose edge
//! bit is not set yet (ignored: edges come from the bitmap only). The bit is
//! set last, so the graph never holds an edge without the acquisition that
//! made it.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64};
use std::os::fd::{AsFd, OwnedFd};

use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};

use super::layout::Text;

/// `b"BUSLKDEP"` read as a little-endian `u64`.
pub const REGISTRY_MAGIC: u64 = u64::from_le_bytes(*b"BUSLKDEP");
/// Version of this layout.
pub const REGISTRY_VERSION: u32 = 1;
/// How many lock classes (lock names) one directory's registry records.
pub const MAX_CLASSES: usize = 128;
/// How many witnesses the ring keeps.
pub const WITNESS_SLOTS: usize = 128;
/// Bytes of a class name (the longest lock name).
pub const NAME_BYTES: usize = 64;
/// How many held locks a witness lists.
pub const WITNESS_HELD: usize = 8;
/// `u64` words per edge-bitmap row.
pub const ROW_WORDS: usize = MAX_CLASSES / 64;

/// Witness kind: the first acquisition that took an edge.
pub const WITNESS_EDGE: u64 = 1;
/// Witness kind: an acquisition refused in `error` mode because it would
/// have closed a cycle.
pub const WITNESS_REFUSED: u64 = 2;

/// Registry header.
#[repr(C)]
pub struct RegistryHeader {
    /// [`REGISTRY_MAGIC`] once initialised (written last).
    pub magic: AtomicU64,
    /// [`REGISTRY_VERSION`].
    pub version: AtomicU32,
    /// [`REGISTRY_SIZE`].
    pub file_size: AtomicU32,
    /// [`MAX_CLASSES`].
    pub max_classes: AtomicU32,
    /// [`WITNESS_SLOTS`].
    pub witness_slots: AtomicU32,
    /// Classes in use (published after the name is written).
    pub class_count: AtomicU32,
    /// Unused, zero.
    pub _pad: AtomicU32,
    /// Witnesses ever written (the next slot is this modulo the ring).
    pub witness_next: AtomicU64,
    /// Bumped by every reset.
    pub generation: AtomicU64,
    /// Creation time, ns since the Unix epoch.
    pub created_real_ns: AtomicU64,
    /// Unused, zero.
    pub _reserved: AtomicU64,
}

/// One lock class: a lock name.
#[repr(C)]
pub struct ClassSlot {
    /// Length of the name in bytes.
    pub len: AtomicU64,
    /// The name, NUL-padded.
    pub name: [AtomicU64; NAME_BYTES / 8],
}

/// One witness: who took an edge (or was refused one), and when.
#[repr(C)]
pub struct WitnessSlot {
    /// Even: stable; odd: being written (or its writer died); 0: empty.
    pub seq: AtomicU64,
    /// Kind (bits 32..40), `from` class (16..32), `to` class (0..16).
    pub what: AtomicU64,
    /// Process id (high 32 bits) and thread id (low 32 bits).
    pub ident: AtomicU64,
    /// Process start time, clock ticks after boot.
    pub start_time: AtomicU64,
    /// When, ns since the Unix epoch.
    pub real_ns: AtomicU64,
    /// Locks held at the time: [`WITNESS_HELD`] × `u16` class indices,
    /// `0xffff` for none.
    pub held: [AtomicU64; WITNESS_HELD / 4],
    /// Registry generation it was written in.
    pub generation: AtomicU64,
    /// Program name (or the handle's label).
    pub program: Text,
}

/// The whole registry file.
#[repr(C)]
pub struct RegistryPage {
    /// Header.
    pub header: RegistryHeader,
    /// Class table.
    pub classes: [ClassSlot; MAX_CLASSES],
    /// Edge bitmap: bit `to` of row `from`.
    pub edges: [AtomicU64; MAX_CLASSES * ROW_WORDS],
    /// Same shape: edges that closed a cycle when they were taken (in
    /// `warn` mode); set together with (before) the edge bit.
    pub cyclic: [AtomicU64; MAX_CLASSES * ROW_WORDS],
    /// Witness ring.
    pub witnesses: [WitnessSlot; WITNESS_SLOTS],
}

/// Size of the registry file in bytes.
pub const REGISTRY_SIZE: usize = core::mem::size_of::<RegistryPage>();

const _: () = assert!(REGISTRY_SIZE % 8 == 0);
const _: () = assert!(core::mem::size_of::<RegistryHeader>() == 64);
const _: () = assert!(core::mem::size_of::<WitnessSlot>() == 96);

/// The registry file mapped `MAP_SHARED` read-write.
pub struct RegistryMap {
    page: NonNull<RegistryPage>,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory whose every field is an
// atomic; it may be used from any thread.
unsafe impl Send for RegistryMap {}
// SAFETY: as above; `&RegistryMap` only hands out `&RegistryPage`.
unsafe impl Sync for RegistryMap {}

impl RegistryMap {
    /// `mmap(NULL, REGISTRY_SIZE, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
    ///
    /// The caller has checked that `fd` is a regular file of exactly
    /// [`REGISTRY_SIZE`] bytes; one truncated later by a hostile writer
    /// makes accesses fault with `SIGBUS`, as for lock files.
    ///
    /// # References
    ///
    /// `mmap(2)`
    pub fn map(fd: OwnedFd) -> std::io::Result<Self> {
        // SAFETY: a fresh shared mapping chosen by the kernel; it aliases
        // no Rust object, and every access goes through atomics, which
        // tolerate concurrent writers in other processes.
        let ptr = unsafe {
            mmap(
                core::ptr::null_mut(),
                REGISTRY_SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        let page = NonNull::new(ptr.cast::<RegistryPage>())
            .ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        Ok(RegistryMap { page, fd })
    }

    /// The mapped registry.
    #[inline]
    pub fn page(&self) -> &RegistryPage {
        // SAFETY: `page` points to REGISTRY_SIZE mapped, page-aligned bytes
        // that stay mapped while `self` lives; every field is an atomic,
        // valid for any bit pattern.
        unsafe { self.page.as_ref() }
    }

    /// The registry file's descriptor (for its `flock`).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

impl Drop for RegistryMap {
    fn drop(&mut self) {
        // SAFETY: `page` came from mmap with REGISTRY_SIZE bytes and no
        // borrow of it outlives `self`.
        let _ = unsafe { munmap(self.page.as_ptr().cast(), REGISTRY_SIZE) };
    }
}
