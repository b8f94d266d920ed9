//! Path resolution for the monitor: every path an agent names is resolved inside the run's
//! view (`openat2(RESOLVE_IN_ROOT)` from the run's root, as the run's user), and judged by the
//! path the resulting descriptor really names.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::decode::DecodeError;
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

/// Opens `abs` (a view path) as `O_PATH`, never leaving the run's view. Returns the fd and
/// whether it is a path-less object the agent already holds (a pipe, socket or anonymous inode
/// reached through its own `/proc/self/fd/N`): only those skip the policy.
///
/// A path through one of the task's own magic links (`/proc/self/fd/N`, `/dev/fd/N`,
/// `/dev/stdin`, `/proc/self/cwd`, …) is handled in two ways, and only these two:
/// - the link itself (nothing after it): exactly `/proc/<tid>/<link>` is opened, which can only
///   reach an object the agent holds; its real path (if it has one) is then judged like any other;
/// - a path below it (`/proc/self/cwd/x`, `/dev/fd/3/../y`): the link's target, a path in the
///   view, replaces it, and the result is resolved inside the view like any path.
pub(super) fn resolve_in_view(
    root: std::os::fd::BorrowedFd<'_>,
    tid: i32,
    abs: &Path,
    nofollow: bool,
    resolve: u64,
) -> std::io::Result<(OwnedFd, bool)> {
    let mut abs = abs.to_path_buf();
    if let Some((link, rest)) = own_magic_link(&abs) {
        let host = PathBuf::from(format!("/proc/{tid}/{link}"));
        if rest.as_os_str().is_empty() {
            let fd = mount_api::open_path_follow(&host, nofollow)?;
            // `fd/3/` must be a directory, as for any path ending in `/`.
            if abs.as_os_str().as_encoded_bytes().ends_with(b"/")
                && nix::sys::stat::fstat(&fd)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT != libc::S_IFDIR)
            {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            let pathless = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .map(|p| !p.is_absolute())
                .unwrap_or(false);
            return Ok((fd, pathless));
        }
        let base = std::fs::read_link(&host)?;
        let base = match base.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
            Some(_) => return Err(std::io::Error::from_raw_os_error(libc::ENOENT)),
            None => base,
        };
        if !base.is_absolute() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        abs = base.join(rest);
    }
    let abs = translate_self(tid, &abs);
    let rel: PathBuf = abs
        .components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect();
    let mut rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    // `components()` drops a trailing `/` or `/.`, which the kernel reads as "must be a
    // directory".
    let text = abs.as_os_str().as_encoded_bytes();
    if text.ends_with(b"/") || text.ends_with(b"/.") {
        rel.push(".");
    }
    // The agent's own restrictions apply on top of ours.
    let extra =
        resolve & (libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV);
    mount_api::open_in_root(root, &rel, nofollow, extra).map(|fd| (fd, false))
}

/// Splits a path through one of the task's own magic links into the link (`fd/N`, `cwd`,
/// `root` or `exe`, relative to `/proc/<tid>/`) and what follows it. `N` is digits only.
pub(super) fn own_magic_link(abs: &Path) -> Option<(String, PathBuf)> {
    let s = abs.to_str()?;
    if let Some(i) = ["/dev/stdin", "/dev/stdout", "/dev/stderr"]
        .iter()
        .position(|d| s == *d)
    {
        return Some((format!("fd/{i}"), PathBuf::new()));
    }
    let (kind, tail) = if let Some(r) = s.strip_prefix("/dev/fd/") {
        ("fd", r)
    } else if let Some(r) = s
        .strip_prefix("/proc/self/")
        .or_else(|| s.strip_prefix("/proc/thread-self/"))
    {
        match r.split_once('/') {
            Some(("fd", t)) => ("fd", t),
            Some((k @ ("cwd" | "root" | "exe"), t)) => (k, t),
            None if matches!(r, "cwd" | "root" | "exe") => (r, ""),
            _ => return None,
        }
    } else {
        return None;
    };
    if kind == "fd" {
        let (n, rest) = tail.split_once('/').unwrap_or((tail, ""));
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some((format!("fd/{n}"), PathBuf::from(rest)));
    }
    Some((kind.to_string(), PathBuf::from(tail)))
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

/// Whether `fd` is the `/dev/tty` device (5, 0).
pub(super) fn is_dev_tty(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| {
        st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(5, 0)
    })
}

/// An `O_PATH` descriptor of the task's controlling terminal, taken from one of the task's own
/// descriptors (so nothing is reached that the task does not already hold). `ENXIO`, as the
/// kernel answers, when it has none or holds no descriptor of it.
pub(super) fn controlling_tty(tid: i32) -> std::io::Result<OwnedFd> {
    let enxio = || std::io::Error::from_raw_os_error(libc::ENXIO);
    // Bytes, not text: the command name in it may be anything (non-UTF-8 included).
    let stat = std::fs::read(format!("/proc/{tid}/stat"))?;
    let after = stat
        .iter()
        .rposition(|&b| b == b')')
        .and_then(|i| stat.get(i + 1..))
        .ok_or_else(enxio)?;
    // After the command name: state ppid pgrp session tty_nr … (tty_nr printed as an int).
    let tty_nr: i64 = std::str::from_utf8(after)
        .ok()
        .and_then(|rest| rest.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .ok_or_else(enxio)?;
    let tty_nr = u64::from(u32::from_ne_bytes(
        i32::try_from(tty_nr).map_err(|_| enxio())?.to_ne_bytes(),
    ));
    if tty_nr == 0 {
        return Err(enxio());
    }
    // The kernel's encoding of a dev_t in /proc (new_encode_dev).
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    let want = libc::makedev(
        u32::try_from(major).map_err(|_| enxio())?,
        u32::try_from(minor).map_err(|_| enxio())?,
    );
    let holds = |n: &str| -> Option<OwnedFd> {
        let fd =
            mount_api::open_path_follow(Path::new(&format!("/proc/{tid}/fd/{n}")), false).ok()?;
        nix::sys::stat::fstat(&fd)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == want)
            .then_some(fd)
    };
    // The standard descriptors first (where a terminal almost always is), then at most
    // MAX_TTY_SCAN others: a task with a million descriptors costs the daemon no more.
    if let Some(fd) = ["0", "1", "2"].into_iter().find_map(holds) {
        return Ok(fd);
    }
    const MAX_TTY_SCAN: usize = 1024;
    std::fs::read_dir(format!("/proc/{tid}/fd"))?
        .flatten()
        .take(MAX_TTY_SCAN)
        .find_map(|e| e.file_name().to_str().and_then(holds))
        .ok_or_else(enxio)
}
