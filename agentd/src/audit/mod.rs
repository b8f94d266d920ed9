//! The audit log: one append-only, hash-chained JSON-lines log per run,
//! `<state-dir>/runs/<id>/audit.jsonl` (docs/audit.md). Before the file would exceed the
//! configured size it is renamed `audit.<N>.jsonl` (N = 1, 2, …) and the chain continues in a
//! fresh `audit.jsonl`: `seq` goes on and the first `prev` is the last hash of the previous file.
//! The log is the segments in ascending N, then `audit.jsonl`; verify and the reader take them
//! in that order.
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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Rotation size of logs opened with [`AuditLog::open`]; 0 = never.
static ROTATE_BYTES: AtomicU64 = AtomicU64::new(crate::config::DEFAULT_AUDIT_ROTATE_BYTES);

/// Sets the size at which logs opened from now on rotate (`audit_rotate_bytes`; 0 = never).
/// The daemon calls it once at start-up, before any log is opened.
pub fn set_rotate_bytes(bytes: u64) {
    ROTATE_BYTES.store(bytes, Ordering::Relaxed);
}

pub(crate) fn rotate_bytes() -> u64 {
    ROTATE_BYTES.load(Ordering::Relaxed)
}

/// The rotated segments of the log whose live file is `live` (`dir/audit.jsonl` →
/// `dir/audit.<N>.jsonl`), in ascending N. A missing directory has none.
pub fn segments(live: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name();
        let Some(n) = file
            .to_str()
            .and_then(|f| f.strip_prefix(stem))
            .and_then(|f| f.strip_prefix('.'))
            .and_then(|f| f.strip_suffix(".jsonl"))
            .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|f| f.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, live.with_file_name(file)));
    }
    out.sort();
    Ok(out)
}

/// The path of segment `n` of the log whose live file is `live`.
pub fn segment_path(live: &Path, n: u64) -> PathBuf {
    let name = live
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(FILE_NAME);
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    live.with_file_name(format!("{stem}.{n}.jsonl"))
}

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
