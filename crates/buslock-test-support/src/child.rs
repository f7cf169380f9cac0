//! Child processes: their output lines on a channel, waits under a
//! watchdog, signals.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// Read `out` line by line on a thread; the lines arrive on the returned
/// channel, which disconnects at end of file. Join the handle to know that
/// every line has been sent.
pub fn read_lines(out: impl Read + Send + 'static) -> (Receiver<String>, JoinHandle<()>) {
    let (tx, lines) = channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (lines, reader)
}

/// Wait for `child` to exit; after `limit`, SIGKILL and reap it and fail
/// the test.
///
/// # Panics
///
/// If `child` is still running after `limit`.
pub fn wait_with_watchdog(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "process {} still running after {limit:?}; killed",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Send `sig` to `child`.
///
/// # Panics
///
/// If the signal cannot be sent.
pub fn signal(child: &Child, sig: Signal) {
    let pid = Pid::from_child(child);
    kill_process(pid, sig).unwrap_or_else(|e| panic!("signal {sig:?} to {}: {e}", child.id()));
}

/// SIGKILL `child` if it is still running, and reap it.
pub fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
