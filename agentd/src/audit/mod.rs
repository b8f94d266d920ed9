//! The audit log: one append-only, hash-chained JSON-lines file per run,
//! `<state-dir>/runs/<id>/audit.jsonl` (docs/audit.md).
//!
//! - [`record`]: the [`Record`] type, its exact byte form and the hash rule;
//! - [`writer`]: [`AuditLog::open`] → [`AuditHandle`], a writer thread behind a bounded queue
//!   that blocks the sender when full (never drops) and fails closed after an I/O error;
//! - [`reader`]: filtered, incremental reading for `agentctl audit [--follow]`;
//! - [`verify`](mod@verify): checks the chain and names the first broken record.
//!
//! This module is the only writer of audit files; it decides nothing.

pub mod reader;
pub mod record;
pub mod verify;
pub mod writer;

pub use reader::{read, Filter, Tail};
pub use record::{Body, Entry, Kind, Record};
pub use verify::{verify, VerifyError};
pub use writer::{AuditError, AuditHandle, AuditLog};

/// The file name of a run's log inside its run directory.
pub const FILE_NAME: &str = "audit.jsonl";

#[cfg(test)]
mod tests;

/// Temp directories for the module's tests.
#[cfg(test)]
pub(crate) mod testlog {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new(tag: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let dir =
                std::env::temp_dir().join(format!("agentd-audit-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, content).unwrap();
            p
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
