//! The per-directory lock-order registry file: opening it race-free,
//! validating it, registering classes, recording edges and witnesses, and
//! reading it back for `buslock order`.
//!
//! Updates are serialised by an exclusive `flock` on the registry file
//! itself. The kernel drops an `flock` when its holder dies, so a `SIGKILL`
//! never leaves the registry locked; a buslock [`Mutex`](crate::Mutex) on a
//! reserved name would work too, but it would take part in lock order
//! itself, need a lock file of its own, and lock names cannot start with a
//! `.`. The lock is taken only to add a class, an edge or a witness, or to
//! reset: never on the path of an acquisition whose edges are known.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags, fchmod, flock, fstat, openat};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::identity::Me;
use crate::lockfile::{LockDir, lock_file_mode, validate_name};
use crate::raw::layout::text_string;
use crate::raw::registry::{
    MAX_CLASSES, NAME_BYTES, REGISTRY_MAGIC, REGISTRY_SIZE, REGISTRY_VERSION, ROW_WORDS,
    RegistryMap, RegistryPage, WITNESS_EDGE, WITNESS_HELD, WITNESS_SLOTS, WitnessSlot,
};
use crate::seqlock::SeqCell;

/// File name of the registry in a lock directory. Lock files are
/// `NAME.lock` and lock names never start with a `.`, so it cannot collide
/// with one.
pub const REGISTRY_FILE: &str = ".lockdep";

/// How long to wait for the registry's `flock` before giving up (a holder
/// that is stopped, say in a debugger).
const FLOCK_WAIT: Duration = Duration::from_secs(2);

/// How long the lock path (recording an edge while holding a lock) waits
/// for it: a stopped holder must not stall locking; the edge is recorded
/// at a later acquisition instead.
const FLOCK_WAIT_LOCK_PATH: Duration = Duration::from_millis(50);

/// One lock directory's open registry.
pub struct Registry {
    path: PathBuf,
    map: RegistryMap,
}

/// The registry's `flock`, held until dropped.
pub(crate) struct RegistryLock<'a> {
    fd: &'a OwnedFd,
}

impl Drop for RegistryLock<'_> {
    fn drop(&mut self) {
        let _ = flock(self.fd.as_fd(), FlockOperation::Unlock);
    }
}

fn unusable(path: &Path, what: impl Into<String>) -> Error {
    Error::Lockdep {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn errno(path: &Path, action: &str, e: Errno) -> Error {
    let what = match e {
        Errno::LOOP => "it is a symbolic link; buslock never follows links there".to_owned(),
        Errno::ACCESS | Errno::PERM => format!("permission denied to {action} it"),
        Errno::ISDIR => "it is a directory".to_owned(),
        Errno::NXIO => "it is a socket or device".to_owned(),
        e => format!("cannot {action} it: {}", std::io::Error::from(e)),
    };
    unusable(path, what)
}

fn take_flock(path: &Path, fd: &OwnedFd) -> Result<()> {
    take_flock_within(path, fd, FLOCK_WAIT)
}

fn take_flock_within(path: &Path, fd: &OwnedFd, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::WOULDBLOCK) if start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::WOULDBLOCK) => {
                return Err(unusable(
                    path,
                    format!(
                        "another process has held its lock for over {FLOCK_WAIT:?} (is it stopped?)"
                    ),
                ));
            }
            Err(e) => return Err(errno(path, "lock", e)),
        }
    }
}

/// Check that `fd` is a plain file buslock may use: regular, one link.
/// Returns its size.
fn check_file(path: &Path, fd: &OwnedFd) -> Result<u64> {
    let st = fstat(fd).map_err(|e| errno(path, "inspect", e))?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(unusable(path, "it is not a regular file"));
    }
    if st.st_nlink != 1 {
        return Err(unusable(
            path,
            format!(
                "it has {} hard links; a registry has exactly one",
                st.st_nlink
            ),
        ));
    }
    Ok(st.st_size as u64)
}

