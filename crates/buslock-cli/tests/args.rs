//! Bad command lines get clap's usual errors and exit status 2.

mod support;

use support::{buslock, run};

#[test]
fn bad_arguments_are_clap_errors_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["run", "SPI"], "required"),
        (vec!["hold", "SPI", "--for", "banana"], "invalid value"),
        (vec!["state"], "required"),
        (vec!["demo", "--workers", "0"], "invalid value"),
        (vec!["list", "--bogus"], "unexpected argument"),
    ] {
        let mut c = buslock(dir.path());
        c.args(&args);
        let out = run(c);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error:"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("--help"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn invalid_lock_names_are_lock_errors_with_status_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["run", "../etc", "--", "true"]);
    let out = run(c);
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(
        out.stderr.starts_with("buslock: invalid lock name"),
        "{out:?}"
    );
}

#[test]
fn help_and_version_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--help"], vec!["--version"], vec!["run", "--help"]] {
        let mut c = buslock(dir.path());
        c.args(&args);
        assert_eq!(run(c).code(), 0, "{args:?}");
    }
}
