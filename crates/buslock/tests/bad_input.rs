//! Bad names, directories and lock files give typed errors that name the
//! path and the fix; never a panic, a hang, or a touched file elsewhere.

use std::os::unix::fs::FileExt;
use std::path::Path;

use buslock::{Error, Mutex};

use buslock::raw::layout::FILE_SIZE;

fn open(dir: &Path, name: &str) -> Result<Mutex, Error> {
    Mutex::builder(name).dir(dir).open()
}

fn assert_names_path(err: &Error, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name {}: {msg}",
        path.display()
    );
}

/// A valid lock file, then `patch(bytes)` applied to a copy of its bytes.
fn corrupted(patch: impl FnOnce(&std::fs::File)) -> (tempfile::TempDir, Error) {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), "SPI").unwrap());
    let path = dir.path().join("SPI.lock");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    patch(&file);
    let err = open(dir.path(), "SPI").unwrap_err();
    assert_names_path(&err, &path);
    (dir, err)
}

#[test]
fn invalid_names_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "",
        "../x",
        "a/b",
        ".hidden",
        "x\0y",
        "spaces here",
        &"n".repeat(65),
    ] {
        let err = open(dir.path(), name).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn missing_directory_and_file_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = open(&missing, "SPI").unwrap_err();
    assert!(matches!(err, Error::DirMissing { .. }), "{err}");
    assert_names_path(&err, &missing);
    assert!(err.to_string().contains("mkdir -p"), "{err}");

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = open(&file, "SPI").unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err}");
}

#[test]
fn symlink_at_the_lock_path_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious");
    std::fs::write(&target, b"do not touch").unwrap();
    let link = dir.path().join("SPI.lock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = open(dir.path(), "SPI").unwrap_err();
    assert!(matches!(err, Error::Symlink { .. }), "{err}");
    assert_names_path(&err, &link);
    assert_eq!(std::fs::read(&target).unwrap(), b"do not touch");

    // A dangling link must not make buslock create its target either.
    let dangling = dir.path().join("I2C.lock");
    let nowhere = dir.path().join("created-through-link");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    let err = open(dir.path(), "I2C").unwrap_err();
    assert!(matches!(err, Error::Symlink { .. }), "{err}");
    assert!(!nowhere.exists());
}

#[test]
fn directory_or_fifo_at_the_lock_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("SPI.lock")).unwrap();
    let err = open(dir.path(), "SPI").unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotRegularFile {
                kind: "directory",
                ..
            }
        ),
        "{err}"
    );

    let fifo = dir.path().join("I2C.lock");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    // Opening a FIFO must neither block nor be accepted.
    let err = open(dir.path(), "I2C").unwrap_err();
    assert!(
        matches!(err, Error::NotRegularFile { kind: "FIFO", .. }),
        "{err}"
    );
}

#[test]
fn truncated_file_is_refused() {
    let (_dir, err) = corrupted(|f| f.set_len(100).unwrap());
    assert!(matches!(err, Error::BadSize { size: 100, .. }), "{err}");
}

/// A lock file of layout version 3 (8192 bytes, before the
/// readers-writer lock's event ring) left by a program built with an
/// older buslock: its size differs, but the error says what is wrong
/// (the versions), not that the file is truncated.
#[test]
fn a_file_of_an_older_layout_and_size_is_a_version_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = vec![0u8; 8192];
    old[..8].copy_from_slice(b"BUSLOCK\0");
    old[8..12].copy_from_slice(&3u32.to_le_bytes());
    old[12..16].copy_from_slice(&2u32.to_le_bytes()); // ready
    std::fs::write(dir.path().join("SPI.lock"), &old).unwrap();
    let err = open(dir.path(), "SPI").unwrap_err();
    assert!(matches!(err, Error::Version { found: 3, .. }), "{err}");
    let d = buslock::LockDir::resolve(Some(dir.path())).unwrap();
    let err = buslock::LockView::open(&d, "SPI").unwrap_err();
    assert!(matches!(err, Error::Version { found: 3, .. }), "{err}");
    // Nothing was changed by looking.
    assert_eq!(std::fs::read(dir.path().join("SPI.lock")).unwrap(), old);
}

#[test]
fn foreign_file_is_refused_as_bad_magic() {
    let (_dir, err) = corrupted(|f| f.write_all_at(b"#!/bin/sh\n", 0).unwrap());
    assert!(matches!(err, Error::BadMagic { .. }), "{err}");
    // A file of the right size full of garbage.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SPI.lock"), vec![0xa5u8; FILE_SIZE]).unwrap();
    let err = open(dir.path(), "SPI").unwrap_err();
    assert!(err.is_corrupt(), "{err}");
}

#[test]
fn other_layout_version_is_refused() {
    let (_dir, err) = corrupted(|f| f.write_all_at(&99u32.to_le_bytes(), 8).unwrap());
    assert!(
        matches!(
            err,
            Error::Version {
                found: 99,
                expected: buslock::raw::layout::LAYOUT_VERSION,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn file_from_another_abi_is_refused() {
    let (_dir, err) = corrupted(|f| f.write_all_at(b"aarch64-musl-mutex24\0\0\0\0", 40).unwrap());
    match &err {
        Error::Abi {
            found, expected, ..
        } => {
            assert_eq!(found, "aarch64-musl-mutex24");
            assert!(expected.contains("-fo"), "{expected}");
        }
        other => panic!("expected an ABI error, got {other}"),
    }
}

#[test]
fn file_from_another_pid_namespace_is_refused() {
    let (_dir, err) = corrupted(|f| f.write_all_at(&12345u64.to_le_bytes(), 24).unwrap());
    assert!(
        matches!(err, Error::PidNamespace { found: 12345, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--pid=host"), "{err}");
}

#[test]
fn unknown_init_state_is_refused() {
    let (_dir, err) = corrupted(|f| f.write_all_at(&7u32.to_le_bytes(), 12).unwrap());
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn empty_file_left_by_a_dead_creator_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SPI.lock"), b"").unwrap();
    let m = open(dir.path(), "SPI").unwrap();
    drop(m.lock().unwrap());
    assert_eq!(std::fs::metadata(m.path()).unwrap().len(), FILE_SIZE as u64);
    // Inspection tools do not create or initialise.
    std::fs::write(dir.path().join("I2C.lock"), b"").unwrap();
    let err = Mutex::builder("I2C")
        .dir(dir.path())
        .create(false)
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let err = Mutex::builder("UART")
        .dir(dir.path())
        .create(false)
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(!dir.path().join("UART.lock").exists());
}

#[test]
fn lock_files_are_created_with_the_directory_sharing_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let m = open(dir.path(), "SPI").unwrap();
    let mode = std::fs::metadata(m.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o666,
        "every user of a world-shared directory must open it"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
    let m = open(dir.path(), "I2C").unwrap();
    let mode = std::fs::metadata(m.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn read_only_directory_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"])
        .arg(&ro)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a read-only tmpfs here (not root?)");
        return;
    }
    let err = open(&ro, "SPI").unwrap_err();
    let _ = std::process::Command::new("umount").arg(&ro).status();
    assert!(err.is_permission(), "{err}");
    assert_names_path(&err, &ro.join("SPI.lock"));
    assert!(err.to_string().contains("read-only"), "{err}");
}
