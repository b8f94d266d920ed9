//! Path resolution for the monitor: every path an agent names is resolved inside the run's
//! view (`openat2(RESOLVE_IN_ROOT)` from the run's root, as the run's user), and judged by the
//! path the resulting descriptor really names.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::decode::DecodeError;
use super::Monitor;
use crate::sys::mount_api;

/// The absolute view path of `raw` as the agent named it (relative to its cwd or `dirfd`).
pub(super) fn absolute(tid: i32, dirfd: i32, raw: &[u8]) -> Result<PathBuf, DecodeError> {
    if raw.is_empty() {
        return Err(DecodeError::Errno(libc::ENOENT));
    }
    let p = Path::new(OsStr::from_bytes(raw));
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let base = if dirfd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{tid}/cwd"))
    } else {
        std::fs::read_link(format!("/proc/{tid}/fd/{dirfd}"))
    }
    .map_err(|_| DecodeError::Errno(libc::EBADF))?;
    if !base.is_absolute() {
        return Err(DecodeError::Errno(libc::ENOTDIR));
    }
    Ok(base.join(p))
}

/// Opens `abs` (a view path) as `O_PATH`. Paths through the agent's own magic links
/// (`/proc/self/fd/N`, `/dev/stdin`, …) are opened through the host's `/proc/<tid>`; everything
/// else inside the view's root, never leaving it. Returns the fd and whether it came through
/// the agent's own descriptors.
pub(super) fn resolve_in_view(
    m: &Monitor,
    tid: i32,
    abs: &Path,
    nofollow: bool,
    resolve: u64,
) -> std::io::Result<(OwnedFd, bool)> {
    if let Some(host) = own_magic_link(tid, abs) {
        return mount_api::open_path_follow(&host, nofollow).map(|fd| (fd, true));
    }
    let abs = translate_self(tid, abs);
    let rel: PathBuf = abs
        .components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    // The agent's own restrictions apply on top of ours.
    let extra =
        resolve & (libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV);
    mount_api::open_in_root(m.root.as_fd(), &rel, nofollow, extra).map(|fd| (fd, false))
}

/// `/proc/self/fd/3`, `/dev/fd/3`, `/dev/stdin`, `/proc/thread-self/fd/3`, `/proc/self/cwd`…:
/// the host path of the same magic link of task `tid`.
pub(super) fn own_magic_link(tid: i32, abs: &Path) -> Option<PathBuf> {
    let s = abs.to_str()?;
    let rest = if let Some(r) = s.strip_prefix("/dev/fd/") {
        format!("fd/{r}")
    } else if let Some(i) = ["/dev/stdin", "/dev/stdout", "/dev/stderr"]
        .iter()
        .position(|d| s == *d)
    {
        format!("fd/{i}")
    } else if let Some(r) = s
        .strip_prefix("/proc/self/")
        .or_else(|| s.strip_prefix("/proc/thread-self/"))
    {
        r.to_string()
    } else {
        return None;
    };
    let first = rest.split('/').next().unwrap_or("");
    matches!(first, "fd" | "cwd" | "root" | "exe")
        .then(|| PathBuf::from(format!("/proc/{tid}/{rest}")))
}

/// `/proc/self/…` and `/proc/thread-self/…` name the caller; resolved by the monitor (outside
/// the run's pid namespace) they would name nothing. Rewrite them with the task's ids as the
/// run's pid namespace numbers them.
fn translate_self(tid: i32, abs: &Path) -> PathBuf {
    let Some(s) = abs.to_str() else {
        return abs.to_path_buf();
    };
    let (rest, thread) = if let Some(r) = s.strip_prefix("/proc/self") {
        (r, false)
    } else if let Some(r) = s.strip_prefix("/proc/thread-self") {
        (r, true)
    } else {
        return abs.to_path_buf();
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return abs.to_path_buf();
    }
    let Some((ns_tgid, ns_tid)) = ns_ids(tid) else {
        return abs.to_path_buf();
    };
    if thread {
        PathBuf::from(format!("/proc/{ns_tgid}/task/{ns_tid}{rest}"))
    } else {
        PathBuf::from(format!("/proc/{ns_tgid}{rest}"))
    }
}

/// The task's (thread group id, thread id) in its own (innermost) pid namespace.
fn ns_ids(tid: i32) -> Option<(i64, i64)> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let last = |key: &str| -> Option<i64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .last()?
            .parse()
            .ok()
    };
    Some((last("NStgid:")?, last("NSpid:")?))
}

/// The view path the descriptor really names. A path the kernel marks ` (deleted)` is judged
/// by the name it was reached by: a masked (hidden) file is a mount of an unlinked mode-000
/// file, and must still be judged as the hidden name it covers.
pub(super) fn real_path(fd: &OwnedFd) -> Result<PathBuf, DecodeError> {
    let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| DecodeError::Errno(libc::EACCES))?;
    Ok(
        match p.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
            Some(stripped) => PathBuf::from(stripped),
            None => p,
        },
    )
}
