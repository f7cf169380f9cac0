//! Opening a lock file: race-free creation, mapping and validation.
//!
//! 1. `openat(dir, "NAME.lock", O_RDWR|O_NOFOLLOW|O_NONBLOCK)`: never
//!    `O_CREAT` on an existing file (that fails for another user's file
//!    under `fs.protected_regular`) and never through a link.
//! 2. If absent, `O_CREAT|O_EXCL|O_NOFOLLOW`; losing that race to another
//!    creator just means opening its file.
//! 3. `fstat`: a regular file with one name (no hard link) of exactly
//!    [`FILE_SIZE`] bytes, or an empty one still being created.
//! 4. If not ready: take the creation `flock` (bounded wait), `fallocate`
//!    the size (so a full disk is an error now, not a `SIGBUS` later),
//!    initialise, publish `READY`. An opener that does not initialise
//!    (read-only views, inspection of an existing lock) waits instead while
//!    a creator may be at work on it: it holds the `flock`, or the file is
//!    younger than the creation wait (a creator takes the `flock` a moment
//!    after its `O_EXCL`).
//! 5. A ready file whose boot id is not this boot's (a lock directory on
//!    persistent storage, a restored backup or snapshot) is initialised
//!    again under the creation `flock`, like a never-initialised one: no
//!    thread of an earlier boot can still use it, and every opener of this
//!    boot checks the boot id before using a file.
//! 6. Validate magic, version, size, ABI tag, PID namespace and kind: one
//!    name is one primitive, so a mutex opener finding a readers-writer
//!    lock's file (or the reverse) gets [`Error::WrongKind`].

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::fs::{
    AtFlags, FallocateFlags, FileType, FlockOperation, Mode, OFlags, fallocate, fchmod, flock,
    fstat, openat, statat,
};
use rustix::io::Errno;

use super::dir::LockDir;
use super::name::lock_file_name;
use crate::error::{Error, Result};
use crate::raw::layout::{
    FILE_SIZE, INIT_NONE, INIT_READY, INIT_RUNNING, KIND_MUTEX, LAYOUT_VERSION, MAGIC, abi_tag,
    kind_name, text_bytes, text_string,
};
use crate::raw::{HeaderInit, InitError, Mapping};

/// How long an opener waits for another process to finish initialising a
/// new lock file before reporting it.
const INIT_WAIT: Duration = Duration::from_secs(2);

/// Whether a missing lock file may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file if it does not exist.
    Create,
    /// Only open an existing file (inspection tools).
    Existing,
}

/// An open, mapped, validated lock file.
pub struct LockFile {
    /// Where it is.
    pub path: PathBuf,
    /// The shared mapping.
    pub map: Mapping,
    /// Which file it is: (device, inode).
    pub id: (u64, u64),
}

fn kind_of(ft: FileType) -> &'static str {
    match ft {
        FileType::Directory => "directory",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Symlink => "symbolic link",
        _ => "special file",
    }
}

fn open_errno(path: &Path, action: &'static str, e: Errno) -> Error {
    match e {
        Errno::LOOP => Error::Symlink {
            path: path.to_path_buf(),
        },
        Errno::ISDIR => Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: "directory",
        },
        Errno::NXIO => Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: "socket or device without a reader",
        },
        Errno::ACCESS | Errno::PERM | Errno::ROFS => Error::Permission {
            path: path.to_path_buf(),
            action,
            fix: if e == Errno::ROFS {
                "the file system is read-only; set BUSLOCK_DIR to a writable directory".into()
            } else {
                "lock files must be readable and writable by every user of the lock; ask the \
                 admin to prepare the directory for your group (dist/buslock.conf) or set BUSLOCK_DIR"
                    .into()
            },
        },
        Errno::NOSPC | Errno::DQUOT => Error::NoSpace {
            path: path.to_path_buf(),
        },
        other => Error::Io {
            path: path.to_path_buf(),
            action,
            source: other.into(),
        },
    }
}

