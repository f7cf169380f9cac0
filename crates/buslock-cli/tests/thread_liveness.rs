//! A holder *thread* that exited while its process lives does not hold the
//! lock any more (the kernel released it), and `state`/`list` must say so
//! (issue 9, item 5; the per-thread liveness itself is the library's).

mod support;

use support::{buslock, run};

#[test]
fn state_does_not_report_an_exited_holder_thread_as_holding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // This test process stays alive; only the holding thread ends.
    std::thread::spawn(move || {
        let m = buslock::Mutex::builder("SPI").dir(&path).open().unwrap();
        std::mem::forget(m.lock().unwrap());
        std::mem::forget(m);
    })
    .join()
    .unwrap();
    let mut c = buslock(dir.path());
    c.args(["state", "SPI", "--json"]);
    let out = run(c);
    let s = out.json();
    assert_eq!(out.code(), 0, "the lock is free: {s}");
    assert_eq!(s["state"], "holder_died", "{s}");
    assert_eq!(s["holder"]["alive"], false, "{s}");
    let mut c = buslock(dir.path());
    c.args(["list", "--json"]);
    let l = run(c).json();
    assert_eq!(l["locks"][0]["state"], "holder_died", "{l}");
}
