//! The lock and unlock path allocates nothing on the heap, contended or not
//! (DHAT's testing mode counts every allocation of this process).
//!
//! `harness = false`: libtest's own thread allocates now and then while a
//! test runs (its timeout queue, channels), which DHAT would count too (seen
//! as 38 blocks against 34 in one loaded run).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    lock_and_unlock_allocate_nothing();
    println!("no_alloc: 1 passed, 0 failed");
}

fn lock_and_unlock_allocate_nothing() {
    let _profiler = dhat::Profiler::builder()
        .testing()
        .file_name(std::env::temp_dir().join("buslock-no-alloc-dhat.json"))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(
        buslock::Mutex::builder("SPI")
            .dir(dir.path())
            .open()
            .unwrap(),
    );
    // Warm up: the first lock caches this thread's identity.
    drop(m.lock().unwrap());

    let before = dhat::HeapStats::get();
    for _ in 0..1000 {
        let g = m.lock().unwrap();
        drop(g);
        drop(m.try_lock().unwrap());
    }
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(after.total_blocks, before.total_blocks);

    // Contended: another thread holds while this one waits in the kernel.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let other = {
        let (m, stop, rounds) = (m.clone(), stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let g = m.lock().unwrap();
                std::thread::yield_now();
                drop(g);
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the other thread finish starting (which allocates) first.
    while rounds.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let contended_before = m.stats().unwrap().contended;
    let before = dhat::HeapStats::get();
    for _ in 0..1000 {
        drop(m.lock().unwrap());
    }
    let after = dhat::HeapStats::get();
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
    let contended = m.stats().unwrap().contended - contended_before;
    dhat::assert!(contended > 0, "the contended phase never waited");
}
