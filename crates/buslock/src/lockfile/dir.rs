//! Where lock files live.
//!
//! # The policy
//!
//! The lock directory is, in this order: a directory the program passes
//! ([`Builder::dir`](crate::Builder::dir), `--dir`); `$BUSLOCK_DIR`, which
//! must be an absolute path; else the system directory
//! [`SYSTEM_DIR`] (`/run/lock/buslock`). There is no fallback.
//!
//! The system directory is used only when it is *safe*: a directory (not a
//! link) owned by root, either sticky and world-writable (mode 1777, like
//! `/tmp`) or prepared by the admin for one group (`root:buslock` mode
//! 2770, `dist/buslock.conf`). Its parent `/run/lock` must be owned by root
//! too.
//!
//! When the system directory does not exist (after a boot, before anything
//! created it):
//!
//! - a program run as **root** that is about to take a lock creates it,
//!   owned by root, mode 1777, atomically (built under a temporary name and
//!   renamed into place, so nobody sees it half set up);
//! - a program run as **any other user** creates nothing and fails with
//!   [`Error::SystemDirMissing`], whose message gives the command the admin
//!   runs (`install -d -m 1777 /run/lock/buslock` until the next boot, or the
//!   package's tmpfiles snippet for every boot);
//! - **read-only** tools ([`LockDir::resolve`]: `list`, `state`, `doctor`,
//!   Python's `lock_names`) never create anything, as root or not.
//!
//! # Why
//!
//! - *No silent split.* Earlier versions fell back to
//!   `$XDG_RUNTIME_DIR/buslock` or `/dev/shm/buslock` when
//!   `/run/lock/buslock` was not usable, so root and `pi` could hold "the
//!   same" lock in two directories and not exclude each other. Whatever the
//!   start order, every program now uses the one directory or gets an error
//!   that says what the admin must do.
//! - *No directory that one user can take from the others.* A directory
//!   created by a non-root user belongs to that user: they can delete or
//!   replace every lock file in it, and chmod it shut. So only root creates
//!   the system directory, and one owned by anyone else is refused
//!   ([`Error::UnsafeDir`]) for everyone, its owner included.
//! - *Root may create it, others may not.* Root's programs (systemd services)
//!   must work on a machine where nobody prepared anything; a directory root
//!   creates is safe for everyone. Letting non-root programs put lock files
//!   straight into `/run/lock` instead was considered and rejected: a
//!   program started before the admin created `/run/lock/buslock` would keep
//!   using a different file from one started after, a split again.
//! - *Read-only means read-only.* Looking at the locks must not change what
//!   later programs find.
//!
//! Inside a directory, lock files are never opened through links, never
//! `O_CREAT`ed when they exist (see [`open`](super::open)), and the sticky
//! or group layout keeps users from deleting each other's files.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    Access, AtFlags, CWD, FileType, Mode, OFlags, RenameFlags, Stat, accessat, fchmod, fstat,
    mkdirat, openat, renameat_with, statat, unlinkat,
};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// The parent of the system lock directory.
pub const SYSTEM_PARENT: &str = "/run/lock";

/// The system-wide lock directory shared by every user.
pub const SYSTEM_DIR: &str = "/run/lock/buslock";

/// What the admin runs to create the system directory until the next boot.
const ADMIN_FIX: &str = "ask the admin to create it once as root: `sudo install -d -o root -g root \
     -m 1777 /run/lock/buslock` (until the next boot), or install the buslock package or \
     dist/buslock.conf (every boot, for group \"buslock\"); or set BUSLOCK_DIR to an absolute path \
     shared by every program of the bus";

/// Where a [`LockDir`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirSource {
    /// Passed by the program (`Builder::dir`, `--dir`).
    Explicit,
    /// `$BUSLOCK_DIR`.
    Env,
    /// `/run/lock/buslock`, shared by every user.
    RunLock,
}

impl DirSource {
    /// A short phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            DirSource::Explicit => "given explicitly",
            DirSource::Env => "from BUSLOCK_DIR",
            DirSource::RunLock => "system-wide default",
        }
    }
}

/// An open lock directory. Lock files are opened relative to its
/// descriptor, so a directory renamed or replaced after resolution is never
/// confused with another one.
#[derive(Debug)]
pub struct LockDir {
    path: PathBuf,
    fd: OwnedFd,
    source: DirSource,
}

fn errno_to_dir_error(path: &Path, e: Errno) -> Error {
    match e {
        Errno::NOENT => Error::DirMissing { path: path.into() },
        Errno::NOTDIR => Error::NotADirectory { path: path.into() },
        Errno::ACCESS | Errno::PERM => Error::DirPermission {
            path: path.into(),
            reason: "permission denied".into(),
            fix: "ask the admin to add you to the directory's group, or set BUSLOCK_DIR".into(),
        },
        Errno::LOOP => Error::UnsafeDir {
            path: path.into(),
            reason: "it is a symbolic link".into(),
        },
        other => Error::Io {
            path: path.into(),
            action: "open lock directory",
            source: other.into(),
        },
    }
}

