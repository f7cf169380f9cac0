//! `buslock demo`: worker processes (motor, battery, logger, ...) share a
//! simulated SPI bus under one buslock mutex; after a while the demo kills
//! one with `SIGKILL` while it holds the bus, restarts it, and shows that
//! the next holder was told and recovered. Then it prints a per-worker
//! table and a timeline of who held the bus when.

pub mod bus;
mod report;
pub mod worker;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use buslock::{Mutex, Owner};
use rustix::process::{Pid, Signal, kill_process};

use crate::cli::DemoArgs;
use crate::error::CliError;
use crate::exit;
use crate::render::{self, Style};
use crate::signals::{self, Signals};
use bus::Bus;
use report::{Kill, WorkerReport};

/// The demo's lock name (prefixed so that a `--dir` shared with real
/// programs does not collide with their `SPI`).
const LOCK: &str = "demo-SPI";
const NAMES: [&str; 8] = [
    "motor", "battery", "logger", "imu", "camera", "lidar", "gps", "servo",
];

/// A running worker.
struct Worker {
    name: &'static str,
    child: Child,
    pids: Vec<u32>,
    exited: bool,
}

struct Setup {
    dir: PathBuf,
    bus: PathBuf,
    epoch: SystemTime,
    until: SystemTime,
    hold: Duration,
}

impl Setup {
    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("demo-{name}.log"))
    }

    fn spawn(&self, id: usize, name: &'static str) -> Result<Child, CliError> {
        let exe = std::env::current_exe().map_err(CliError::io("find the buslock executable"))?;
        let ns = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        };
        Command::new(&exe)
            // argv[0] becomes the program name recorded in the lock.
            .arg0(name)
            .arg("__demo-worker")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--worker", name, "--lock", LOCK])
            .arg("--id")
            .arg((id + 1).to_string())
            .arg("--bus")
            .arg(&self.bus)
            .arg("--log")
            .arg(self.log(name))
            .arg("--epoch-ns")
            .arg(ns(self.epoch).to_string())
            .arg("--until-ns")
            .arg(ns(self.until).to_string())
            .arg("--hold")
            .arg(format!("{}us", self.hold.as_micros()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| CliError::Spawn {
                program: exe.display().to_string(),
                source,
            })
    }

    fn at(&self) -> String {
        let t = SystemTime::now()
            .duration_since(self.epoch)
            .unwrap_or_default();
        format!("[{:>5.2}s]", t.as_secs_f64())
    }
}

fn kill(child: &Child, sig: Signal) {
    let _ = kill_process(Pid::from_child(child), sig);
}

