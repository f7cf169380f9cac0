//! The owner-died hook: it runs before the first transaction after a
//! holder died, and again before the next one if it failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use buslock_hal::{BusLock, Error, LockedI2c};
use embedded_hal::i2c::{self, I2c};

struct Counting(Arc<AtomicUsize>);

impl i2c::ErrorType for Counting {
    type Error = i2c::ErrorKind;
}

impl I2c for Counting {
    fn transaction(&mut self, _: u8, _: &mut [i2c::Operation<'_>]) -> Result<(), Self::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A thread takes the bus lock and exits holding it (the kernel marks the
/// owner dead, as for a killed process).
fn die_holding(dir: &std::path::Path) {
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let m = buslock::Mutex::builder("i2c-1").dir(dir).open().unwrap();
        std::mem::forget(m.lock().unwrap());
        std::mem::forget(m);
    })
    .join()
    .unwrap();
}

#[test]
fn a_failed_reset_fails_the_transaction_and_runs_again_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let transfers = Arc::new(AtomicUsize::new(0));
    let resets = Arc::new(AtomicUsize::new(0));
    let r = resets.clone();
    let mut dev = LockedI2c::new(
        Counting(transfers.clone()),
        BusLock::for_device_in("/dev/i2c-1", dir.path()).unwrap(),
    )
    .on_owner_died(move |_| {
        // The first reset fails (a NACK from the device), the second works.
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(i2c::ErrorKind::NoAcknowledge(
                i2c::NoAcknowledgeSource::Address,
            ))
        } else {
            Ok(())
        }
    });
    dev.write(0x40, &[1]).unwrap();
    assert_eq!(resets.load(Ordering::SeqCst), 0, "no death, no reset");
    die_holding(dir.path());
    let e = dev.write(0x40, &[1]).unwrap_err();
    assert!(
        matches!(e, Error::Bus(i2c::ErrorKind::NoAcknowledge(_))),
        "{e:?}"
    );
    assert_eq!(
        transfers.load(Ordering::SeqCst),
        1,
        "no transfer after a failed reset"
    );
    // The lock was released although the reset failed.
    assert!(!dev.lock().mutex().is_locked());
    dev.write(0x40, &[1]).unwrap();
    dev.write(0x40, &[1]).unwrap();
    assert_eq!(resets.load(Ordering::SeqCst), 2, "retried once, then done");
    assert_eq!(transfers.load(Ordering::SeqCst), 3);
}
