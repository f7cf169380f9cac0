//! [`Handle`]: one primitive's lock file as its user sees it over time:
//! the file opened first and those that replaced it at the lock path (the
//! generation chain), each mapped, for taking the lock and for inspection.
//! Generic over the page layout ([`Page`]): a [`crate::Mutex`] keeps a
//! `Handle<LockPage>`, a [`crate::RwLock`] a `Handle<RwPage>`; the kind in
//! the file's header says which, and a file of the other kind is refused.
//!
//! # Following a replaced file
//!
//! A lock file unlinked or replaced while in use would silently split its
//! users into two locks. So each user checks, at most every
//! [`CHECK_INTERVAL`] (at its first wait or release after that long, at
//! once when another user retired the file), that its file is still the
//! one at the path; if not, it opens (creating if need be) the file now
//! there as its next generation and marks the old one retired, which
//! makes every other user of the old file move at its next acquisition.
//! Inspection ([`Handle::follow`]) moves too, but never creates a file.
//!
//! Generations are kept mapped while the handle lives (a holder on an old
//! one releases it there, and a thread's robust list may point into any of
//! them), at most [`MAX_GENERATIONS`] of them: a file replaced more often
//! than that under one handle is [`Error::ReplacedTooOften`].

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex as StdMutex, OnceLock, PoisonError};
use std::time::Duration;

use super::{LockDir, LockFile, OpenMode};
use crate::clock;
use crate::error::{Error, Result};
use crate::raw::layout::{Header, KIND_MUTEX, KIND_RWLOCK};
use crate::raw::{LockPage, Mapping, RwPage};

/// How often a process checks that its lock file is still the one at the
/// lock path: at its first wait or release after this long since the last
/// check (at once when another process retired the file).
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How many times one handle follows a replaced lock file before it
/// reports [`Error::ReplacedTooOften`].
pub const MAX_GENERATIONS: usize = 16;

/// A page layout a lock file can hold: its kind in the header, and how to
/// see a mapping as it.
pub trait Page: 'static {
    /// The header kind of files of this layout (`layout::KIND_*`).
    const KIND: u32;
    /// The mapping seen as this page (the caller checked the kind).
    fn of(map: &Mapping) -> &Self;
    /// The header.
    fn header(&self) -> &Header;
}

impl Page for LockPage {
    const KIND: u32 = KIND_MUTEX;
    #[inline]
    fn of(map: &Mapping) -> &Self {
        map.page()
    }
    #[inline]
    fn header(&self) -> &Header {
        &self.header
    }
}

impl Page for RwPage {
    const KIND: u32 = KIND_RWLOCK;
    #[inline]
    fn of(map: &Mapping) -> &Self {
        map.rw_page()
    }
    #[inline]
    fn header(&self) -> &Header {
        &self.header
    }
}

/// A named lock's file and the files that replaced it (see the module
/// docs).
pub struct Handle<P: Page> {
    name: String,
    path: PathBuf,
    dir: LockDir,
    /// The lock file opened first: generation 0.
    first: Option<LockFile>,
    /// Files that replaced it at the path (generation `i + 1` in slot `i`);
    /// filled in order and kept while the handle lives.
    later: Vec<OnceLock<LockFile>>,
    /// Generation of the file in use.
    current: AtomicUsize,
    /// `CLOCK_MONOTONIC` ns after which the next release checks that the
    /// file is still the one at the path.
    next_check_ns: AtomicU64,
    /// Set when the next acquisition must take the slow path to check the
    /// file (a check at release failed).
    attention: AtomicBool,
    /// Serialises moving to a new file within this process.
    moving: StdMutex<()>,
    /// The generation [`Handle::follow`] last reported, so that a move made
    /// elsewhere (an inspection, an acquisition) is reported by the next
    /// `follow`.
    reported: AtomicUsize,
    page: PhantomData<fn() -> P>,
}