/// The name of group `gid` from `/etc/group`, if it has one.
fn group_name(gid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse::<u32>().ok()? == gid).then(|| name.to_owned())
    })
}

/// Whether `st` is a safe system directory; the reason when it is not.
fn unsafe_reason(st: &Stat) -> Option<String> {
    let perm = st.st_mode & 0o7777;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Some("it is not a directory".into());
    }
    if st.st_uid != 0 {
        return Some(format!(
            "it is owned by uid {}, not root: its owner could delete or replace everyone's lock \
             files (it was probably created by that user's program before the system \
             directory was set up). As root, remove it when no program uses it \
             (`sudo rm -r {SYSTEM_DIR}`)",
            st.st_uid
        ));
    }
    if perm & 0o002 != 0 && perm & 0o1000 == 0 {
        return Some(format!(
            "it is world-writable without the sticky bit (mode {perm:o}): anyone could delete \
             others' lock files; as root, `chmod 1777 {SYSTEM_DIR}`"
        ));
    }
    None
}

impl LockDir {
    /// Resolve the lock directory to *inspect* locks: `explicit` if given,
    /// else `$BUSLOCK_DIR`, else the system directory (see the module docs).
    /// Never creates anything, and needs only read access.
    ///
    /// # Errors
    ///
    /// A missing or unusable explicit or `$BUSLOCK_DIR` directory, a relative
    /// `$BUSLOCK_DIR` ([`Error::RelativeDir`]), a system directory that does
    /// not exist yet ([`Error::SystemDirMissing`]) or is unsafe
    /// ([`Error::UnsafeDir`]).
    pub fn resolve(explicit: Option<&Path>) -> Result<LockDir> {
        Self::resolve_with(explicit, false)
    }

    /// Resolve the lock directory to *take* locks in it: like
    /// [`LockDir::resolve`], but a program run as root creates the missing
    /// system directory (root-owned, mode 1777), and the directory must be
    /// writable.
    ///
    /// # Errors
    ///
    /// As [`LockDir::resolve`]; also [`Error::DirPermission`] when this user
    /// cannot create lock files in the directory.
    pub fn resolve_for_locking(explicit: Option<&Path>) -> Result<LockDir> {
        Self::resolve_with(explicit, true)
    }

    fn resolve_with(explicit: Option<&Path>, for_locking: bool) -> Result<LockDir> {
        if let Some(path) = explicit {
            return Self::open(path, DirSource::Explicit);
        }
        if let Some(env) = std::env::var_os("BUSLOCK_DIR").filter(|v| !v.is_empty()) {
            let path = Path::new(&env);
            if !path.is_absolute() {
                return Err(Error::RelativeDir { path: path.into() });
            }
            return Self::open(path, DirSource::Env);
        }
        Self::system(Path::new(SYSTEM_PARENT), for_locking)
    }

    /// Open an existing directory given by the user (links are followed:
    /// the user chose the path).
    ///
    /// # Errors
    ///
    /// [`Error::DirMissing`], [`Error::NotADirectory`],
    /// [`Error::DirPermission`] or [`Error::Io`].
    pub fn open(path: &Path, source: DirSource) -> Result<LockDir> {
        let fd = openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_to_dir_error(path, e))?;
        Ok(LockDir {
            path: path.to_path_buf(),
            fd,
            source,
        })
    }

    /// Open (as root about to lock: create) and check `parent/buslock`.
    fn system(parent: &Path, for_locking: bool) -> Result<LockDir> {
        let path = parent.join("buslock");
        let missing = |reason: String| Error::SystemDirMissing {
            path: path.clone(),
            reason,
            fix: ADMIN_FIX.into(),
        };
        let parent_fd = match openat(
            CWD,
            parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                return Err(missing(format!(
                    "its parent {} cannot be opened ({e})",
                    parent.display()
                )));
            }
        };
        let pst = fstat(&parent_fd).map_err(|e| errno_to_dir_error(parent, e))?;
        let pperm = pst.st_mode & 0o7777;
        if pst.st_uid != 0 || (pperm & 0o002 != 0 && pperm & 0o1000 == 0) {
            return Err(Error::UnsafeDir {
                path: parent.into(),
                reason: format!(
                    "the parent of the system lock directory must be owned by root and sticky \
                     if world-writable (owner uid {}, mode {pperm:o})",
                    pst.st_uid
                ),
            });
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match openat(&parent_fd, "buslock", flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                let euid = rustix::process::geteuid();
                if !for_locking {
                    return Err(missing(
                        "it does not exist yet: no program run as root has taken a lock since \
                         boot, and nothing set it up"
                            .into(),
                    ));
                }
                if !euid.is_root() {
                    return Err(missing(
                        "it does not exist, and only root creates it, so that no user owns \
                         everyone's locks"
                            .into(),
                    ));
                }
                create_system_dir(&parent_fd, &path)?;
                openat(&parent_fd, "buslock", flags, Mode::empty())
                    .map_err(|e| errno_to_dir_error(&path, e))?
            }
            Err(Errno::NOTDIR | Errno::LOOP) => {
                return Err(Error::UnsafeDir {
                    path,
                    reason: format!(
                        "it is a symbolic link or not a directory; as root, remove it \
                         (`sudo rm {SYSTEM_DIR}`)"
                    ),
                });
            }
            Err(e @ (Errno::ACCESS | Errno::PERM)) => {
                // Cannot even look inside (the group layout, not a
                // member): name the group to join.
                return Err(
                    match statat(&parent_fd, "buslock", AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => not_allowed(&path, &st, "you cannot open it"),
                        Err(_) => errno_to_dir_error(&path, e),
                    },
                );
            }
            Err(e) => return Err(errno_to_dir_error(&path, e)),
        };
        let st = fstat(&fd).map_err(|e| errno_to_dir_error(&path, e))?;
        if let Some(reason) = unsafe_reason(&st) {
            return Err(Error::UnsafeDir { path, reason });
        }
        if for_locking {
            check_writable(&fd, &path, &st)?;
        }
        Ok(LockDir {
            path,
            fd,
            source: DirSource::RunLock,
        })
    }
}

