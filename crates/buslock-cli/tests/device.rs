//! `run`, `hold` and `state` take a bus device node where a lock name goes,
//! and lock the bus by the same rule as the library and Python
//! (`buslock::bus_lock_name`).

mod support;

use support::{Proc, buslock, run};

#[test]
fn a_device_path_names_the_lock_of_its_bus() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["hold", "/dev/spidev0.1"]);
    let mut holder = Proc::spawn(c);
    let line = holder.expect_line(|l| l.starts_with("holding lock"));
    assert!(line.starts_with("holding lock 'spi0'"), "{line}");
    // Another chip select of the same bus is the same lock.
    let mut c = buslock(dir.path());
    c.args(["state", "/dev/spidev0.0", "--json"]);
    let out = run(c);
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.json()["name"], "spi0", "{out:?}");
    holder.signal(rustix::process::Signal::TERM);
    holder.finish();
    // `run` with an I2C node: the command sees the lock's name.
    let mut c = buslock(dir.path());
    c.args(["run", "/dev/i2c-1", "--", "sh", "-c", "echo $BUSLOCK_LOCK"]);
    let out = run(c);
    assert_eq!((out.code(), out.stdout.trim()), (0, "i2c-1"), "{out:?}");
}

#[test]
fn a_path_that_is_no_bus_device_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = buslock(dir.path());
    c.args(["run", "/dev/ttyAMA0", "--", "true"]);
    let out = run(c);
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(
        out.stderr
            .contains("'/dev/ttyAMA0' is not an SPI or I2C device node"),
        "{out:?}"
    );
}
