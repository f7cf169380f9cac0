//! Hard links, half-made and foreign files at a lock path: refused, and
//! diagnosed the same (true) way by every command (issue 9, items 3 and 8).

mod support;

use std::path::Path;

use support::{buslock, run};

fn out(dir: &Path, args: &[&str]) -> support::Output {
    let mut c = buslock(dir);
    c.args(args);
    run(c)
}

#[test]
fn hard_link_at_the_lock_path_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    std::fs::create_dir(&locks).unwrap();
    // An empty file elsewhere (say, a config file an attacker wants
    // overwritten), hard-linked as SPI.lock.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "").unwrap();
    std::fs::hard_link(&victim, locks.join("SPI.lock")).unwrap();
    for args in [
        vec!["hold", "SPI", "--for", "0s"],
        vec!["run", "SPI", "--", "true"],
        vec!["state", "SPI"],
    ] {
        let o = out(&locks, &args);
        assert_eq!(o.code(), 3, "{args:?}: {o:?}");
        assert!(o.stderr.contains("2 hard links"), "{args:?}: {o:?}");
    }
    assert_eq!(
        std::fs::metadata(&victim).unwrap().len(),
        0,
        "buslock wrote the linked file"
    );
    let o = out(&locks, &["doctor"]);
    assert_eq!(o.code(), 1, "{o:?}");
    assert!(o.stdout.contains("2 hard links"), "{o:?}");
    assert!(!o.stdout.contains("valid lock file"), "{o:?}");
    assert!(!o.stdout.contains("chmod"), "{o:?}");
    let o = out(&locks, &["list"]);
    assert!(o.stdout.contains("2 hard links"), "{o:?}");
}

/// The read-only commands' diagnoses of `SPI.lock` in `dir`.
fn diagnoses(dir: &Path) -> Vec<(String, String)> {
    vec![
        ("state".into(), out(dir, &["state", "SPI"]).stderr),
        ("list".into(), out(dir, &["list"]).stdout),
        ("doctor".into(), out(dir, &["doctor"]).stdout),
    ]
}

#[test]
fn a_random_bytes_file_is_not_a_lock_file_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..buslock::raw::layout::FILE_SIZE)
        .map(|i| (i * 7 + 3) as u8)
        .collect();
    std::fs::write(dir.path().join("SPI.lock"), &junk).unwrap();
    let mut all = diagnoses(dir.path());
    all.push(("hold".into(), out(dir.path(), &["hold", "SPI"]).stderr));
    for (what, text) in all {
        assert!(
            text.contains("is not a buslock lock file"),
            "{what} says: {text}"
        );
        assert!(!text.contains("died"), "{what} says: {text}");
    }
}

#[test]
fn an_empty_file_is_not_blamed_on_a_dead_creator() {
    // What a creator leaves when fallocate fails with ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SPI.lock"), "").unwrap();
    for (what, text) in diagnoses(dir.path())
        .into_iter()
        .filter(|(w, _)| w != "hold SPI --for 0s")
    {
        assert!(text.contains("it is empty"), "{what} says: {text}");
        assert!(text.contains("full file system"), "{what} says: {text}");
    }
    // Taking the lock initialises it.
    let o = out(dir.path(), &["hold", "SPI", "--for", "0s"]);
    assert_eq!(o.code(), 0, "{o:?}");
}
