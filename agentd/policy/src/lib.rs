//! agentd policy: TOML syntax → validation → compiled [`Policy`].
//!
//! - `syntax`: the serde mirror of the TOML (`deny_unknown_fields`); nothing else reads TOML.
//! - `compile`: loading (presets by name, `extends`), merging, variable substitution and all
//!   validation; every error names `file:line:col` and what to write instead.
//! - `model`: the compiled policy, plain data.
//! - `glob`: the path patterns of `hide` and rules, and the argv patterns of exec rules.
//! - `event`: what the agent tried ([`Event`]) and the answer ([`Decision`]).
//! - `decide`: [`decide`], the pure function from a policy and an event to a decision.
//! - `explain`: [`explain`], `decide` with its reasons: every matching rule and the winner.
//! - `lint`: [`lint`], warnings about rules that can never match and exposed secrets.
//!
//! This crate is pure Rust with no unsafe code and no knowledge of the kernel.
#![forbid(unsafe_code)]

pub mod compile;
mod decide;
pub mod event;
pub mod explain;
pub mod glob;
pub mod lint;
pub mod model;
mod syntax;

pub use compile::{GrantKind, Loader, Origin, PolicyError};
pub use decide::{argv_matters, decide, IMPLICIT_RW};
pub use event::{Decision, Event, OpenAccess, SockAddr, Verdict};
pub use explain::{explain, Explanation};
pub use glob::{ArgvGlob, Glob};
pub use lint::{lint, Warning};
pub use model::*;
