//! A lock file unlinked or replaced while processes use it. A process that
//! mapped the old file notices at its first release after the check
//! interval (or before it next waits) that its file is no longer the one at
//! the path, and moves to the new one; from then on it and the processes
//! that opened the new file exclude each other. See docs/RELIABILITY.md.

use buslock::Mutex;

fn open(dir: &std::path::Path) -> Mutex {
    Mutex::builder("SPLIT").dir(dir).open().unwrap()
}

/// Let the old handle pass its check interval and release once: the
/// release looks at the path.
fn notice(old: &Mutex) {
    std::thread::sleep(buslock::CHECK_INTERVAL + std::time::Duration::from_millis(10));
    drop(old.lock().unwrap());
}

/// Once `old` noticed, it must see the holder of the file at the path.
fn assert_old_handle_follows(old: &Mutex, new: &Mutex) {
    notice(old);
    let held = new.lock().unwrap();
    // From another thread: from this one it would be recursion, which is
    // what the old handle reports once it uses the same file as `new`.
    let second = std::thread::scope(|s| {
        s.spawn(|| old.try_lock().unwrap().is_some())
            .join()
            .unwrap()
    });
    assert!(
        !second,
        "two holders at once: the old handle kept the old file"
    );
    drop(held);
}

#[test]
fn lock_file_unlinked_while_in_use_does_not_split_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let old = open(dir.path());
    std::fs::remove_file(old.path()).unwrap();
    let new = open(dir.path()); // creates a fresh file at the path
    assert_old_handle_follows(&old, &new);
}

#[test]
fn lock_file_replaced_while_in_use_does_not_split_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let old = open(dir.path());
    // A valid lock file made elsewhere, renamed over the one in use.
    let replacement = open(other.path());
    std::fs::rename(replacement.path(), old.path()).unwrap();
    drop(replacement);
    let new = open(dir.path());
    assert_old_handle_follows(&old, &new);
}
