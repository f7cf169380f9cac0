//! Test support shared by the integration tests of the buslock crates.
//!
//! Unpublished; a dev-dependency only. Each crate's `tests/common/mod.rs`
//! (the CLI's `tests/support/mod.rs`) re-exports what it uses from here
//! under the same names and keeps only what is specific to that crate.
//!
//! - [`child`]: a child process whose stdout lines arrive on a channel, and
//!   waiting for a child under a watchdog.
//! - [`helper`]: re-executing the test binary as a helper process with a
//!   role ([`ROLE_ENV`], [`run_helper_if_requested`], [`Helper`]).
//! - [`watchdog`]: the longest any step of a test may wait
//!   ([`WATCHDOG`], [`wait_until`], [`poll_until`]); a watchdog, never a
//!   timing claim.
//! - [`bus`]: the witness [`Bus`] file that counts overlapping holders and
//!   lost updates across processes.

#![warn(missing_docs)]

pub mod bus;
pub mod child;
pub mod helper;
pub mod watchdog;

pub use bus::Bus;
pub use child::{read_lines, signal, wait_with_watchdog};
pub use helper::{Helper, ROLE_ENV, run_helper_if_requested};
pub use watchdog::{WATCHDOG, poll_until, wait_until};
