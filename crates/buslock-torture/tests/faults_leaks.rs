//! Opening and dropping 10,000 `Mutex` handles leaks no file descriptor and
//! no memory. Alone in its test binary so that no other test opens files
//! meanwhile.

use std::time::Duration;

use buslock::Mutex;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn ten_thousand_handles_leak_no_fds_and_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cycle = |n: usize| {
        for i in 0..n {
            let m = Mutex::builder("LEAK").dir(dir.path()).open().unwrap();
            if i % 100 == 0 {
                drop(m.lock().unwrap());
                drop(m.lock_timeout(Duration::from_millis(1)).unwrap());
                let _ = (m.owner(), m.stats(), m.waiters(), m.events_since(0));
            }
        }
    };
    cycle(200); // warm up caches and the allocator
    let (fds, maps, rss) = (open_fds(), mappings(), rss_kib());
    cycle(10_000);
    let (fds_after, maps_after, rss_after) = (open_fds(), mappings(), rss_kib());
    println!(
        "10,000 open/drop: fds {fds} -> {fds_after}, mappings {maps} -> {maps_after}, \
         RSS {rss} KiB -> {rss_after} KiB ({:+} KiB)",
        rss_after as i64 - rss as i64
    );
    assert_eq!(fds, fds_after, "file descriptors leaked");
    // The allocator may map or unmap an arena meanwhile; a leak would be
    // 10,000 mappings.
    assert!(
        maps_after <= maps + 16,
        "mappings leaked: {maps} -> {maps_after}"
    );
    // A leaked 8 KiB mapping or fd per handle would be 80 MB; allow noise.
    assert!(
        rss_after < rss + 8 * 1024,
        "RSS grew from {rss} KiB to {rss_after} KiB"
    );
}