/// Inode of this process's PID namespace (0 if `/proc` is unavailable).
pub fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// The mode buslock gives a lock file in a directory of mode `dir_mode`:
/// `0666` in a world-writable (sticky) directory, `0660` in a
/// group-writable one, else `0600`: every user who may create lock files
/// there may use them.
pub fn lock_file_mode(dir_mode: u32) -> u32 {
    if dir_mode & 0o002 != 0 {
        0o666
    } else if dir_mode & 0o020 != 0 {
        0o660
    } else {
        0o600
    }
}

fn file_mode_for(dir: &LockDir) -> Mode {
    let perm = fstat(dir.fd()).map_or(0o700, |st| st.st_mode & 0o777);
    Mode::from_raw_mode(lock_file_mode(perm))
}

impl LockFile {
    /// Open (and with [`OpenMode::Create`], create if missing) lock `name`
    /// in `dir`. `name` must already be valid.
    ///
    /// # Errors
    ///
    /// Every problem with the path or the file, as a typed [`Error`] naming
    /// the path.
    pub fn open(dir: &LockDir, name: &str, mode: OpenMode) -> Result<LockFile> {
        LockFile::open_kind(dir, name, mode, KIND_MUTEX)
    }

    /// As [`LockFile::open`], for a lock of `kind` (`layout::KIND_*`): a
    /// new file is initialised as that kind, and an existing file of
    /// another kind is [`Error::WrongKind`].
    ///
    /// # Errors
    ///
    /// As [`LockFile::open`].
    pub fn open_kind(dir: &LockDir, name: &str, mode: OpenMode, kind: u32) -> Result<LockFile> {
        let file_name = lock_file_name(name);
        let path = dir.path().join(&file_name);
        let flags =
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        // Bounded retries: a file created by someone else between our two
        // opens may be gone again by the time we open it.
        let mut rounds = 0;
        let fd = loop {
            rounds += 1;
            match openat(dir.fd(), file_name.as_str(), flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if mode == OpenMode::Create => {}
                Err(Errno::NOENT) => return Err(Error::NotFound { path }),
                Err(e) => return Err(open_errno(&path, "open", e)),
            }
            let perm = file_mode_for(dir);
            let create = flags | OFlags::CREATE | OFlags::EXCL;
            match openat(dir.fd(), file_name.as_str(), create, perm) {
                Ok(fd) => {
                    // O_CREAT applied the umask; every user of the lock
                    // needs the intended mode.
                    fchmod(&fd, perm).map_err(|e| open_errno(&path, "set the mode of", e))?;
                    break fd;
                }
                // Another process created it first: open that one.
                Err(Errno::EXIST) if rounds < 16 => continue,
                Err(e) => return Err(open_errno(&path, "create", e)),
            }
        };
        let map = prepare(&path, fd, mode, kind)?;
        validate(&path, &map, Some(kind))?;
        LockFile::new(path, map)
    }
}

impl LockFile {
    fn new(path: PathBuf, map: Mapping) -> Result<LockFile> {
        let st = fstat(map.fd()).map_err(|e| open_errno(&path, "inspect", e))?;
        Ok(LockFile {
            path,
            map,
            id: (st.st_dev as u64, st.st_ino as u64),
        })
    }

    /// Open an existing lock file for reading only, with `O_RDONLY` and a
    /// read-only mapping: what a user who may read the file but not write
    /// it can do. The result must only be read (see
    /// [`Mapping::map_read_only`]); [`crate::LockView`] wraps it.
    ///
    /// # Errors
    ///
    /// As [`LockFile::open`] with [`OpenMode::Existing`]; a file that is
    /// not (yet) initialised is an error, never initialised here.
    pub fn open_read_only(dir: &LockDir, name: &str) -> Result<LockFile> {
        let file_name = lock_file_name(name);
        let path = dir.path().join(&file_name);
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match openat(dir.fd(), file_name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(Error::NotFound { path }),
            Err(e) => return Err(open_errno(&path, "open", e)),
        };
        let mut size = file_size(&path, &fd)?;
        if size == 0 {
            // Being created now, or left empty: wait for its creator.
            await_creator(&path, &fd, || file_size(&path, &fd).is_ok_and(|s| s != 0))?;
            size = file_size(&path, &fd)?;
            if size == 0 {
                return Err(empty_file(&path));
            }
        }
        if size != FILE_SIZE as u64 {
            return Err(wrong_size(&path, &fd, size));
        }
        let map = Mapping::map_read_only(fd).map_err(|e| Error::Io {
            path: path.clone(),
            action: "map",
            source: e,
        })?;
        let ready = || map.page().header.init_state.load(Ordering::Acquire) == INIT_READY;
        if !ready() {
            // Being initialised now, or left half-made: wait for its
            // creator, then look again.
            await_creator(&path, map.fd(), ready)?;
            if let Some(e) = not_ready(&path, &map) {
                return Err(e);
            }
        }
        validate(&path, &map, None)?;
        LockFile::new(path, map)
    }

