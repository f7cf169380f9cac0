//! Inversion reports that read like the kernel's lockdep: the orders, who
//! took each and when, and the deadlock scenario.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::registry::{Registry, Witness};

/// `s` with control characters and quotes escaped, for text from records
/// (program names) printed for a person.
pub fn shown(s: &str) -> String {
    s.escape_debug().to_string()
}

/// `t` as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn who(w: &Witness) -> String {
    format!(
        "'{}' (pid {}, tid {}) at {}",
        shown(&w.program),
        w.pid,
        w.tid,
        utc(w.at)
    )
}

fn held_list(held: &[String]) -> String {
    if held.is_empty() {
        "nothing".to_owned()
    } else {
        held.join(", ")
    }
}

/// The report for `taker`, which holds `taker.from` and wants `taker.to`,
/// while `chain` (`to -> ... -> from`, class indices) was recorded before.
pub(crate) fn inversion(reg: &Registry, dir: &str, taker: &Witness, chain: &[u16]) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "possible circular locking dependency (lock-order inversion) in lock directory '{}':",
        shown(dir)
    );
    let _ = writeln!(
        r,
        "  {} wants lock '{}' while holding '{}' (holds: {})",
        who(taker),
        taker.to,
        taker.from,
        held_list(&taker.held)
    );
    let _ = writeln!(r, "  but the opposite order was recorded before:");
    let names: Vec<String> = chain.iter().map(|&c| reg.name(c)).collect();
    let mut takers = Vec::new();
    for pair in chain.windows(2) {
        let (a, b) = (reg.name(pair[0]), reg.name(pair[1]));
        match reg.edge_witness(pair[0], pair[1]) {
            Some(w) => {
                let _ = writeln!(
                    r,
                    "    '{a}' then '{b}': first taken by {} (holds: {})",
                    who(&w),
                    held_list(&w.held)
                );
                takers.push(format!("'{}' (pid {})", shown(&w.program), w.pid));
            }
            None => {
                let _ = writeln!(
                    r,
                    "    '{a}' then '{b}': witness no longer in the registry's ring"
                );
                takers.push("a program".to_owned());
            }
        }
    }
    let _ = writeln!(
        r,
        "  the cycle: {} -> {}",
        names.join(" -> "),
        names.first().map_or("?", String::as_str)
    );
    let _ = writeln!(r, "  possible scenario:");
    for (i, pair) in names.windows(2).enumerate() {
        let _ = writeln!(
            r,
            "    process {} ({}): holds '{}', wants '{}'",
            i + 1,
            takers[i],
            pair[0],
            pair[1]
        );
    }
    let _ = writeln!(
        r,
        "    process {} ('{}' (pid {})): holds '{}', wants '{}'",
        names.len(),
        shown(&taker.program),
        taker.pid,
        taker.from,
        taker.to
    );
    let _ = write!(
        r,
        "    *** DEADLOCK *** if these run at once; take the locks in one order everywhere \
         (see `buslock order`)"
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00.000 UTC");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_250);
        assert_eq!(utc(t), "2024-02-29 23:59:59.250 UTC");
    }

    #[test]
    fn shown_escapes_control_characters() {
        assert_eq!(shown("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
    }
}
