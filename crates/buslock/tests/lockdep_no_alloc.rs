//! Lock-order checking allocates nothing on the lock path of a nested
//! acquisition whose edges are known (DHAT counts every allocation of this
//! process).
//!
//! `harness = false`: libtest's own thread allocates now and then while a
//! test runs (its timeout queue, channels), which DHAT would count too (seen
//! as 38 blocks against 34 in one loaded run).

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    nested_lock_on_known_edges_allocates_nothing();
    println!("lockdep_no_alloc: 1 passed, 0 failed");
}

fn nested_lock_on_known_edges_allocates_nothing() {
    let _profiler = dhat::Profiler::builder()
        .testing()
        .file_name(std::env::temp_dir().join("buslock-lockdep-no-alloc-dhat.json"))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let open = |n: &str| {
        buslock::Mutex::builder(n)
            .dir(dir.path())
            .lockdep(buslock::lockdep::Mode::Error)
            .open()
            .unwrap()
    };
    let (a, b, c) = (open("A"), open("B"), open("C"));
    // Warm up: learn A -> B, A -> C, B -> C.
    {
        let _a = a.lock().unwrap();
        let _b = b.lock().unwrap();
        let _c = c.lock().unwrap();
    }
    let before = dhat::HeapStats::get();
    for _ in 0..1000 {
        let ga = a.lock().unwrap();
        let gb = b.lock().unwrap();
        let gc = c.lock().unwrap();
        drop(ga); // out of order
        drop(gc);
        drop(gb);
        drop(b.try_lock().unwrap());
    }
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
}
