//! Durations for people, in the one form every message uses.

use std::time::Duration;

/// A duration for people, three significant digits: `850ns`, `12.3µs`,
/// `4.56ms`, `1.23s`, `2m03s`, `1h02m`.
///
/// Used by [`Owner`](crate::Owner)'s `Display` and by the `buslock`
/// command, so that a hold reads the same everywhere.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        three_digits(ns as f64 / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        three_digits(ns as f64 / 1e6, "ms")
    } else if ns < 60_000_000_000 {
        three_digits(ns as f64 / 1e9, "s")
    } else {
        let s = d.as_secs();
        if s < 3600 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
        }
    }
}

fn three_digits(v: f64, unit: &str) -> String {
    if v < 10.0 {
        format!("{v:.2}{unit}")
    } else if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::duration;
    use std::time::Duration;

    #[test]
    fn three_significant_digits_in_every_unit() {
        assert_eq!(duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(duration(Duration::from_nanos(12_345)), "12.3µs");
        assert_eq!(duration(Duration::from_micros(4_560)), "4.56ms");
        assert_eq!(duration(Duration::from_millis(759)), "759ms");
        assert_eq!(duration(Duration::from_millis(1_234)), "1.23s");
        assert_eq!(duration(Duration::from_secs(123)), "2m03s");
        assert_eq!(duration(Duration::from_secs(3_720)), "1h02m");
    }
}
