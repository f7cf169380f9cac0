//! Human output: durations, times, aligned tables, histogram bars, colours.

use std::io::IsTerminal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use buslock::Histogram;

pub use buslock::escape;

/// A duration for people: `850ns`, `12.3µs`, `4.56ms`, `1.23s`, `2m03s`,
/// `1h02m` (the library's, so that holds read the same in its messages).
pub use buslock::human::duration;

/// `1 hold`, `2 holds`.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Seconds since the Unix epoch, as JSON carries times.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A duration in milliseconds, as JSON carries `*_ms` fields.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A full timestamp: `2026-11-23T10:53:01.234Z` (UTC).
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Time of day in UTC: `10:53:01.234`.
pub fn time_of_day(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        (day_ms / 60_000) % 60,
        (day_ms / 1000) % 60,
        day_ms % 1000
    )
}

/// ANSI colours, enabled only when standard output is a terminal and
/// `NO_COLOR` is not set.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Colours if stdout is a terminal.
    pub fn detect() -> Self {
        Style {
            enabled: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Bold.
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Green: free, ok.
    pub fn good(self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Yellow: held, warnings.
    pub fn warn(self, s: &str) -> String {
        self.paint("33", s)
    }
    /// Red: deaths, errors.
    pub fn bad(self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Dim: secondary information.
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    /// One of a few distinct colours, by index (demo workers).
    pub fn nth(self, i: usize, s: &str) -> String {
        const CODES: [&str; 6] = ["36", "35", "34", "32", "33", "96"];
        self.paint(CODES[i % CODES.len()], s)
    }
}

/// A cell of a [`Table`]: its text and how to colour it after padding.
pub struct Cell {
    text: String,
    paint: fn(Style, &str) -> String,
}

fn plain(_: Style, s: &str) -> String {
    s.to_owned()
}

impl Cell {
    /// An uncoloured cell; its text is [`escape`]d.
    pub fn new(text: impl Into<String>) -> Self {
        Cell::styled(text, plain)
    }

    /// A cell coloured with one of [`Style`]'s methods; its text is
    /// [`escape`]d.
    pub fn styled(text: impl Into<String>, paint: fn(Style, &str) -> String) -> Self {
        let text = text.into();
        Cell {
            text: escape(&text).into_owned(),
            paint,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(t: T) -> Self {
        Cell::new(t)
    }
}

/// An aligned text table: left-aligned text, right-aligned numbers.
pub struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column headers; a header starting with `>` is
    /// right-aligned (the `>` is not shown).
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            right: header.iter().map(|h| h.starts_with('>')).collect(),
            header: header.iter().map(|h| h.trim_start_matches('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Render with two spaces between columns, header in bold.
    pub fn render(&self, style: Style, indent: &str) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(&c.text));
            }
        }
        let pad = |text: &str, i: usize| {
            let fill = " ".repeat(widths[i] - width(text));
            if self.right[i] {
                format!("{fill}{text}")
            } else {
                format!("{text}{fill}")
            }
        };
        let mut out = String::new();
        let header: Vec<String> = (0..self.header.len())
            .map(|i| pad(self.header[i], i))
            .collect();
        out.push_str(indent);
        out.push_str(&style.bold(header.join("  ").trim_end()));
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| (c.paint)(style, &pad(&c.text, i)))
                .collect();
            out.push_str(indent);
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// A histogram as one bar per bucket between the first and last non-empty
/// bucket: `   1.02µs..2.05µs  ██████████▌   123`.
pub fn histogram_bars(h: &Histogram, style: Style, indent: &str) -> String {
    const WIDTH: usize = 40;
    let Some(first) = h.buckets.iter().position(|&n| n > 0) else {
        return format!("{indent}{}\n", style.dim("(no samples)"));
    };
    let last = h.buckets.iter().rposition(|&n| n > 0).unwrap_or(first);
    let max = h.buckets.iter().copied().max().unwrap_or(1).max(1);
    let edges: Vec<(String, String)> = (first..=last)
        .map(|i| {
            let (lo, hi) = Histogram::bounds(i);
            (duration(lo), hi.map_or(String::new(), duration))
        })
        .collect();
    let lo_w = edges.iter().map(|e| e.0.chars().count()).max().unwrap_or(0);
    let hi_w = edges.iter().map(|e| e.1.chars().count()).max().unwrap_or(0);
    let labels: Vec<String> = edges
        .iter()
        .map(|(lo, hi)| {
            let lo_fill = " ".repeat(lo_w - lo.chars().count());
            let hi_fill = " ".repeat(hi_w - hi.chars().count());
            format!("{lo_fill}{lo} .. {hi}{hi_fill}")
        })
        .collect();
    let label_w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, i) in labels.iter().zip(first..=last) {
        let n = h.buckets[i];
        let eighths = (n as u128 * (WIDTH as u128 * 8)).div_ceil(max as u128) as usize;
        let mut bar = "█".repeat(eighths / 8);
        if eighths % 8 > 0 {
            bar.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
        }
        let fill = " ".repeat(label_w - label.chars().count());
        let bar_fill = " ".repeat(WIDTH + 1 - bar.chars().count());
        out.push_str(&format!(
            "{indent}{fill}{label}  {}{bar_fill}{n}\n",
            style.warn(&bar)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_is_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(86_400_000 * 3 + 3_723_004);
        assert_eq!(time_of_day(t), "01:02:03.004");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["NAME", ">N"]);
        t.row(vec!["SPI".into(), "1".into()]);
        t.row(vec!["I2C-10".into(), "1234".into()]);
        let out = t.render(Style { enabled: false }, "");
        assert_eq!(out, "NAME       N\nSPI        1\nI2C-10  1234\n");
    }

    #[test]
    fn bars_scale_to_the_largest_bucket() {
        let mut h = Histogram { buckets: [0; 32] };
        h.buckets[1] = 10;
        h.buckets[3] = 5;
        let out = histogram_bars(&h, Style { enabled: false }, "");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains(&"█".repeat(40)), "{out}");
        assert!(lines[1].trim_end().ends_with(" 0"), "{out}");
        assert!(lines[2].contains(&"█".repeat(20)), "{out}");
    }
}
