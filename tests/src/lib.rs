//! Fixtures for agentd's end-to-end tests: a real `agentd` on a temp socket and state dir
//! ([`Daemon`]), driven by the real `agentctl` as an unprivileged [`Caller`] whose fake home holds
//! known secrets, with every child wait bounded ([`command`]) and every privileged test gated on a
//! probed host capability ([`require!`], [`Feature`]).
//!
//! Layout:
//! - `bins`     where agentd, agentctl and the probe helper are (a missing one is a hard failure)
//! - `feature`  capability probes, `AGENTD_TEST_EXPECT`, SKIP lines
//! - `daemon`   start (ready fd), log, stop on drop
//! - `caller`   the unprivileged user, its home, workspace and environment
//! - `command`  run with a deadline; background children killed on drop
//! - `tempdir`  temp dirs unprivileged uids can traverse
//!
//! The tests run as root (agentd refuses anything else); they never apply Landlock or seccomp in
//! the test process itself: every confined thing is a child of agentd.

// This crate is test code: a failed expectation must fail the test loudly. clippy.toml's
// allow-*-in-tests does not reach crates under tests/ (rust-clippy#13981).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bins;
pub mod caller;
pub mod command;
pub mod daemon;
pub mod feature;
pub mod tempdir;

pub use caller::Caller;
pub use command::Output;
pub use daemon::Daemon;
pub use feature::{current_test, require, Feature, SANDBOX};
