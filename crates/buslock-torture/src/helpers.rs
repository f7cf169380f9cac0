//! Small helper processes for the fault tests: hold a lock, wait for one,
//! or just open one and say what happened. Each prints one line per step on
//! stdout (flushed) so a test can follow it.

use std::io::Write;
use std::time::Duration;

use buslock::Mutex;

use crate::args::Args;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn open(args: &Args, create: bool) -> Result<Mutex, String> {
    Mutex::builder(&args.string("name")?)
        .dir(args.path("dir")?)
        .create(create)
        .open()
        .map_err(|e| e.to_string())
}

/// `__hold --dir D --name N [--exit]`: take the lock, print `locked
/// <previous_owner_died>`, then sleep until killed, or with `--exit` exit
/// at once while holding it (a holder that dies).
pub fn hold(args: &Args) -> Result<(), String> {
    let mutex = open(args, true)?;
    let guard = mutex.lock().map_err(|e| e.to_string())?;
    say(&format!("locked {}", guard.previous_owner_died()));
    if args.flag("exit") {
        std::process::exit(0);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `__wait --dir D --name N`: print `waiting`, block in `lock()`, print
/// `locked <previous_owner_died>`, release and exit.
pub fn wait(args: &Args) -> Result<(), String> {
    let mutex = open(args, true)?;
    say("waiting");
    let guard = mutex.lock().map_err(|e| e.to_string())?;
    say(&format!("locked {}", guard.previous_owner_died()));
    drop(guard);
    Ok(())
}

/// `__open --dir D --name N [--create]`: open the lock and print `ok`, or
/// `error <kind>: <message>`; with `--lock`, also take and release it.
pub fn open_helper(args: &Args) -> Result<bool, String> {
    let result = Mutex::builder(&args.string("name")?)
        .dir(args.path("dir")?)
        .create(args.flag("create"))
        .open()
        .and_then(|m| {
            if args.flag("lock") {
                drop(m.lock()?);
            }
            Ok(())
        });
    match result {
        Ok(()) => {
            say("ok");
            Ok(true)
        }
        Err(e) => {
            // The variant name first, so tests can match it exactly.
            let debug = format!("{e:?}");
            let variant = debug.split([' ', '{', '(']).next().unwrap_or("");
            say(&format!("error {variant}: {e}"));
            Ok(false)
        }
    }
}