/// Sleep until `t` in short steps; `false` if a signal came first.
fn sleep_until(t: SystemTime, sig: &Signals) -> bool {
    while SystemTime::now() < t {
        if sig.received().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Poll the owner record every millisecond until `pred` holds or `limit`.
fn wait_owner(
    m: &Mutex,
    limit: SystemTime,
    sig: &Signals,
    pred: impl Fn(&Owner) -> bool,
) -> Result<Option<Owner>, CliError> {
    while SystemTime::now() < limit && sig.received().is_none() {
        if let Some(o) = m.owner()?.filter(|o| pred(o)) {
            return Ok(Some(o));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(None)
}

/// Wait until worker `pid` has just taken the lock, let it get halfway
/// through its transaction, and check that it still holds the same lock
/// (then it is the moment to kill it). `None` if that never happened
/// before `limit`.
fn catch_mid_transaction(
    m: &Mutex,
    limit: SystemTime,
    sig: &Signals,
    pid: u32,
    hold: Duration,
) -> Result<Option<Owner>, CliError> {
    let half = hold / 2;
    loop {
        let Some(o) = wait_owner(m, limit, sig, |o| {
            o.pid == pid && o.is_alive() && o.held_for < half
        })?
        else {
            return Ok(None);
        };
        std::thread::sleep(half - o.held_for);
        if m.owner()?
            .is_some_and(|now| now.pid == pid && now.since == o.since)
        {
            return Ok(Some(o));
        }
    }
}

/// Run the demo.
pub fn run(dir: Option<&Path>, a: &DemoArgs) -> Result<ExitCode, CliError> {
    let sig = Signals::install()?;
    let style = Style::detect();
    let temp;
    let (dir, temporary) = match dir {
        Some(d) => (d.to_path_buf(), false),
        None => {
            temp = tempfile::Builder::new()
                .prefix("buslock-demo-")
                .tempdir()
                .map_err(CliError::io("create a temporary directory for the demo"))?;
            (temp.path().to_path_buf(), true)
        }
    };
    let m = Mutex::builder(LOCK).dir(&dir).open()?;
    m.reset_stats()?;
    let bus_path = dir.join("demo-bus.sim");
    let bus =
        Bus::create(&bus_path).map_err(CliError::io(format!("create '{}'", bus_path.display())))?;
    let n = a.workers as usize;
    let names: Vec<&'static str> = NAMES.iter().copied().cycle().take(n).collect();
    for name in &names {
        let _ = std::fs::remove_file(dir.join(format!("demo-{name}.log")));
    }
    let epoch = SystemTime::now();
    let setup = Setup {
        dir: dir.clone(),
        bus: bus_path,
        epoch,
        until: epoch + a.duration,
        hold: a.hold,
    };
    let mut out = std::io::stdout();
    // The running commentary; JSON output gets only the final document.
    let mut say: Box<dyn Write> = if a.json {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    {
        writeln!(
            say,
            "{}",
            style.bold(&format!(
                "buslock demo: {n} workers share a simulated SPI bus for {}, {} per transaction",
                render::duration(a.duration),
                render::duration(a.hold)
            ))
        )?;
        writeln!(
            say,
            "lock '{LOCK}' in {}{}",
            render::escape(&dir.display().to_string()),
            if temporary { " (temporary)" } else { "" }
        )?;
    }
    let mut workers = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let child = setup.spawn(i, name)?;
        writeln!(say, "{} started {:<8} pid {}", setup.at(), name, child.id())?;
        workers.push(Worker {
            name,
            pids: vec![child.id()],
            child,
            exited: false,
        });
    }
    let result = supervise(a, &setup, &m, &mut workers, &sig, &mut say, style);
    // Whatever happened, leave no worker behind.
    for w in &mut workers {
        if !w.exited {
            kill(&w.child, Signal::TERM);
            let _ = w.child.wait();
        }
    }
    let kill_info = result?;
    let reports: Vec<WorkerReport> = workers
        .iter()
        .map(|w| WorkerReport::load(w.name, w.pids.clone(), &setup.log(w.name)))
        .collect();
    let mut kill_info = kill_info;
    if let Some(k) = kill_info.as_mut().filter(|k| k.recovered_by.is_none()) {
        // Polling can miss a short takeover; the workers' logs cannot.
        k.recovered_by = reports.iter().find_map(|r| {
            let rec = r.records.iter().find(|rec| rec.recovered)?;
            let at = setup.epoch + Duration::from_nanos(rec.acquired_ns);
            Some((r.name.to_owned(), *r.pids.last()?, at))
        });
    }
    let counters = bus
        .counters()
        .map_err(CliError::io("read the simulated bus"))?;
    let stats = m.stats()?;
    let verdict = report::verdict(&reports, counters, kill_info.as_ref(), !a.no_kill);
    let results = report::Results {
        reports,
        bus: counters,
        kill: kill_info,
        stats,
        verdict,
    };
    if a.json {
        report::print_json(&mut out, &setup_summary(&setup, &dir), &results)?;
    } else {
        let text = report::human(&results, a.duration, a.hold, style);
        out.write_all(text.as_bytes())?;
    }
    match results.verdict {
        Ok(_) => Ok(ExitCode::from(exit::OK)),
        Err(why) => Err(CliError::Demo(why)),
    }
}

fn setup_summary(setup: &Setup, dir: &Path) -> report::SetupJson {
    report::SetupJson {
        dir: dir.display().to_string(),
        lock: LOCK,
        duration_ms: render::millis(setup.until.duration_since(setup.epoch).unwrap_or_default()),
        hold_ms: render::millis(setup.hold),
    }
}

/// Kill a worker while it holds the bus (unless `--no-kill`), restart it,
/// watch the recovery, then wait for everyone to finish.
fn supervise(
    a: &DemoArgs,
    setup: &Setup,
    m: &Mutex,
    workers: &mut [Worker],
    sig: &Signals,
    out: &mut impl Write,
    style: Style,
) -> Result<Option<Kill>, CliError> {
    let interrupted = |sig: &Signals| {
        let s = sig.received().unwrap_or(signals::TERM);
        CliError::Interrupted {
            name: LOCK.to_owned(),
            signal: s,
            signal_name: signals::name(s),
        }
    };
    let mut kill_info = None;
    if !a.no_kill {
        if !sleep_until(setup.epoch + a.duration.mul_f64(0.4), sig) {
            return Err(interrupted(sig));
        }
        let victim = &mut workers[0];
        let pid = victim.child.id();
        let limit = setup.epoch + a.duration.mul_f64(0.8);
        let holding = catch_mid_transaction(m, limit, sig, pid, a.hold)?;
        if sig.received().is_some() {
            return Err(interrupted(sig));
        }
        if let Some(o) = holding {
            kill(&victim.child, Signal::KILL);
            let killed_at = SystemTime::now();
            let _ = victim.child.wait();
            let held_from = o.since;
            writeln!(
                out,
                "{} {} {} (pid {pid}) with SIGKILL while it held the bus",
                setup.at(),
                style.bad("killed"),
                victim.name
            )?;
            // Restart it at once, as a service manager would; with
            // `--workers 1` the restarted worker is the one that is told.
            workers[0].child = setup.spawn(0, workers[0].name)?;
            workers[0].pids.push(workers[0].child.id());
            writeln!(
                out,
                "{} restarted {} as pid {}",
                setup.at(),
                workers[0].name,
                workers[0].child.id()
            )?;
            let limit = SystemTime::now() + Duration::from_secs(3);
            let taker = wait_owner(m, limit, sig, |o| o.pid != pid && o.took_over_from_dead)?;
            let recovered_by = taker.as_ref().map(|o| {
                let name = workers
                    .iter()
                    .find(|w| w.pids.contains(&o.pid))
                    .map_or(o.program.clone(), |w| w.name.to_owned());
                (name, o.pid, o.since)
            });
            if let Some((name, taker_pid, _)) = &recovered_by {
                writeln!(
                    out,
                    "{} {} (pid {taker_pid}) took the lock and was told the previous owner \
                     died: {}",
                    setup.at(),
                    name,
                    style.good("it reset the bus and carried on")
                )?;
            }
            kill_info = Some(Kill {
                worker: workers[0].name,
                pid,
                held_from,
                killed_at,
                epoch: setup.epoch,
                recovered_by,
            });
        } else {
            writeln!(
                out,
                "{} {} never held the bus in time; no kill this run",
                setup.at(),
                workers[0].name
            )?;
        }
    }
    let watchdog = Instant::now()
        + setup
            .until
            .duration_since(SystemTime::now())
            .unwrap_or_default()
        + Duration::from_secs(5);
    loop {
        if sig.received().is_some() {
            return Err(interrupted(sig));
        }
        let mut running = 0;
        for w in workers.iter_mut() {
            if w.exited {
                continue;
            }
            match w.child.try_wait() {
                Ok(Some(status)) => {
                    w.exited = true;
                    if !status.success() {
                        return Err(CliError::Demo(format!(
                            "worker {} (pid {}) failed with {status}",
                            w.name,
                            w.child.id()
                        )));
                    }
                }
                Ok(None) => running += 1,
                Err(e) => return Err(CliError::io("wait for a demo worker")(e)),
            }
        }
        if running == 0 {
            return Ok(kill_info);
        }
        if Instant::now() > watchdog {
            return Err(CliError::Demo(
                "workers did not stop within 5 s of the end; killed them".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
