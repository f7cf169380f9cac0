//! Who the calling thread is (pid, tid, process start time, program), cached
//! so the lock path makes no system call, and whether another process is
//! still the one a record names.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::raw::layout::{TEXT_BYTES, text_bytes};
use crate::raw::sys::on_fork_child;

/// This process's pid once known; 0 before and right after `fork`.
static PID: AtomicU32 = AtomicU32::new(0);
static START_TIME: AtomicU64 = AtomicU64::new(0);
static PROGRAM: OnceLock<[u8; TEXT_BYTES]> = OnceLock::new();

extern "C" fn forget_after_fork() {
    // Runs in the single thread of a new child: its tid and pid differ.
    crate::raw::robust::forget_tid();
    PID.store(0, Ordering::Relaxed);
}

/// The identity of the calling thread, as written into lock records.
#[derive(Debug, Clone, Copy)]
pub struct Me {
    /// Process id.
    pub pid: u32,
    /// Thread id (`gettid`).
    pub tid: u32,
    /// Process start time, clock ticks after boot.
    pub start_time: u64,
    /// Program name (or the handle's label), NUL-padded.
    pub program: &'static [u8; TEXT_BYTES],
}

/// The calling thread's identity; a few loads once warmed up.
#[inline]
pub fn me() -> Me {
    let pid = PID.load(Ordering::Acquire);
    if pid == 0 {
        return me_slow();
    }
    Me {
        pid,
        tid: tid(),
        start_time: START_TIME.load(Ordering::Relaxed),
        program: PROGRAM.get_or_init(program_name),
    }
}

#[cold]
fn me_slow() -> Me {
    on_fork_child(forget_after_fork);
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let start = process_start_time(pid).unwrap_or(0);
    START_TIME.store(start, Ordering::Relaxed);
    PID.store(pid, Ordering::Release);
    Me {
        pid,
        tid: tid(),
        start_time: start,
        program: PROGRAM.get_or_init(program_name),
    }
}

/// A label as a `'static` text, stored once per distinct label for the
/// life of the process (labels are few: one per role a program gives its
/// handles).
pub fn intern_label(label: &str) -> &'static [u8; TEXT_BYTES] {
    static LABELS: std::sync::Mutex<Vec<&'static [u8; TEXT_BYTES]>> =
        std::sync::Mutex::new(Vec::new());
    let bytes = text_bytes(label);
    let mut labels = LABELS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = labels.iter().find(|l| ***l == bytes) {
        return known;
    }
    let stored: &'static [u8; TEXT_BYTES] = Box::leak(Box::new(bytes));
    labels.push(stored);
    stored
}

/// The calling thread's id (`gettid`), cached per thread.
#[inline]
pub fn tid() -> u32 {
    crate::raw::robust::tid()
}

/// Make sure fork hooks are installed and the identity is cached.
pub fn warm_up() {
    let _ = me();
}

/// Fields of `/proc/PID/stat` after the command name: (state, start time).
///
/// Read as `/proc/PID/task/PID/stat`, the main thread's, which has the
/// same state and start time: qemu-user answers a read of `/proc/PID/stat`
/// by the emulated process itself with made-up fields, so the start time a
/// process records for itself would match nobody else's view.
fn read_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was `state`; field 22 is `starttime`.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Start time of process `pid` in clock ticks after boot, if it exists.
pub fn process_start_time(pid: u32) -> Option<u64> {
    read_stat(pid).map(|(_, start)| start)
}

/// What `/proc` says about the process a record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Running or runnable (`R`).
    Running,
    /// Sleeping, interruptibly (`S`) or in the kernel (`D`, `I`).
    Sleeping,
    /// In uninterruptible sleep (`D`): it cannot release until the kernel
    /// returns.
    DiskSleep,
    /// Stopped by a signal or a debugger (`T`, `t`): it will not release
    /// until continued.
    Stopped,
    /// Exited but not yet reaped (`Z`): its locks are already released.
    Zombie,
    /// No such process any more, or its pid now belongs to another
    /// process, or (for a lock holder) the holding *thread* has ended while
    /// its process lives on: either way it holds nothing.
    Gone,
}

impl ProcessState {
    /// Whether the process named by the record still exists (a zombie
    /// counts as gone: it can no longer hold anything).
    pub fn is_alive(self) -> bool {
        !matches!(self, ProcessState::Zombie | ProcessState::Gone)
    }

    /// A short lowercase word for people.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Running => "running",
            ProcessState::Sleeping => "sleeping",
            ProcessState::DiskSleep => "uninterruptible sleep",
            ProcessState::Stopped => "stopped",
            ProcessState::Zombie => "zombie",
            ProcessState::Gone => "gone",
        }
    }
}

/// State of process `pid` if it is still the process that started at
/// `start_time` (0 = unknown start time: any process with that pid counts).
pub fn process_state(pid: u32, start_time: u64) -> ProcessState {
    if pid == 0 {
        return ProcessState::Gone;
    }
    match read_stat(pid) {
        None => ProcessState::Gone,
        Some((_, start)) if start_time != 0 && start != start_time => ProcessState::Gone,
        Some((state, _)) => match state {
            'R' => ProcessState::Running,
            'D' => ProcessState::DiskSleep,
            'T' | 't' => ProcessState::Stopped,
            'Z' | 'X' | 'x' => ProcessState::Zombie,
            _ => ProcessState::Sleeping,
        },
    }
}

