//! Untrusted text made safe to show on a terminal.
//!
//! Program names, labels and paths come from lock files, which any user of
//! a lock directory can write. Everything buslock prints for a person, in
//! error messages, lock-order reports and the `buslock` command, goes
//! through [`escape`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Untrusted text (program names and labels from lock files, paths, file
/// names, error messages quoting them) made safe to show on a terminal:
/// control characters (C0, DEL, C1) and the Unicode format characters that
/// reorder or hide text (bidirectional overrides and isolates, marks) are
/// shown as escapes (`\e`, `\n`, `\t`, `\r`, `\x07`, `\u{202e}`), and a
/// backslash is doubled so that an escape cannot be faked.
///
/// Every human output path goes through it; JSON output is escaped by
/// `serde_json` instead.
///
/// ```
/// assert_eq!(buslock::escape("motor"), "motor");
/// assert_eq!(buslock::escape("evil\x1b[31m\nrow"), "evil\\e[31m\\nrow");
/// ```
pub fn escape(s: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || c == '\\'
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
            )
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\x1b' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_shows_control_and_bidi_characters() {
        assert_eq!(escape("motor-1 (ok)"), "motor-1 (ok)");
        assert_eq!(escape("evil\x1b[31m\nrow"), "evil\\e[31m\\nrow");
        assert_eq!(escape("a\\e"), "a\\\\e");
        assert_eq!(escape("\x07\u{9b}"), "\\x07\\x9b");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("µs ✓"), "µs ✓");
    }
}
