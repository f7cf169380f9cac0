//! The lock-file layout, pinned: the same byte offsets on every target
//! (x86_64, 64-bit aarch64 and 32-bit armv7, where pointers and `time_t`
//! have other sizes). `scripts/test.d/arm.sh` runs this
//! file on both ARM targets under qemu; `scripts/test` on the host.
//!
//! Changing the layout means bumping `LAYOUT_VERSION` and this table
//! together: programs built with another layout must refuse the file, never
//! misread it.

use std::mem::{align_of, offset_of, size_of};

use buslock::raw::layout::{
    EventRing, FILE_SIZE, Header, KIND_MUTEX, LAYOUT_VERSION, LockPage, MAGIC, MutexBlock,
    OwnerRecord, RwBlock, RwPage, StatsBlock, WaiterSlot,
};

/// Where the owner record starts in the file.
const OWNER: usize = 192;

#[test]
fn struct_offsets_are_the_same_on_every_target() {
    assert_eq!(
        LAYOUT_VERSION, 4,
        "layout version changed: update this table"
    );
    assert_eq!(FILE_SIZE, 12288);
    let header = [
        ("magic", offset_of!(Header, magic), 0),
        ("version", offset_of!(Header, version), 8),
        ("init_state", offset_of!(Header, init_state), 12),
        ("file_size", offset_of!(Header, file_size), 16),
        ("page_size", offset_of!(Header, page_size), 20),
        ("pid_ns", offset_of!(Header, pid_ns), 24),
        ("created_real_ns", offset_of!(Header, created_real_ns), 32),
        ("abi", offset_of!(Header, abi), 40),
        ("retired", offset_of!(Header, retired), 72),
        ("starving_tid", offset_of!(Header, starving_tid), 76),
        (
            "starving_since_ns",
            offset_of!(Header, starving_since_ns),
            80,
        ),
        ("starving_beat_ns", offset_of!(Header, starving_beat_ns), 88),
        ("boot_id", offset_of!(Header, boot_id), 96),
        ("kind", offset_of!(Header, kind), 112),
        ("size_of Header", size_of::<Header>(), 128),
    ];
    let page = [
        ("header", offset_of!(LockPage, header), 0),
        // The lock word at 128 on every target, in its own cache line with
        // its robust-list node, whose offset follows the pointer width
        // (pinned by the library's unit tests).
        ("mutex", offset_of!(LockPage, mutex), 128),
        ("size_of MutexBlock", size_of::<MutexBlock>(), 64),
        ("owner", offset_of!(LockPage, owner), OWNER),
        ("stats", offset_of!(LockPage, stats), 256),
        ("size_of StatsBlock", size_of::<StatsBlock>(), 640),
        ("waiters", offset_of!(LockPage, waiters), 896),
        ("size_of WaiterSlot", size_of::<WaiterSlot>(), 64),
        ("events", offset_of!(LockPage, events), 2944),
        ("size_of EventRing", size_of::<EventRing>(), 5184),
        ("size_of LockPage", size_of::<LockPage>(), 8128),
        ("align_of LockPage", align_of::<LockPage>(), 64),
    ];
    // A readers-writer lock's page shares the mutex page's first 2944 bytes.
    let rw = [
        ("rw header", offset_of!(RwPage, header), 0),
        ("rw word", offset_of!(RwPage, mutex), 128),
        ("rw writer record", offset_of!(RwPage, owner), OWNER),
        ("rw stats", offset_of!(RwPage, stats), 256),
        ("rw waiters", offset_of!(RwPage, waiters), 896),
        ("rw block", offset_of!(RwPage, rw), 2944),
        ("size_of RwBlock", size_of::<RwBlock>(), 64),
        ("rw readers", offset_of!(RwPage, readers), 3008),
        ("rw events", offset_of!(RwPage, events), 7104),
        ("size_of RwPage", size_of::<RwPage>(), 12288),
    ];
    let owner = [
        ("seq", offset_of!(OwnerRecord, seq), 0),
        ("pid", offset_of!(OwnerRecord, pid), 4),
        ("tid", offset_of!(OwnerRecord, tid), 8),
        ("flags", offset_of!(OwnerRecord, flags), 12),
        ("start_time", offset_of!(OwnerRecord, start_time), 16),
        (
            "acquired_mono_ns",
            offset_of!(OwnerRecord, acquired_mono_ns),
            24,
        ),
        ("program", offset_of!(OwnerRecord, program), 32),
        ("size_of OwnerRecord", size_of::<OwnerRecord>(), 64),
    ];
    let wrong: Vec<String> = header
        .iter()
        .chain(&page)
        .chain(&rw)
        .chain(&owner)
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what}: {got}, pinned {want}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "lock-file layout differs on {}: {wrong:?}",
        std::env::consts::ARCH
    );
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn a_held_lock_file_on_disk_has_the_pinned_bytes() {
    // Every supported target is little-endian; a big-endian one would
    // need its own layout version.
    const { assert!(cfg!(target_endian = "little")) };
    let dir = tempfile::tempdir().unwrap();
    let m = buslock::Mutex::builder("LAYOUT")
        .dir(dir.path())
        .open()
        .unwrap();
    let guard = m.lock().unwrap();
    let bytes = std::fs::read(dir.path().join("LAYOUT.lock")).unwrap();
    assert_eq!(bytes.len(), FILE_SIZE);
    assert_eq!(&bytes[0..8], b"BUSLOCK\0");
    assert_eq!(u64::from_le_bytes(bytes[0..8].try_into().unwrap()), MAGIC);
    assert_eq!(u32_at(&bytes, 8), LAYOUT_VERSION);
    assert_eq!(u32_at(&bytes, 12), 2, "init state READY");
    assert_eq!(u32_at(&bytes, 16), FILE_SIZE as u32);
    assert_eq!(u32_at(&bytes, 112), KIND_MUTEX, "kind");
    let abi = String::from_utf8_lossy(&bytes[40..72]);
    assert!(
        abi.starts_with(std::env::consts::ARCH),
        "ABI tag {abi:?} does not name {}",
        std::env::consts::ARCH
    );
    // The holder's record, where every other program reads it.
    assert_eq!(u32_at(&bytes, OWNER + 4), std::process::id());
    assert_ne!(u32_at(&bytes, OWNER + 8), 0, "holder tid");
    // The lock word names the same thread (no waiters, owner alive).
    assert_eq!(u32_at(&bytes, 128), u32_at(&bytes, OWNER + 8), "lock word");
    drop(guard);
}
