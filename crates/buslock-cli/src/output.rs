//! The one place that writes for people: standard output and standard
//! error, with fallible writes only.
//!
//! Rust programs ignore `SIGPIPE`, so a closed pipe is an `EPIPE` error on
//! write; `println!`/`eprintln!` would panic on it. Here a failed write to
//! standard error is dropped (there is nowhere left to say anything), and a
//! failed write to standard output is returned, for the command to decide:
//! read-only commands end quietly (`buslock list | head`), `hold` and `run`
//! keep the lock for as long as they were asked to and say so on standard
//! error.

use std::io::{self, Write};

use crate::render::escape;

/// Write `text` to standard output and flush it.
pub fn out(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Write `buslock: <message>` and a newline to standard error, escaping
/// anything in `message` that a terminal would interpret. Returns whether
/// the write succeeded; a closed standard error is not an error.
pub fn report(message: &str) -> bool {
    let line = format!("buslock: {}\n", escape(message));
    let mut err = io::stderr().lock();
    err.write_all(line.as_bytes())
        .and_then(|()| err.flush())
        .is_ok()
}
