//! The per-worker log of a crash run: one line per step, each written with
//! one `write` on an `O_APPEND` file, so a `SIGKILL` loses at most the line
//! not yet written, never half a line.
//!
//! | line | written |
//! |------|---------|
//! | `L <wait-start-ns> <acquired-ns> <died 0/1>` | right after taking the lock, before touching the shared state: the owner-died report |
//! | `C <acquired-ns>` | the `inside` flag was set and the lock said the previous owner died: cleared |
//! | `V <acquired-ns> <flag>` | the `inside` flag was set but nobody died: an exclusion violation |
//! | `I <value>` | the counter was incremented to `value` |
//! | `U <released-ns>` | after releasing the lock |
//! | `D <ns>` | an ABBA pair closed a cycle and this worker's wait was refused with `Error::Deadlock` (it releases what it holds and goes on) |
//! | `E <message>` | the lock returned an error; the worker exits |

use std::fs::File;
use std::io::Write;

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Took the lock.
    Locked {
        /// When it started waiting.
        wait_start: u64,
        /// When it held the lock.
        acquired: u64,
        /// `previous_owner_died()`.
        died: bool,
    },
    /// Cleared the flag of a holder that died inside.
    Cleared {
        /// When the hold began.
        acquired: u64,
    },
    /// Found the flag set without an owner-died report.
    Violation {
        /// When the hold began.
        acquired: u64,
        /// The flag found (the pid of the other holder).
        flag: u64,
    },
    /// Incremented the counter.
    Incremented {
        /// The value written.
        value: u64,
    },
    /// Released the lock.
    Unlocked {
        /// When.
        released: u64,
    },
    /// A wait was refused as a deadlock (ABBA pairs).
    Deadlock {
        /// When.
        at: u64,
    },
    /// The lock failed.
    Error(String),
}

impl Line {
    /// Parse one line; `None` for anything unrecognised (a torn last line).
    pub fn parse(s: &str) -> Option<Line> {
        let mut f = s.split_whitespace();
        let kind = f.next()?;
        let mut num = || f.next().and_then(|v| v.parse::<u64>().ok());
        Some(match kind {
            "L" => Line::Locked {
                wait_start: num()?,
                acquired: num()?,
                died: num()? == 1,
            },
            "C" => Line::Cleared { acquired: num()? },
            "V" => Line::Violation {
                acquired: num()?,
                flag: num()?,
            },
            "I" => Line::Incremented { value: num()? },
            "U" => Line::Unlocked { released: num()? },
            "D" => Line::Deadlock { at: num()? },
            "E" => Line::Error(s.get(2..).unwrap_or("").to_owned()),
            _ => return None,
        })
    }

    /// The line as written, with its newline.
    pub fn format(&self) -> String {
        match self {
            Line::Locked {
                wait_start,
                acquired,
                died,
            } => format!("L {wait_start} {acquired} {}\n", u8::from(*died)),
            Line::Cleared { acquired } => format!("C {acquired}\n"),
            Line::Violation { acquired, flag } => format!("V {acquired} {flag}\n"),
            Line::Incremented { value } => format!("I {value}\n"),
            Line::Unlocked { released } => format!("U {released}\n"),
            Line::Deadlock { at } => format!("D {at}\n"),
            Line::Error(m) => format!("E {}\n", m.replace('\n', " ")),
        }
    }

    /// Whether a worker whose last line is this one and that holds the lock
    /// has logged its current hold (its `L` line is written).
    pub fn hold_logged(&self) -> bool {
        matches!(
            self,
            Line::Locked { .. }
                | Line::Cleared { .. }
                | Line::Violation { .. }
                | Line::Incremented { .. }
        )
    }
}

/// Append `line` with a single `write`.
pub fn append(file: &mut File, line: &Line) -> Result<(), String> {
    file.write_all(line.format().as_bytes())
        .map_err(|e| format!("cannot write the worker log: {e}"))
}

/// All complete lines of a log (a torn last line is dropped).
pub fn read_all(text: &str) -> Vec<Line> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().filter_map(Line::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for line in [
            Line::Locked {
                wait_start: 1,
                acquired: 2,
                died: true,
            },
            Line::Cleared { acquired: 3 },
            Line::Violation {
                acquired: 4,
                flag: 5,
            },
            Line::Incremented { value: 6 },
            Line::Unlocked { released: 7 },
            Line::Deadlock { at: 8 },
            Line::Error("lock failed".into()),
        ] {
            assert_eq!(Line::parse(line.format().trim_end()), Some(line));
        }
    }

    #[test]
    fn a_torn_last_line_is_dropped() {
        assert_eq!(read_all("I 1\nL 2 3"), vec![Line::Incremented { value: 1 }]);
    }
}