fn initialise(page: &RegistryPage) {
    let h = &page.header;
    h.magic.store(0, Ordering::Relaxed);
    for c in &page.classes {
        c.len.store(0, Ordering::Relaxed);
        for w in &c.name {
            w.store(0, Ordering::Relaxed);
        }
    }
    for e in page.edges.iter().chain(&page.cyclic) {
        e.store(0, Ordering::Relaxed);
    }
    for w in &page.witnesses {
        w.seq.store(0, Ordering::Relaxed);
    }
    h.version.store(REGISTRY_VERSION, Ordering::Relaxed);
    h.file_size.store(REGISTRY_SIZE as u32, Ordering::Relaxed);
    h.max_classes.store(MAX_CLASSES as u32, Ordering::Relaxed);
    h.witness_slots
        .store(WITNESS_SLOTS as u32, Ordering::Relaxed);
    h.class_count.store(0, Ordering::Relaxed);
    h.witness_next.store(0, Ordering::Relaxed);
    h.generation.store(1, Ordering::Relaxed);
    h.created_real_ns
        .store(crate::clock::realtime_ns_syscall(), Ordering::Relaxed);
    h.magic.store(REGISTRY_MAGIC, Ordering::Release);
}

fn class_name(page: &RegistryPage, idx: usize) -> Option<String> {
    let slot = &page.classes[idx];
    let len = slot.len.load(Ordering::Acquire) as usize;
    if len == 0 || len > NAME_BYTES {
        return None;
    }
    let mut bytes = [0u8; NAME_BYTES];
    for (w, chunk) in slot.name.iter().zip(bytes.chunks_exact_mut(8)) {
        chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    let name = std::str::from_utf8(&bytes[..len]).ok()?;
    validate_name(name).ok()?;
    Some(name.to_owned())
}

/// Check an initialised registry's header and class table.
fn validate(path: &Path, page: &RegistryPage) -> Result<()> {
    let h = &page.header;
    let magic = h.magic.load(Ordering::Acquire);
    if magic != REGISTRY_MAGIC {
        return Err(unusable(
            path,
            format!("it is not a buslock lock-order registry (magic {magic:#018x})"),
        ));
    }
    let version = h.version.load(Ordering::Relaxed);
    if version != REGISTRY_VERSION {
        return Err(unusable(
            path,
            format!("it has layout version {version}, this buslock understands {REGISTRY_VERSION}"),
        ));
    }
    if h.file_size.load(Ordering::Relaxed) as usize != REGISTRY_SIZE
        || h.max_classes.load(Ordering::Relaxed) as usize != MAX_CLASSES
        || h.witness_slots.load(Ordering::Relaxed) as usize != WITNESS_SLOTS
    {
        return Err(unusable(
            path,
            "its header records other sizes than this buslock uses",
        ));
    }
    let count = h.class_count.load(Ordering::Acquire) as usize;
    if count > MAX_CLASSES {
        return Err(unusable(
            path,
            format!("its class count {count} is over {MAX_CLASSES}"),
        ));
    }
    for idx in 0..count {
        if class_name(page, idx).is_none() {
            return Err(unusable(
                path,
                format!("class {idx} is not a valid lock name"),
            ));
        }
    }
    Ok(())
}

impl Registry {
    /// Open the registry of `dir`, creating it if `create` and it is
    /// missing. `Ok(None)` when it is missing and `create` is false.
    ///
    /// # Errors
    ///
    /// [`Error::Lockdep`] naming the path and what is wrong with it.
    pub fn open(dir: &LockDir, create: bool) -> Result<Option<Registry>> {
        let path = dir.path().join(REGISTRY_FILE);
        let flags =
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let mut rounds = 0;
        let fd = loop {
            rounds += 1;
            match openat(dir.fd(), REGISTRY_FILE, flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if create => {}
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(errno(&path, "open", e)),
            }
            let perm = fstat(dir.fd()).map_or(0o700, |st| st.st_mode & 0o777);
            let perm = Mode::from_raw_mode(lock_file_mode(perm));
            match openat(
                dir.fd(),
                REGISTRY_FILE,
                flags | OFlags::CREATE | OFlags::EXCL,
                perm,
            ) {
                Ok(fd) => {
                    fchmod(&fd, perm).map_err(|e| errno(&path, "set the mode of", e))?;
                    break fd;
                }
                Err(Errno::EXIST) if rounds < 16 => continue,
                Err(e) => return Err(errno(&path, "create", e)),
            }
        };
        let size = check_file(&path, &fd)?;
        if size != REGISTRY_SIZE as u64 && size != 0 {
            return Err(unusable(
                &path,
                format!("it is {size} bytes, expected {REGISTRY_SIZE}"),
            ));
        }
        let mut guard_fd = Some(fd);
        let needs_init = size == 0;
        if needs_init {
            // Being created now, or its creator died before sizing it.
            let fd = guard_fd.as_ref().expect("fd");
            take_flock(&path, fd)?;
            let size = check_file(&path, fd)?;
            if size == 0 {
                rustix::fs::ftruncate(fd, REGISTRY_SIZE as u64)
                    .map_err(|e| errno(&path, "size", e))?;
            }
        }
        let fd = guard_fd.take().expect("fd");
        let map =
            RegistryMap::map(fd).map_err(|e| unusable(&path, format!("cannot map it: {e}")))?;
        let registry = Registry { path, map };
        let page = registry.page();
        if page.header.magic.load(Ordering::Acquire) != REGISTRY_MAGIC {
            // The magic is written last: without it, a creator died while
            // initialising; initialise under the lock (taken above if it
            // was empty).
            if page.header.magic.load(Ordering::Relaxed) == 0 {
                let _lock = if needs_init {
                    None
                } else {
                    Some(registry.lock()?)
                };
                if page.header.magic.load(Ordering::Acquire) != REGISTRY_MAGIC {
                    initialise(page);
                }
            }
        }
        if needs_init {
            let _ = flock(registry.map.fd().as_fd(), FlockOperation::Unlock);
        }
        validate(&registry.path, registry.page())?;
        Ok(Some(registry))
    }

    /// Where the registry file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn page(&self) -> &RegistryPage {
        self.map.page()
    }

    /// Take the registry's `flock` (bounded wait).
    pub(crate) fn lock(&self) -> Result<RegistryLock<'_>> {
        take_flock(&self.path, self.map.fd())?;
        Ok(RegistryLock { fd: self.map.fd() })
    }

    /// Take the registry's `flock` on the lock path (a short wait).
    pub(crate) fn lock_briefly(&self) -> Result<RegistryLock<'_>> {
        take_flock_within(&self.path, self.map.fd(), FLOCK_WAIT_LOCK_PATH)?;
        Ok(RegistryLock { fd: self.map.fd() })
    }

    /// Classes in use.
    pub(crate) fn class_count(&self) -> usize {
        (self.page().header.class_count.load(Ordering::Acquire) as usize).min(MAX_CLASSES)
    }

    pub(crate) fn find_class(&self, name: &str) -> Option<u16> {
        (0..self.class_count())
            .find(|&i| class_name(self.page(), i).as_deref() == Some(name))
            .map(|i| i as u16)
    }

    /// The name of class `idx` (`?` for an invalid slot).
    pub(crate) fn name(&self, idx: u16) -> String {
        class_name(self.page(), idx as usize).unwrap_or_else(|| "?".to_owned())
    }

    /// The class index of lock `name`, adding it if it is new. `Ok(None)`
    /// when the class table is full.
    pub(crate) fn register(&self, name: &str) -> Result<Option<u16>> {
        if let Some(idx) = self.find_class(name) {
            return Ok(Some(idx));
        }
        let _lock = self.lock()?;
        if let Some(idx) = self.find_class(name) {
            return Ok(Some(idx));
        }
        let page = self.page();
        let idx = self.class_count();
        if idx >= MAX_CLASSES {
            return Ok(None);
        }
        let slot = &page.classes[idx];
        let mut bytes = [0u8; NAME_BYTES];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        for (w, chunk) in slot.name.iter().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        slot.len.store(name.len() as u64, Ordering::Release);
        page.header
            .class_count
            .store(idx as u32 + 1, Ordering::Release);
        Ok(Some(idx as u16))
    }

    /// Whether the edge `from -> to` was recorded.
    #[inline]
    pub(crate) fn has_edge(&self, from: u16, to: u16) -> bool {
        let (from, to) = (from as usize, to as usize);
        if from >= MAX_CLASSES || to >= MAX_CLASSES {
            return false;
        }
        self.page().edges[from * ROW_WORDS + to / 64].load(Ordering::Acquire) & (1 << (to % 64))
            != 0
    }

    /// Whether the edge `from -> to` was recorded and did not close a
    /// cycle (the lock path's check).
    #[inline(always)]
    pub(crate) fn is_plain_edge(&self, from: u16, to: u16) -> bool {
        let (from, to) = (from as usize, to as usize);
        if from >= MAX_CLASSES || to >= MAX_CLASSES {
            return false;
        }
        let (word, bit) = (from * ROW_WORDS + to / 64, 1 << (to % 64));
        let page = self.page();
        page.edges[word].load(Ordering::Acquire) & bit != 0
            && page.cyclic[word].load(Ordering::Relaxed) & bit == 0
    }

    /// Whether the edge `from -> to` closed a cycle when it was taken.
    #[inline]
    pub(crate) fn is_cyclic(&self, from: u16, to: u16) -> bool {
        let (from, to) = (from as usize, to as usize);
        if from >= MAX_CLASSES || to >= MAX_CLASSES {
            return false;
        }
        self.page().cyclic[from * ROW_WORDS + to / 64].load(Ordering::Acquire) & (1 << (to % 64))
            != 0
    }

    /// A path `from -> ... -> to` in the recorded graph, as class indices
    /// from `from` to `to` inclusive (breadth first: a shortest one).
    pub(crate) fn find_path(&self, from: u16, to: u16) -> Option<Vec<u16>> {
        let n = self.class_count();
        let mut parent = [u16::MAX; MAX_CLASSES];
        let mut queue = [0u16; MAX_CLASSES];
        let (mut head, mut tail) = (0, 0);
        let mut seen = [false; MAX_CLASSES];
        seen[from as usize] = true;
        queue[tail] = from;
        tail += 1;
        while head < tail {
            let at = queue[head];
            head += 1;
            for next in 0..n as u16 {
                if seen[next as usize] || !self.has_edge(at, next) {
                    continue;
                }
                seen[next as usize] = true;
                parent[next as usize] = at;
                if next == to {
                    let mut path = vec![to];
                    let mut cur = to;
                    while cur != from {
                        cur = parent[cur as usize];
                        path.push(cur);
                    }
                    path.reverse();
                    return Some(path);
                }
                queue[tail] = next;
                tail += 1;
            }
        }
        None
    }

    /// Record a witness of kind `kind` for `from -> to` by `me` holding
    /// `held`, then (for an edge witness) set the edge bit, and first its
    /// cyclic bit if `cyclic`. The caller holds the registry lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        _lock: &RegistryLock<'_>,
        kind: u64,
        cyclic: bool,
        from: u16,
        to: u16,
        me: &Me,
        held: &[u16],
    ) {
        let page = self.page();
        let h = &page.header;
        let n = h.witness_next.load(Ordering::Relaxed);
        let slot = &page.witnesses[(n % WITNESS_SLOTS as u64) as usize];
        let seq = slot.version();
        // A writer that died left it odd: stay odd, move on.
        let odd = if seq & 1 == 0 { seq + 1 } else { seq + 2 };
        slot.write(odd, odd + 1, |slot| {
            slot.what.store(
                (kind << 32) | (u64::from(from) << 16) | u64::from(to),
                Ordering::Relaxed,
            );
            slot.ident.store(
                (u64::from(me.pid) << 32) | u64::from(me.tid),
                Ordering::Relaxed,
            );
            slot.start_time.store(me.start_time, Ordering::Relaxed);
            slot.real_ns
                .store(crate::clock::realtime_ns_syscall(), Ordering::Relaxed);
            let mut packed = [0xffffu16; WITNESS_HELD];
            for (p, c) in packed.iter_mut().zip(held) {
                *p = *c;
            }
            for (i, word) in slot.held.iter().enumerate() {
                let w = packed[i * 4..i * 4 + 4]
                    .iter()
                    .enumerate()
                    .fold(0u64, |acc, (j, c)| acc | (u64::from(*c) << (16 * j)));
                word.store(w, Ordering::Relaxed);
            }
            slot.generation
                .store(h.generation.load(Ordering::Relaxed), Ordering::Relaxed);
            slot.program.store(me.program);
        });
        h.witness_next.store(n + 1, Ordering::Relaxed);
        if kind == WITNESS_EDGE {
            // Last: the edge exists only once its acquisition is recorded.
            let (f, t) = (from as usize, to as usize);
            if cyclic {
                page.cyclic[f * ROW_WORDS + t / 64].fetch_or(1 << (t % 64), Ordering::Release);
            }
            page.edges[f * ROW_WORDS + t / 64].fetch_or(1 << (t % 64), Ordering::Release);
        }
    }

    /// Every stable witness of the current generation, oldest first.
    pub fn witnesses(&self) -> Vec<Witness> {
        let page = self.page();
        let generation = page.header.generation.load(Ordering::Acquire);
        let mut out: Vec<(u64, Witness)> = page
            .witnesses
            .iter()
            .filter_map(|s| read_witness(self, s, generation))
            .collect();
        out.sort_by_key(|(t, _)| *t);
        out.into_iter().map(|(_, w)| w).collect()
    }

    /// The first stable witness of edge `from -> to`, if the ring still has
    /// it.
    pub(crate) fn edge_witness(&self, from: u16, to: u16) -> Option<Witness> {
        self.witnesses()
            .into_iter()
            .find(|w| w.kind == WitnessKind::Edge && w.from_idx == from && w.to_idx == to)
    }

    /// The recorded graph: class names and edges.
    pub fn graph(&self) -> Graph {
        let n = self.class_count();
        let classes: Vec<String> = (0..n as u16).map(|i| self.name(i)).collect();
        let mut edges = Vec::new();
        let mut cyclic = Vec::new();
        for from in 0..n as u16 {
            for to in 0..n as u16 {
                if self.has_edge(from, to) {
                    edges.push((from, to));
                    if self.is_cyclic(from, to) {
                        cyclic.push((from, to));
                    }
                }
            }
        }
        Graph {
            classes,
            edges,
            cyclic,
        }
    }

    /// Forget every edge and witness (the class table stays: running
    /// processes know their classes by index). Under the registry lock.
    ///
    /// # Errors
    ///
    /// When the lock cannot be taken.
    pub fn reset(&self) -> Result<()> {
        let _lock = self.lock()?;
        let page = self.page();
        page.header.generation.fetch_add(1, Ordering::AcqRel);
        for e in page.edges.iter().chain(&page.cyclic) {
            e.store(0, Ordering::Release);
        }
        for w in &page.witnesses {
            w.seq.store(0, Ordering::Release);
        }
        Ok(())
    }

    /// Reinitialise a registry that [`Registry::open`] refused as
    /// corrupted, under its lock, if it is a plain file buslock may rewrite
    /// (regular, one link, in `dir`). Everything in it is lost.
    ///
    /// # Errors
    ///
    /// When it is not such a file (then it must be removed by hand).
    pub fn reinitialise(dir: &LockDir) -> Result<()> {
        let path = dir.path().join(REGISTRY_FILE);
        let flags =
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match openat(dir.fd(), REGISTRY_FILE, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(errno(&path, "open", e)),
        };
        check_file(&path, &fd)?;
        take_flock(&path, &fd)?;
        rustix::fs::ftruncate(&fd, REGISTRY_SIZE as u64).map_err(|e| errno(&path, "size", e))?;
        let map =
            RegistryMap::map(fd).map_err(|e| unusable(&path, format!("cannot map it: {e}")))?;
        initialise(map.page());
        let _ = flock(map.fd().as_fd(), FlockOperation::Unlock);
        Ok(())
    }
}