impl<P: Page> Handle<P> {
    /// Open (with [`OpenMode::Create`], create if missing) lock `name`, of
    /// `P`'s kind, in `dir`. `name` must already be valid.
    ///
    /// # Errors
    ///
    /// Those of [`LockFile::open_kind`].
    pub fn open(dir: LockDir, name: &str, mode: OpenMode) -> Result<Self> {
        let file = LockFile::open_kind(&dir, name, mode, P::KIND)?;
        Ok(Handle {
            name: name.to_owned(),
            path: file.path.clone(),
            dir,
            first: Some(file),
            later: (1..MAX_GENERATIONS).map(|_| OnceLock::new()).collect(),
            current: AtomicUsize::new(0),
            next_check_ns: AtomicU64::new(clock::now_ns() + CHECK_INTERVAL.as_nanos() as u64),
            attention: AtomicBool::new(false),
            moving: StdMutex::new(()),
            reported: AtomicUsize::new(0),
            page: PhantomData,
        })
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock directory.
    pub fn dir(&self) -> &LockDir {
        &self.dir
    }

    /// The generation in use.
    #[inline]
    pub fn generation(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Lock file generation `generation` (0 is the one opened first).
    #[inline]
    pub fn file(&self, generation: usize) -> &LockFile {
        // `first` is only taken by `leak`; later generations are published
        // before `current` names them.
        let file = match generation {
            0 => self.first.as_ref(),
            g => self.later[g - 1].get(),
        };
        file.expect("lock file generation published before use")
    }

    /// The page of generation `generation`.
    #[inline]
    pub fn page(&self, generation: usize) -> &P {
        P::of(&self.file(generation).map)
    }

    /// The page of the file in use.
    #[inline]
    pub fn current_page(&self) -> &P {
        self.page(self.generation())
    }

    /// Every lock file this handle has used, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &LockFile> {
        self.first
            .iter()
            .chain(self.later.iter().filter_map(OnceLock::get))
    }

    /// Whether a check at release failed, so that the next acquisition
    /// must take its slow path (which checks again and reports).
    #[inline]
    pub fn needs_attention(&self) -> bool {
        self.attention.load(Ordering::Relaxed)
    }

    /// Whether it is time to check that generation `generation` is still
    /// the file at the path: [`CHECK_INTERVAL`] passed since the last check,
    /// another process retired the file, or the last check failed.
    pub fn check_due(&self, generation: usize) -> bool {
        self.needs_attention()
            || self.retired(generation)
            || clock::now_ns() >= self.next_check_ns.load(Ordering::Relaxed)
    }

    /// Whether another user said that generation `generation` was replaced.
    #[inline]
    pub fn retired(&self, generation: usize) -> bool {
        self.page(generation)
            .header()
            .retired
            .load(Ordering::Relaxed)
            != 0
    }

    /// Make the next release check the file (after taking over from a
    /// dead holder: the acquisition itself tells of the death first).
    pub fn check_soon(&self) {
        self.next_check_ns.store(0, Ordering::Relaxed);
    }

    /// After a release of generation `generation` at `now`: whether it is
    /// time for [`Handle::check_after_release`].
    #[inline]
    pub fn release_check_due(&self, generation: usize, now: u64) -> bool {
        now >= self.next_check_ns.load(Ordering::Relaxed) || self.retired(generation)
    }

    /// Check, after a release, that the lock file is still the one at the
    /// path, and move to the new one for the next acquisition if not. A
    /// problem found here (say, a link planted at the path) is reported by
    /// the next acquisition.
    #[cold]
    pub fn check_after_release(&self, generation: usize) {
        if self.follow_replacement(generation).is_err() {
            self.attention.store(true, Ordering::Relaxed);
        }
    }

    /// For an acquisition: if generation `generation` is no longer the file
    /// at the lock path (or another process said so by retiring it), open
    /// the file there now (creating it if it is gone) as the next
    /// generation, retire the old one, and return the generation to use.
    ///
    /// # Errors
    ///
    /// Those of opening the new file, or [`Error::ReplacedTooOften`].
    #[cold]
    pub fn follow_replacement(&self, generation: usize) -> Result<usize> {
        let current = self.generation();
        if current != generation {
            return Ok(current); // another thread of this process moved on
        }
        let next = clock::now_ns() + CHECK_INTERVAL.as_nanos() as u64;
        self.next_check_ns.store(next, Ordering::Relaxed);
        self.attention.store(false, Ordering::Relaxed);
        if self.file(generation).is_current(&self.dir) {
            // A retired flag on the file still at the path was not set by
            // buslock; ignore it.
            return Ok(generation);
        }
        match self.move_on(generation, OpenMode::Create)? {
            Some(next) => {
                // Tell every other user of the old file to move too.
                self.page(generation)
                    .header()
                    .retired
                    .store(1, Ordering::Release);
                Ok(next)
            }
            None => Ok(self.generation()),
        }
    }

    /// For inspection: if the lock file in use was unlinked and another
    /// file now sits at the lock path, move to that file; `Ok(true)` if
    /// this handle moved since the last `follow` (now, or in an inspection
    /// or acquisition meanwhile). Nothing moves while no file is at the path (the old file is
    /// still what its users lock), and nothing is created or written.
    ///
    /// # Errors
    ///
    /// The errors of opening the new file ([`Error::NotFound`] excepted),
    /// or [`Error::ReplacedTooOften`].
    pub fn follow(&self) -> Result<bool> {
        self.switch()?;
        let now = self.generation();
        Ok(self.reported.swap(now, Ordering::AcqRel) != now)
    }

    /// Move to the file now at the lock path if it is another one (and it
    /// exists): what [`Handle::follow`] does, without reporting.
    fn switch(&self) -> Result<()> {
        let generation = self.generation();
        if self.file(generation).is_current(&self.dir) {
            return Ok(());
        }
        match self.move_on(generation, OpenMode::Existing) {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The page inspection reads: that of the file now at the lock path.
    ///
    /// # Errors
    ///
    /// Those of [`Handle::follow`].
    pub fn page_to_read(&self) -> Result<&P> {
        self.switch()?;
        Ok(self.current_page())
    }

    /// Open the file now at the path as the generation after
    /// `generation`, unless another thread moved on meanwhile; `Some` with
    /// the new generation when this call moved.
    fn move_on(&self, generation: usize, mode: OpenMode) -> Result<Option<usize>> {
        let _serial = self.moving.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation() != generation {
            return Ok(None);
        }
        let next = generation + 1;
        if next >= MAX_GENERATIONS {
            return Err(Error::ReplacedTooOften {
                path: self.path.clone(),
            });
        }
        let new = LockFile::open_kind(&self.dir, &self.name, mode, P::KIND)?;
        let _ = self.later[next - 1].set(new);
        self.current.store(next, Ordering::Release);
        Ok(Some(next))
    }

    /// Keep every mapping for the rest of the process's life: a hold
    /// through this handle may still be linked into a thread's robust
    /// list, which must never point at unmapped memory.
    pub fn leak(&mut self) {
        let later = self.later.drain(..).filter_map(OnceLock::into_inner);
        for file in self.first.take().into_iter().chain(later) {
            file.map.leak();
        }
    }
}
