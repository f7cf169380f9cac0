//! Test support: re-executing the test binary as helper processes, and a
//! shared "bus" file that checks exclusion across processes and threads.
//!
//! All of it lives once in the unpublished `buslock-test-support` crate;
//! this module keeps the names the tests of this crate use.

#![allow(dead_code, unused_imports)] // each test binary uses a different part

pub use buslock_test_support::{
    Bus, Helper, ROLE_ENV, WATCHDOG, run_helper_if_requested, wait_until,
};