    /// What the file holds (`layout::KIND_*`).
    pub fn kind(&self) -> u32 {
        self.map.page().header.kind.load(Ordering::Relaxed)
    }

    /// Whether this file is still the one at its path in `dir`: false once
    /// it was unlinked, or another file (or nothing) now sits at the path.
    /// When that cannot be told (say, the directory became unreadable), it
    /// counts as current.
    pub fn is_current(&self, dir: &LockDir) -> bool {
        let Ok(ours) = fstat(self.map.fd()) else {
            return true;
        };
        if ours.st_nlink == 0 {
            return false;
        }
        let Some(name) = self.path.file_name() else {
            return true;
        };
        match statat(dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) => now.st_dev == ours.st_dev && now.st_ino == ours.st_ino,
            Err(Errno::NOENT) => false,
            Err(_) => true,
        }
    }
}

/// The size of the open lock file, after checking that it is a regular
/// file with exactly one name: a hard link planted at the lock path (where
/// `fs.protected_hardlinks` is 0) would make buslock size and write a file
/// elsewhere.
fn file_size(path: &Path, fd: &OwnedFd) -> Result<u64> {
    let st = fstat(fd).map_err(|e| open_errno(path, "inspect", e))?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: kind_of(ft),
        });
    }
    // 0 links: unlinked since we opened it; the replaced-file logic moves on.
    if st.st_nlink > 1 {
        return Err(Error::HardLink {
            path: path.to_path_buf(),
            links: st.st_nlink as u64,
        });
    }
    Ok(st.st_size as u64)
}

/// Make sure the file is sized, mapped and initialised.
fn prepare(path: &Path, fd: OwnedFd, mode: OpenMode, kind: u32) -> Result<Mapping> {
    let size = file_size(path, &fd)?;
    if size == FILE_SIZE as u64 {
        let map = Mapping::map(fd).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            action: "map",
            source: e,
        })?;
        let header = &map.page().header;
        let ready = header.init_state.load(Ordering::Acquire) == INIT_READY;
        if ready && is_this_boot(header) {
            return Ok(map);
        }
        wait_for_creation_flock(path, map.fd())?;
        return initialise(path, map, mode, ready, kind);
    }
    if size != 0 {
        return Err(wrong_size(path, &fd, size));
    }
    // Empty: being created right now, or its creator died before sizing it.
    if mode == OpenMode::Existing {
        // Not ours to size: wait for a creator that is at work on it.
        await_creator(path, &fd, || file_size(path, &fd).is_ok_and(|s| s != 0))?;
    }
    wait_for_creation_flock(path, &fd)?;
    let size = file_size(path, &fd)?;
    if size == 0 {
        if mode == OpenMode::Existing {
            return Err(empty_file(path));
        }
        fallocate(&fd, FallocateFlags::empty(), 0, FILE_SIZE as u64)
            .or_else(|e| match e {
                // File systems without fallocate: size it the plain way.
                Errno::OPNOTSUPP => rustix::fs::ftruncate(&fd, FILE_SIZE as u64),
                e => Err(e),
            })
            .map_err(|e| open_errno(path, "allocate", e))?;
    } else if size != FILE_SIZE as u64 {
        return Err(wrong_size(path, &fd, size));
    }
    let map = Mapping::map(fd).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        action: "map",
        source: e,
    })?;
    initialise(path, map, mode, false, kind)
}