/// Create `buslock` in `parent` as root: built as a private temporary
/// directory, set to mode 1777 (umask-proof), then renamed into place
/// without replacing anything. Losing the race to another root process is
/// fine: its directory is checked like any other.
fn create_system_dir(parent: &OwnedFd, path: &Path) -> Result<()> {
    let io = |action: &'static str| {
        move |e: Errno| Error::Io {
            path: path.to_path_buf(),
            action,
            source: e.into(),
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = format!(".buslock.new.{}.{nanos}", std::process::id());
    mkdirat(parent, tmp.as_str(), Mode::from_raw_mode(0o700))
        .map_err(io("create lock directory"))?;
    let result = openat(
        parent,
        tmp.as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(|fd| fchmod(&fd, Mode::from_raw_mode(0o1777)))
    .map_err(io("set the mode of lock directory"))
    .and_then(|()| {
        renameat_with(
            parent,
            tmp.as_str(),
            parent,
            "buslock",
            RenameFlags::NOREPLACE,
        )
        .map_err(io("create lock directory"))
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            // Not renamed: remove the temporary directory. Another root
            // process that created `buslock` first is not an error.
            let _ = unlinkat(parent, tmp.as_str(), AtFlags::REMOVEDIR);
            match e {
                Error::Io { ref source, .. }
                    if source.raw_os_error() == Some(Errno::EXIST.raw_os_error()) =>
                {
                    Ok(())
                }
                e => Err(e),
            }
        }
    }
}

/// Fail with advice that works when this user cannot create files in `fd`.
fn check_writable(fd: &OwnedFd, path: &Path, st: &Stat) -> Result<()> {
    if accessat(
        fd,
        ".",
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .is_ok()
    {
        return Ok(());
    }
    Err(not_allowed(path, st, "you cannot create lock files in it"))
}

/// Why this user cannot use the directory `st` (`what` they cannot do),
/// and the fix that works for its layout.
fn not_allowed(path: &Path, st: &Stat, what: &str) -> Error {
    let perm = st.st_mode & 0o7777;
    let group = group_name(st.st_gid).unwrap_or_else(|| st.st_gid.to_string());
    let fix = if perm & 0o020 != 0 && st.st_gid != 0 {
        format!(
            "ask the admin to add your user to group \"{group}\" (`sudo usermod -aG {group} \
             USER`, then log in again), or set BUSLOCK_DIR"
        )
    } else {
        format!(
            "only root may create lock files there; ask the admin to share it: `sudo chmod 1777 \
             {}` for every user, or the buslock package / dist/buslock.conf for group \"buslock\"",
            path.display()
        )
    };
    Error::DirPermission {
        path: path.to_path_buf(),
        reason: format!(
            "{what} (owner uid {}, group {group}, mode {perm:o})",
            st.st_uid
        ),
        fix,
    }
}

impl LockDir {
    /// Another handle on the same open directory (`dup`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the process is out of file descriptors.
    pub fn try_clone(&self) -> Result<LockDir> {
        let fd = self
            .fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::Io {
                path: self.path.clone(),
                action: "duplicate the descriptor of",
                source: e,
            })?;
        Ok(LockDir {
            path: self.path.clone(),
            fd,
            source: self.source,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the directory came from.
    pub fn source(&self) -> DirSource {
        self.source
    }

    /// The open directory.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Names of the locks in this directory (files `NAME.lock` with a valid
    /// name), sorted. Other files are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be read.
    pub fn lock_names(&self) -> Result<Vec<String>> {
        let io_err = |e: std::io::Error| Error::Io {
            path: self.path.clone(),
            action: "list lock directory",
            source: e,
        };
        let dup = self.fd.as_fd().try_clone_to_owned().map_err(io_err)?;
        let mut dir = rustix::fs::Dir::new(dup).map_err(|e| io_err(e.into()))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io_err(e.into()))?;
            if let Some(name) = entry
                .file_name()
                .to_str()
                .ok()
                .and_then(super::name::name_of_file)
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}
