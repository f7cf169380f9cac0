//! Program names and labels recorded in lock files are untrusted: human
//! output shows their control characters as escapes (issue 9, item 4).

mod support;

use std::process::Command;

use rustix::process::Signal;
use support::{BIN, Proc, buslock, eventually, run};

const EVIL: &str = "evil\x1b[31m\nrow";
const SHOWN: &str = "evil\\e[31m\\nrow";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains('\x1b') && !text.contains("\nrow"),
        "{what} printed the raw program name: {text:?}"
    );
    assert!(
        text.contains(SHOWN),
        "{what} does not show it escaped: {text:?}"
    );
}

#[test]
fn untrusted_program_names_are_escaped_in_every_human_output() {
    let dir = tempfile::tempdir().unwrap();
    // `exec -a NAME` sets argv[0], which buslock records as the program.
    let mut c = Command::new("bash");
    c.env("BUSLOCK_DIR", dir.path())
        .env("NO_COLOR", "1")
        .arg("-c")
        .arg(format!("exec -a \"$EVIL\" {BIN} hold SPI"))
        .env("EVIL", EVIL);
    let mut holder = Proc::spawn(c);
    holder.expect_line(|l| l.starts_with("holding lock"));
    for args in [vec!["list"], vec!["state", "SPI"], vec!["doctor"]] {
        let mut c = buslock(dir.path());
        c.args(&args);
        let out = run(c);
        assert_clean(&args.join(" "), &out.stdout);
    }
    let mut c = buslock(dir.path());
    c.args(["hold", "SPI", "--timeout", "10ms"]);
    let out = run(c);
    assert_eq!(out.code(), 4);
    assert_clean("the timeout error", &out.stderr);
    // watch: the acquire line now, the release line when it lets go.
    let mut c = buslock(dir.path());
    c.args(["watch", "SPI", "--count", "1", "--interval", "0"]);
    let mut w = Proc::spawn(c);
    w.expect_line(|l| l.contains("acquire"));
    holder.signal(Signal::TERM);
    assert_eq!(holder.finish().code(), 0);
    let out = w.finish();
    assert_eq!(out.code(), 0, "{out:?}");
    assert_clean("watch", &out.stdout);
    assert!(out.stdout.contains("release"), "{out:?}");
    eventually("the lock to be free", || {
        let mut c = buslock(dir.path());
        c.args(["state", "SPI"]);
        (run(c).code() == 0).then_some(())
    });
}
