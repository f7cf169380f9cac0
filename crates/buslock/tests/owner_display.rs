//! One wording for a holder (`impl Display for Owner`), with the program
//! name from the lock file escaped, in every message that names a holder.

use std::sync::mpsc::channel;

use buslock::Mutex;

const EVIL: &str = "evil\x1b[31m\nrow";
const SHOWN: &str = "evil\\e[31m\\nrow";

/// Hold lock `SPI` in `dir` on another thread through a handle labelled
/// `label`, until the returned sender is dropped; returns the holder's tid.
fn hold_elsewhere(
    dir: &std::path::Path,
    label: &str,
) -> (
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
    u32,
) {
    let m = Mutex::builder("SPI").dir(dir).label(label).open().unwrap();
    let (held_tx, held_rx) = channel();
    let (stop_tx, stop_rx) = channel::<()>();
    let t = std::thread::spawn(move || {
        let _g = m.lock().unwrap();
        held_tx.send(buslock::identity::tid()).unwrap();
        let _ = stop_rx.recv();
    });
    let tid = held_rx.recv().unwrap();
    (stop_tx, t, tid)
}

#[test]
fn owner_display_names_pid_tid_program_and_hold_time() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, t, tid) = hold_elsewhere(dir.path(), "motor");
    let m = Mutex::builder("SPI").dir(dir.path()).open().unwrap();
    let o = m.owner().unwrap().expect("held");
    let pid = std::process::id();
    let text = o.to_string();
    let short = format!("pid {pid} tid {tid} (motor)");
    assert!(text.starts_with(&format!("{short}, held for ")), "{text}");
    assert!(!text.contains("died"), "{text}");
    assert_eq!(format!("{o:#}"), short);
    drop(stop);
    t.join().unwrap();
}

#[test]
fn owner_display_escapes_the_program_from_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, t, _) = hold_elsewhere(dir.path(), EVIL);
    let m = Mutex::builder("SPI").dir(dir.path()).open().unwrap();
    let o = m.owner().unwrap().expect("held");
    assert_eq!(o.program, EVIL, "the record keeps the raw name");
    for text in [o.to_string(), format!("{o:#}")] {
        assert!(text.contains(SHOWN) && !text.contains('\x1b'), "{text:?}");
    }
    drop(stop);
    t.join().unwrap();
}

/// `assert_held` used to put the raw program name into its panic message.
#[test]
fn assert_held_panic_escapes_the_holder_program() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, t, tid) = hold_elsewhere(dir.path(), EVIL);
    let m = Mutex::builder("SPI").dir(dir.path()).open().unwrap();
    let err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.assert_held())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    let pid = std::process::id();
    assert!(
        msg.contains(&format!("it is held by pid {pid} tid {tid} ({SHOWN})")),
        "{msg:?}"
    );
    assert!(!msg.contains('\x1b'), "{msg:?}");
    drop(stop);
    t.join().unwrap();
}