/// A readable name for this process: the basename of `argv[0]`, or of the
/// script for interpreters (`python3 motor.py` → `motor.py`).
fn program_name() -> [u8; TEXT_BYTES] {
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let name = name_from_cmdline(&cmdline);
    let name = if name.is_empty() {
        std::fs::read_to_string("/proc/self/comm")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    } else {
        name
    };
    text_bytes(&name)
}

/// The program name for a `/proc/PID/cmdline` (NUL-separated arguments).
fn name_from_cmdline(cmdline: &[u8]) -> String {
    let mut args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    let argv0 = args.next().map(|a| base(&a)).unwrap_or_default();
    let interpreted = ["python", "perl", "ruby", "node", "bash", "sh"]
        .iter()
        .any(|i| argv0.starts_with(i));
    if interpreted {
        // `python3 motor.py` → motor.py; `python3 -m motor` → motor;
        // `python3 -c CODE` → "python3 -c".
        let mut name = argv0.clone();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-m" => {
                    name = args.next().unwrap_or_default();
                    break;
                }
                "-c" => {
                    name = format!("{argv0} -c");
                    break;
                }
                a if a.starts_with('-') => continue,
                a => {
                    name = base(a);
                    break;
                }
            }
        }
        name
    } else {
        argv0
    }
}

/// `/proc/<a>` or `/proc/<a>/task/<b>` as a NUL-terminated path in `buf`,
/// built without allocating (the lock path may not allocate).
fn proc_path(buf: &mut [u8; 48], a: u32, b: Option<u32>) -> &std::ffi::CStr {
    fn push(buf: &mut [u8; 48], len: &mut usize, bytes: &[u8]) {
        buf[*len..*len + bytes.len()].copy_from_slice(bytes);
        *len += bytes.len();
    }
    fn push_num(buf: &mut [u8; 48], len: &mut usize, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        push(buf, len, &digits[i..]);
    }
    let mut len = 0;
    push(buf, &mut len, b"/proc/");
    push_num(buf, &mut len, a);
    if let Some(b) = b {
        push(buf, &mut len, b"/task/");
        push_num(buf, &mut len, b);
    }
    push(buf, &mut len, b"\0");
    std::ffi::CStr::from_bytes_with_nul(&buf[..len]).expect("one NUL at the end")
}

fn proc_exists(a: u32, b: Option<u32>) -> bool {
    let mut buf = [0u8; 48];
    let path = proc_path(&mut buf, a, b);
    match rustix::fs::statat(rustix::fs::CWD, path, rustix::fs::AtFlags::empty()) {
        Ok(_) => true,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::SRCH) => false,
        // /proc unreadable (hidepid, no /proc): assume it exists, as the
        // kernel's own answers (ESRCH, FUTEX_OWNER_DIED) still decide.
        Err(_) => true,
    }
}

/// Whether a thread with id `tid` exists (in any process). No allocation.
pub fn thread_exists(tid: u32) -> bool {
    tid != 0 && proc_exists(tid, None)
}

/// Whether thread `tid` exists and belongs to process `pid`. No
/// allocation.
pub fn thread_of(pid: u32, tid: u32) -> bool {
    pid != 0 && tid != 0 && proc_exists(pid, Some(tid))
}

/// The process (thread group) that thread `tid` belongs to, from
/// `/proc/<tid>/status`.
pub fn thread_group(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether process `pid` maps the file with device `dev` and inode `ino`
/// (from `/proc/<pid>/maps`); `None` when that cannot be read (another
/// user's process).
pub fn maps_file(pid: u32, dev: u64, ino: u64) -> Option<bool> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let want_dev = format!(
        "{:02x}:{:02x}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let want_ino = ino.to_string();
    Some(maps.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(3);
        fields.next() == Some(want_dev.as_str()) && fields.next() == Some(want_ino.as_str())
    }))
}

#[cfg(test)]
mod tests {
    use super::{name_from_cmdline, proc_path, thread_exists, thread_of};

    #[test]
    fn proc_paths_and_thread_liveness() {
        let mut buf = [0u8; 48];
        assert_eq!(
            proc_path(&mut buf, 12, Some(4_000_000_000))
                .to_str()
                .unwrap(),
            "/proc/12/task/4000000000"
        );
        let me = super::tid();
        let pid = std::process::id();
        assert!(thread_exists(me));
        assert!(thread_of(pid, me));
        assert!(!thread_of(pid, 0x3fff_fff0));
    }

    #[test]
    fn program_names_people_recognise() {
        let name = |args: &[&str]| name_from_cmdline(args.join("\0").as_bytes());
        assert_eq!(name(&["/usr/local/bin/motor-ctl", "--fast"]), "motor-ctl");
        assert_eq!(
            name(&["python3", "-u", "/home/pi/battery.py", "x"]),
            "battery.py"
        );
        assert_eq!(name(&["/usr/bin/python3.11", "-m", "logger"]), "logger");
        assert_eq!(name(&["python3", "-c", "import buslock"]), "python3 -c");
        assert_eq!(name(&["bash", "-e", "run.sh"]), "run.sh");
        assert_eq!(name(&[]), "");
    }

    #[test]
    fn own_start_time_is_what_other_processes_read() {
        // Under qemu-user, the emulated process's own `/proc/PID/stat` is
        // made up by the emulator: what it records must be what a native
        // process (`cat`) reads.
        let pid = std::process::id();
        let theirs = std::process::Command::new("cat")
            .arg(format!("/proc/{pid}/stat"))
            .output()
            .unwrap();
        let theirs = String::from_utf8(theirs.stdout).unwrap();
        let theirs: u64 = theirs[theirs.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(super::process_start_time(pid), Some(theirs));
    }
}
