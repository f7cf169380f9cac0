//! What `/proc` says about a process that the lock file only knows by pid.

/// The program name of process `pid` as buslock records it: the basename
/// of `argv[0]`, or of the script for interpreters. `None` if it is gone.
pub fn program(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    let argv0 = args.next().map(|a| base(&a))?;
    let interpreted = ["python", "perl", "ruby", "node", "bash", "sh"]
        .iter()
        .any(|i| argv0.starts_with(i));
    if interpreted {
        if let Some(script) = args.find(|a| !a.starts_with('-')) {
            return Some(base(&script));
        }
    }
    Some(argv0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_this_test_binary() {
        let me = super::program(std::process::id()).unwrap();
        assert!(me.starts_with("buslock"), "{me}");
        assert_eq!(super::program(u32::MAX), None);
    }
}