/// The error for a file of `size` bytes, not [`FILE_SIZE`]: a buslock
/// file of another layout version (whose size differed: version 3 and
/// earlier were 8192 bytes) is [`Error::Version`], which says what to do;
/// anything else is [`Error::BadSize`].
fn wrong_size(path: &Path, fd: &OwnedFd, size: u64) -> Error {
    let mut head = [0u8; 12];
    if let Ok(12) = rustix::io::pread(fd, &mut head, 0) {
        let magic = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        if magic == MAGIC && version != LAYOUT_VERSION {
            return Error::Version {
                path: path.to_path_buf(),
                found: version,
                expected: LAYOUT_VERSION,
            };
        }
    }
    Error::BadSize {
        path: path.to_path_buf(),
        size,
        expected: FILE_SIZE as u64,
    }
}

/// This boot's id, `/proc/sys/kernel/random/boot_id` as two words; zeros
/// when it cannot be read (then files are never taken for stale).
pub fn boot_id() -> [u64; 2] {
    static BOOT_ID: std::sync::OnceLock<[u64; 2]> = std::sync::OnceLock::new();
    *BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|s| parse_boot_id(&s))
            .unwrap_or([0, 0])
    })
}

/// `"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n"` as two words.
fn parse_boot_id(text: &str) -> Option<[u64; 2]> {
    let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let hi = u64::from_str_radix(&hex[..16], 16).ok()?;
    let lo = u64::from_str_radix(&hex[16..], 16).ok()?;
    Some([hi, lo])
}

/// Whether a ready file was initialised in this boot (or the boot id is
/// unknown, on either side).
fn is_this_boot(header: &crate::raw::layout::Header) -> bool {
    let ours = boot_id();
    let file = [
        header.boot_id[0].load(Ordering::Acquire),
        header.boot_id[1].load(Ordering::Acquire),
    ];
    ours == [0, 0] || file == [0, 0] || file == ours
}

/// Take the creation `flock`, waiting at most [`INIT_WAIT`] for a creator
/// that holds it.
fn wait_for_creation_flock(path: &Path, fd: &OwnedFd) -> Result<()> {
    let start = Instant::now();
    loop {
        match flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::WOULDBLOCK) if start.elapsed() < INIT_WAIT => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::WOULDBLOCK) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    what: format!(
                        "another process has been initialising it for over {INIT_WAIT:?} \
                         (is it stopped?)"
                    ),
                });
            }
            Err(e) => return Err(open_errno(path, "lock for initialisation", e)),
        }
    }
}