fn read_witness(reg: &Registry, s: &WitnessSlot, generation: u64) -> Option<(u64, Witness)> {
    // Never written (0) or being written (odd): skip.
    let (_, (what, ident, start_time, real_ns, held_words, gen_, program)) = s.try_read(
        |seq| seq != 0 && seq & 1 == 0,
        |s| {
            (
                s.what.load(Ordering::Relaxed),
                s.ident.load(Ordering::Relaxed),
                s.start_time.load(Ordering::Relaxed),
                s.real_ns.load(Ordering::Relaxed),
                s.held
                    .iter()
                    .map(|w| w.load(Ordering::Relaxed))
                    .collect::<Vec<u64>>(),
                s.generation.load(Ordering::Relaxed),
                s.program.load(),
            )
        },
    )?;
    if gen_ != generation {
        return None;
    }
    let kind = match what >> 32 {
        WITNESS_EDGE => WitnessKind::Edge,
        crate::raw::registry::WITNESS_REFUSED => WitnessKind::Refused,
        _ => return None,
    };
    let from_idx = ((what >> 16) & 0xffff) as u16;
    let to_idx = (what & 0xffff) as u16;
    let n = reg.class_count() as u16;
    if from_idx >= n || to_idx >= n {
        return None;
    }
    let mut held = Vec::new();
    for w in held_words {
        for j in 0..4 {
            let c = ((w >> (16 * j)) & 0xffff) as u16;
            if c < n {
                held.push(reg.name(c));
            }
        }
    }
    Some((
        real_ns,
        Witness {
            kind,
            from_idx,
            to_idx,
            from: reg.name(from_idx),
            to: reg.name(to_idx),
            pid: (ident >> 32) as u32,
            tid: ident as u32,
            start_time,
            program: text_string(&program),
            at: std::time::UNIX_EPOCH + Duration::from_nanos(real_ns),
            held,
        },
    ))
}

/// What a witness saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitnessKind {
    /// The first acquisition that took the edge.
    Edge,
    /// An acquisition refused in `error` mode: it would have closed a cycle.
    Refused,
}

/// Who took (or was refused) an edge, and when.
#[derive(Debug, Clone)]
pub struct Witness {
    /// Edge or refusal.
    pub kind: WitnessKind,
    pub(crate) from_idx: u16,
    pub(crate) to_idx: u16,
    /// The lock held.
    pub from: String,
    /// The lock acquired while holding it.
    pub to: String,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Process start time, clock ticks after boot.
    pub start_time: u64,
    /// Program name (or label).
    pub program: String,
    /// When.
    pub at: std::time::SystemTime,
    /// Every lock of this directory the thread held (oldest first).
    pub held: Vec<String>,
}

/// The recorded lock-order graph of one directory.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Class names by index.
    pub classes: Vec<String>,
    /// Edges `(from, to)` as class indices.
    pub edges: Vec<(u16, u16)>,
    /// The edges that closed a cycle when first taken.
    pub cyclic: Vec<(u16, u16)>,
}
