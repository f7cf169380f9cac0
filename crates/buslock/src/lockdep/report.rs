//! Inversion reports that read like the kernel's lockdep: the orders, who
//! took each and when, and the deadlock scenario.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::registry::{Registry, Witness};

/// `t` in UTC as RFC 3339 with milliseconds (`2024-02-29T23:59:59.250Z`),
/// as the `buslock` command shows times.
pub fn utc(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn who(w: &Witness) -> String {
    format!(
        "'{}' (pid {}, tid {}) at {}",
        crate::escape(&w.program),
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
        crate::escape(dir)
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
                takers.push(format!("'{}' (pid {})", crate::escape(&w.program), w.pid));
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
        crate::escape(&taker.program),
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
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_250);
        assert_eq!(utc(t), "2024-02-29T23:59:59.250Z");
    }
}
