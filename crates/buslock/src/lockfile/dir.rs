//! Where lock files live.
//!
//! The first of these that works: an explicit directory; `$BUSLOCK_DIR`;
//! `/run/lock/buslock`; `$XDG_RUNTIME_DIR/buslock` (per user); and
//! `/dev/shm/buslock`. buslock creates the last three itself: the shared ones
//! sticky and world-writable (mode 1777, like `/tmp`), the per-user one 0700.
//! An admin may instead prepare `/run/lock/buslock` as `root:<group>` mode
//! 2770 with the shipped `dist/buslock.conf` tmpfiles snippet.
//!
//! A default directory that exists but cannot be used is an error, not a
//! reason to move on: programs that silently used different directories
//! would not exclude each other.

use std::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    Access, AtFlags, CWD, FileType, Mode, OFlags, accessat, fchmod, fstat, mkdirat, openat,
};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Where a [`LockDir`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirSource {
    /// Passed by the program (`Builder::dir`, `--dir`).
    Explicit,
    /// `$BUSLOCK_DIR`.
    Env,
    /// `/run/lock/buslock`, shared by every user.
    RunLock,
    /// `$XDG_RUNTIME_DIR/buslock`: this user's programs only.
    UserRuntime,
    /// `/dev/shm/buslock`, shared by every user.
    DevShm,
}

impl DirSource {
    /// A short phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            DirSource::Explicit => "given explicitly",
            DirSource::Env => "from BUSLOCK_DIR",
            DirSource::RunLock => "system-wide default",
            DirSource::UserRuntime => "per-user: only this user's programs share these locks",
            DirSource::DevShm => "system-wide fallback",
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

impl LockDir {
    /// Resolve the lock directory: `explicit` if given, else `$BUSLOCK_DIR`,
    /// else the first default that works (see the module docs).
    ///
    /// # Errors
    ///
    /// A missing or unusable explicit or `$BUSLOCK_DIR` directory; a default
    /// directory that exists but is unsafe or not writable; or none usable.
    pub fn resolve(explicit: Option<&Path>) -> Result<LockDir> {
        if let Some(path) = explicit {
            return Self::open(path, DirSource::Explicit);
        }
        if let Some(env) = std::env::var_os("BUSLOCK_DIR").filter(|v| !v.is_empty()) {
            return Self::open(Path::new(&env), DirSource::Env);
        }
        let mut tried = String::new();
        let mut candidates = vec![(PathBuf::from("/run/lock"), 0o1777, DirSource::RunLock)];
        if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            candidates.push((PathBuf::from(xdg), 0o700, DirSource::UserRuntime));
        }
        candidates.push((PathBuf::from("/dev/shm"), 0o1777, DirSource::DevShm));
        for (parent, mode, source) in candidates {
            match Self::ensure_default(&parent, mode, source)? {
                Ok(dir) => return Ok(dir),
                Err(why) => {
                    let sep = if tried.is_empty() { "" } else { "; " };
                    let _ = write!(tried, "{sep}{}/buslock: {why}", parent.display());
                }
            }
        }
        Err(Error::NoLockDir { tried })
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

    /// Create (if needed) and check `parent/buslock`. The outer `Err` is a
    /// hard error; the inner one says why this candidate is skipped.
    fn ensure_default(
        parent: &Path,
        mode: u32,
        source: DirSource,
    ) -> Result<std::result::Result<LockDir, String>> {
        let path = parent.join("buslock");
        let parent_fd = match openat(
            CWD,
            parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => return Ok(Err(format!("{} is not usable ({e})", parent.display()))),
        };
        let created = match mkdirat(&parent_fd, "buslock", Mode::from_raw_mode(mode)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Ok(Err(format!("cannot create it ({e})"))),
        };
        let fd = openat(
            &parent_fd,
            "buslock",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_to_dir_error(&path, e))?;
        let st = fstat(&fd).map_err(|e| errno_to_dir_error(&path, e))?;
        let euid = rustix::process::geteuid().as_raw();
        if created && st.st_uid == euid {
            // mkdir applied the umask; set the intended mode exactly.
            fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| Error::Io {
                path: path.clone(),
                action: "set the mode of lock directory",
                source: e.into(),
            })?;
        }
        let st = fstat(&fd).map_err(|e| errno_to_dir_error(&path, e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(Error::NotADirectory { path });
        }
        if st.st_uid != 0 && st.st_uid != euid {
            return Err(Error::UnsafeDir {
                path,
                reason: format!("it is owned by uid {}, neither root nor you", st.st_uid),
            });
        }
        let perm = st.st_mode & 0o7777;
        if perm & 0o002 != 0 && perm & 0o1000 == 0 {
            return Err(Error::UnsafeDir {
                path,
                reason: format!("it is world-writable without the sticky bit (mode {perm:o})"),
            });
        }
        if accessat(
            &fd,
            ".",
            Access::WRITE_OK | Access::EXEC_OK,
            AtFlags::EACCESS,
        )
        .is_err()
        {
            return Err(Error::DirPermission {
                reason: format!(
                    "you cannot create files in it (owner uid {}, group gid {}, mode {perm:o})",
                    st.st_uid, st.st_gid
                ),
                fix: format!(
                    "add your user to group {} (see dist/buslock.conf), or set BUSLOCK_DIR",
                    st.st_gid
                ),
                path,
            });
        }
        Ok(Ok(LockDir { path, fd, source }))
    }

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
