//! agentd: a syscall-level supervisor for AI coding agents.
//!
//! Code map (ARCHITECTURE.md §3):
//! - [`config`]: defaults, `/etc/agentd/agentd.toml`, flags.
//! - [`daemon`]: the tokio shell. `server` accepts connections, `requests` checks authority
//!   (identity from `SO_PEERCRED`, never from a request) and answers, `runs` carries one run
//!   from request to exit, `registry` holds the runs, `identity` reads the caller's files with the
//!   caller's filesystem identity.
//! - [`launch`]: mechanism only. A compiled policy becomes a plain-data `Spec` (`plan`); the
//!   launcher process (`agentd __launch`, `helper`) builds namespaces, the run's init builds the
//!   filesystem view (`mounts`), the agent drops privileges (`privs`), applies Landlock
//!   (`landlock`) and the seccomp deny list (`filter`), and execs. `cgroup` gives each run
//!   limits and an atomic kill.
//! - [`audit`]: the per-run, hash-chained JSON-lines audit log: writer (bounded queue, never
//!   drops), reader, verify.
//! - [`sys`]: the only `unsafe` in the workspace, one kernel facility per file.
//!
//! Dependency direction: `agentd-policy` ← `agentd-proto` ← this crate. Launch never sees TOML.
#![deny(unsafe_code)]

pub mod audit;
pub mod config;
pub mod daemon;
pub mod launch;
pub mod monitor;
pub mod sys;
