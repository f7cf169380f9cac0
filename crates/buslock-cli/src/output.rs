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
    let line = format!("buslock: {}\n", neutralise(message));
    let mut err = io::stderr().lock();
    err.write_all(line.as_bytes())
        .and_then(|()| err.flush())
        .is_ok()
}

/// `message` with every character a terminal would interpret escaped, as
/// [`escape`] does, but with backslashes left alone: the library's
/// messages (deadlock and lock-order reports, owners) already escape the
/// untrusted text they quote, and escaping them again would show `\\e`
/// for `\e`. Raw control characters are still shown as escapes, so a
/// message that quotes untrusted text unescaped cannot reach the terminal
/// as it is.
fn neutralise(message: &str) -> String {
    message
        .split('\\')
        .map(escape)
        .collect::<Vec<_>>()
        .join("\\")
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn library_messages_already_escaped_are_not_escaped_twice() {
        let quoted = buslock::escape("evil\x1b[31m\nrow");
        assert_eq!(
            neutralise(&format!("held by '{quoted}'")),
            format!("held by '{quoted}'")
        );
        assert_eq!(neutralise("raw\x1b[31m\nrow"), "raw\\e[31m\\nrow");
        assert_eq!(neutralise("a\\b\u{202e}"), "a\\b\\u{202e}");
    }
}
