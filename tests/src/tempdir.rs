//! A temporary directory that unprivileged callers can traverse, removed on drop (kept, with its
//! path printed, when the test is panicking, so a failure can be examined).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/agentd-e2e-<pid>-<n>-<nanos>`, mode 0755.
    pub fn new() -> TempDir {
        TempDir::new_in(&std::env::temp_dir())
    }

    /// Creates `PARENT/agentd-e2e-<pid>-<n>-<nanos>`, mode 0755.
    pub fn new_in(parent: &Path) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("agentd-e2e-{}-{n}-{nanos:x}", std::process::id());
        let path = parent.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        set_mode(&path, 0o755);
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let line = format!("note: kept {} for inspection\n", self.path.display());
            let _ = std::io::stderr().write_all(line.as_bytes());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A directory for temp dirs that lies outside `/tmp`, `/var/tmp` and `/dev/shm`
/// (`target/<profile>/agentd-e2e-scratch`, mode 0755): a run with `tmp = "private"` replaces
/// those, so a home or workspace below them is not where a real user's would be.
pub fn outside_tmp() -> PathBuf {
    let dir = crate::bins::profile_dir().join("agentd-e2e-scratch");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    set_mode(&dir, 0o755);
    dir
}

/// chmod, panicking with the path on failure.
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// chown, panicking with the path on failure.
pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {uid}:{gid} {}: {e}", path.display()));
}

/// Writes `contents` to `path` with `mode`, owned by `uid:gid`.
pub fn write_owned(path: &Path, contents: &[u8], mode: u32, uid: u32, gid: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
    chown(path, uid, gid);
}

/// Creates the directory `path` with `mode`, owned by `uid:gid`.
pub fn mkdir_owned(path: &Path, mode: u32, uid: u32, gid: u32) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    set_mode(path, mode);
    chown(path, uid, gid);
}