/// For an opener that will not initialise the file: wait while it is not
/// `ready` and a creator may still be at work on it, at most
/// [`INIT_WAIT`]. A creator holds the creation `flock` while it sizes and
/// initialises the file, but not between its `O_CREAT|O_EXCL` and taking
/// the `flock`: an unready file nobody holds the `flock` of counts as being
/// created until it is [`INIT_WAIT`] old (by its change time), and as
/// abandoned after. Returns with the `flock` not held; the caller looks at
/// the file again and diagnoses what it finds.
fn await_creator(path: &Path, fd: &OwnedFd, ready: impl Fn() -> bool) -> Result<()> {
    let start = Instant::now();
    loop {
        wait_for_creation_flock(path, fd)?;
        let _ = flock(fd.as_fd(), FlockOperation::Unlock);
        if ready() || start.elapsed() >= INIT_WAIT || changed_before(fd, INIT_WAIT) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether the file's last change (`st_ctime`) is at least `age` ago; a
/// file that cannot be inspected counts as old (nothing to wait for).
fn changed_before(fd: &OwnedFd, age: Duration) -> bool {
    let Ok(st) = fstat(fd) else {
        return true;
    };
    let changed = std::time::UNIX_EPOCH
        + Duration::new(
            st.st_ctime.max(0) as u64,
            st.st_ctime_nsec.clamp(0, 999_999_999) as u32,
        );
    std::time::SystemTime::now()
        .duration_since(changed)
        .is_ok_and(|d| d >= age)
}

fn initialise(
    path: &Path,
    map: Mapping,
    mode: OpenMode,
    stale_boot: bool,
    kind: u32,
) -> Result<Mapping> {
    let not_ready = if mode == OpenMode::Existing {
        not_ready(path, &map)
    } else {
        None
    };
    let result = if let Some(e) = not_ready {
        Err(e)
    } else {
        let abi = text_bytes(&abi_tag());
        let header = HeaderInit {
            page_size: rustix::param::page_size() as u32,
            pid_ns: pid_namespace(),
            created_real_ns: crate::clock::realtime_ns_syscall(),
            abi: &abi,
            boot_id: boot_id(),
            kind,
            stale_boot,
        };
        map.initialize(&header).map(|_| ()).map_err(|e| match e {
            InitError::Unrecognised { state, magic } => unrecognised(path, state, magic),
            InitError::Sys(e) => Error::Io {
                path: path.to_path_buf(),
                action: "initialise",
                source: e,
            },
        })
    };
    map.end_init();
    result.map(|()| map)
}

/// Why a file that must not be initialised here cannot be used yet, if
/// its init state is not ready: the same diagnosis as an opener that would
/// initialise it (a file that is not a half-made buslock file is a
/// foreign one).
fn not_ready(path: &Path, map: &Mapping) -> Option<Error> {
    let header = &map.page().header;
    let state = header.init_state.load(Ordering::Acquire);
    if state == INIT_READY {
        return None;
    }
    let magic = header.magic.load(Ordering::Relaxed);
    Some(
        if !(state == INIT_NONE || state == INIT_RUNNING) || !(magic == 0 || magic == MAGIC) {
            unrecognised(path, state, magic)
        } else {
            Error::Corrupt {
                path: path.to_path_buf(),
                what: "it was never completely initialised: whoever created it stopped \
                       first (it died, or failed, e.g. on a full file system); the next \
                       program that takes the lock initialises it"
                    .into(),
            }
        },
    )
}

/// An empty lock file, found by a program that will not initialise it.
fn empty_file(path: &Path) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        what: "it is empty: whoever created it stopped before sizing it (it died, or \
               failed, e.g. on a full file system); the next program that takes the \
               lock initialises it"
            .into(),
    }
}

/// A file whose header is neither a buslock header nor a half-made one.
fn unrecognised(path: &Path, state: u32, magic: u64) -> Error {
    if magic != MAGIC {
        Error::BadMagic {
            path: path.to_path_buf(),
            found: magic,
        }
    } else {
        Error::Corrupt {
            path: path.to_path_buf(),
            what: format!("unknown init state {state}"),
        }
    }
}

/// Check that a ready file is one this build can use (and, given `kind`,
/// of that kind).
fn validate(path: &Path, map: &Mapping, kind: Option<u32>) -> Result<()> {
    let h = &map.page().header;
    let magic = h.magic.load(Ordering::Relaxed);
    if magic != MAGIC {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            found: magic,
        });
    }
    let version = h.version.load(Ordering::Relaxed);
    if version != LAYOUT_VERSION {
        return Err(Error::Version {
            path: path.to_path_buf(),
            found: version,
            expected: LAYOUT_VERSION,
        });
    }
    let size = h.file_size.load(Ordering::Relaxed);
    if size as usize != FILE_SIZE {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            what: format!("its header records size {size}, expected {FILE_SIZE}"),
        });
    }
    let found = text_string(&h.abi.load());
    let expected = abi_tag();
    if found != expected {
        return Err(Error::Abi {
            path: path.to_path_buf(),
            found,
            expected,
        });
    }
    let ns = h.pid_ns.load(Ordering::Relaxed);
    let ours = pid_namespace();
    if ns != 0 && ours != 0 && ns != ours {
        return Err(Error::PidNamespace {
            path: path.to_path_buf(),
            found: ns,
            ours,
        });
    }
    let found = h.kind.load(Ordering::Relaxed);
    if let Some(expected) = kind
        && found != expected
    {
        return Err(Error::WrongKind {
            path: path.to_path_buf(),
            found: kind_name(found),
            expected: kind_name(expected),
        });
    }
    Ok(())
}
