//! agentd policy: TOML syntax → validation → compiled [`Policy`].
//!
//! - `syntax`: the serde mirror of the TOML (`deny_unknown_fields`); nothing else reads TOML.
//! - `compile`: loading (presets by name, `extends`), merging, variable substitution and all
//!   validation; every error names `file:line:col` and what to write instead.
//! - `model`: the compiled policy, plain data.
//! - `glob`: the path patterns of `hide`.
//!
//! This crate is pure Rust with no unsafe code and no knowledge of the kernel.
#![forbid(unsafe_code)]

pub mod compile;
pub mod glob;
pub mod model;
mod syntax;

pub use compile::{Loader, PolicyError};
pub use glob::Glob;
pub use model::*;
