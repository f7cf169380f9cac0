//! One wording for a holder (`impl Display for Owner`), with the program
//! name from the lock file escaped, in every message that names a holder.

use std::sync::mpsc::channel;

use buslock::Mutex;

const EVIL: &str = "evil\x1b[31m\nrow";
const SHOWN: &str = "evil\\e[31m\\nrow";

/// While another thread of this process holds lock `SPI` (in a fresh lock
/// directory) through a handle labelled `label`, run `f` with a second
/// handle and the holder's tid.
fn while_held_elsewhere(label: &str, f: impl FnOnce(&Mutex, u32)) {
    let dir = tempfile::tempdir().unwrap();
    let holder = Mutex::builder("SPI")
        .dir(dir.path())
        .label(label)
        .open()
        .unwrap();
    let (held_tx, held_rx) = channel();
    let (stop_tx, stop_rx) = channel::<()>();
    let t = std::thread::spawn(move || {
        let _g = holder.lock().unwrap();
        held_tx.send(buslock::identity::tid()).unwrap();
        let _ = stop_rx.recv();
    });
    let tid = held_rx.recv().unwrap();
    let m = Mutex::builder("SPI").dir(dir.path()).open().unwrap();
    f(&m, tid);
    drop(stop_tx);
    t.join().unwrap();
}

#[test]
fn owner_display_names_pid_tid_program_and_hold_time() {
    while_held_elsewhere("motor", |m, tid| {
        let o = m.owner().unwrap().expect("held");
        let text = o.to_string();
        let short = format!("pid {} tid {tid} (motor)", std::process::id());
        assert!(text.starts_with(&format!("{short}, held for ")), "{text}");
        assert!(!text.contains("died"), "{text}");
        assert_eq!(format!("{o:#}"), short);
    });
}

#[test]
fn owner_display_escapes_the_program_from_the_lock_file() {
    while_held_elsewhere(EVIL, |m, _| {
        let o = m.owner().unwrap().expect("held");
        assert_eq!(o.program, EVIL, "the record keeps the raw name");
        for text in [o.to_string(), format!("{o:#}")] {
            assert!(text.contains(SHOWN) && !text.contains('\x1b'), "{text:?}");
        }
    });
}

/// `assert_held` used to put the raw program name into its panic message.
#[test]
fn assert_held_panic_escapes_the_holder_program() {
    while_held_elsewhere(EVIL, |m, tid| {
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.assert_held())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        let pid = std::process::id();
        assert!(
            msg.contains(&format!("it is held by pid {pid} tid {tid} ({SHOWN})")),
            "{msg:?}"
        );
        assert!(!msg.contains('\x1b'), "{msg:?}");
    });
}
