//! Notification → what the agent tried, with every pointer argument copied out of its memory
//! once (then `ID_VALID` re-checked) and every path resolved inside the run's view.
//!
//! Paths are resolved with `openat2(RESOLVE_IN_ROOT)` from the run's root, as the run's user
//! (this thread's filesystem identity), to an `O_PATH` descriptor; the decision is taken on the
//! path that descriptor really names (`readlink` of it), so a symlink can never make the
//! monitor judge one file and open another.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use agentd_policy::{Decision, Event, OpenAccess, SockAddr, Verdict};

use super::Monitor;
use crate::sys::seccomp_notify::{self, Notif};
use crate::sys::{mount_api, proc_mem};

const PATH_MAX: usize = 4096;
const MAX_ARGS: usize = 4096;
const MAX_ARGV_BYTES: usize = 256 * 1024;
const MSG_FASTOPEN: u64 = 0x2000_0000;

pub(crate) enum DecodeError {
    /// The notification is no longer pending.
    Gone,
    /// Fail the call with this errno (what the kernel itself would have answered).
    Errno(i32),
}

impl From<std::io::Error> for DecodeError {
    fn from(e: std::io::Error) -> Self {
        DecodeError::Errno(e.raw_os_error().unwrap_or(libc::EACCES))
    }
}

/// A decoded notification.
pub(crate) enum Decoded {
    Open {
        event: Event,
        /// The resolved object (`O_PATH`), or the parent directory when the file is to be created.
        target: OwnedFd,
        /// `Some(name)` when the file does not exist yet and `O_CREAT` asks to create it in `target`.
        create: Option<std::ffi::OsString>,
        flags: i32,
        mode: u32,
        /// A decision taken without the policy (re-opening a descriptor the agent holds).
        builtin: Option<Decision>,
    },
    Exec {
        event: Event,
    },
    /// connect: emulated on the agent's socket when `emulate`.
    Connect {
        event: Event,
        sockfd: i32,
        emulate: bool,
    },
    /// bind, sendto, sendmsg with an address: the kernel walls hold; decide, then continue.
    Address {
        events: Vec<Event>,
        /// A `bind` (judged as the address a socket will own, not one it reaches).
        bind: bool,
    },
    /// A mediated call that carries nothing to decide (sendmsg without an address).
    Nothing,
}

pub(crate) fn decode(m: &mut Monitor, n: &Notif) -> Result<Decoded, DecodeError> {
    let tid = i32::try_from(n.pid).map_err(|_| DecodeError::Errno(libc::EPERM))?;
    let a = n.data.args;
    let nr = i64::from(n.data.nr);
    let at_fdcwd = libc::AT_FDCWD;
    let int = low_i32;
    let decoded = match nr {
        libc::SYS_open => open(m, n, tid, at_fdcwd, a[0], int(a[1]), low_u32(a[2]), 0)?,
        libc::SYS_openat => open(m, n, tid, int(a[0]), a[1], int(a[2]), low_u32(a[3]), 0)?,
        libc::SYS_creat => open(
            m,
            n,
            tid,
            at_fdcwd,
            a[0],
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            low_u32(a[1]),
            0,
        )?,
        libc::SYS_openat2 => {
            let mut how = [0u8; 24];
            read_exact(m, n, tid, a[2], &mut how)?;
            let word =
                |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let (flags, mode, resolve) = (word(0), word(1), word(2));
            let flags = i32::try_from(flags).map_err(|_| DecodeError::Errno(libc::EINVAL))?;
            open(m, n, tid, int(a[0]), a[1], flags, low_u32(mode), resolve)?
        }
        libc::SYS_execve => exec(m, n, tid, at_fdcwd, a[0], a[1], 0)?,
        libc::SYS_execveat => exec(m, n, tid, int(a[0]), a[1], a[2], int(a[4]))?,
        libc::SYS_connect => {
            let addr = sockaddr(m, n, tid, a[1], a[2])?;
            let emulate = m.emulate_connect && matches!(addr, SockAddr::Inet(_));
            Decoded::Connect {
                event: Event::Connect { addr },
                sockfd: int(a[0]),
                emulate,
            }
        }
        libc::SYS_bind => Decoded::Address {
            events: vec![Event::Connect {
                addr: sockaddr(m, n, tid, a[1], a[2])?,
            }],
            bind: true,
        },
        libc::SYS_sendto => {
            if a[3] & MSG_FASTOPEN != 0 {
                // TCP Fast Open connects without connect(2): refused outright (a register check).
                return Err(DecodeError::Errno(libc::EOPNOTSUPP));
            }
            Decoded::Address {
                events: vec![Event::Connect {
                    addr: sockaddr(m, n, tid, a[4], a[5])?,
                }],
                bind: false,
            }
        }
        libc::SYS_sendmsg => {
            if a[2] & MSG_FASTOPEN != 0 {
                return Err(DecodeError::Errno(libc::EOPNOTSUPP));
            }
            msg_addresses(m, n, tid, &[a[1]])?
        }
        libc::SYS_sendmmsg => {
            if a[3] & MSG_FASTOPEN != 0 {
                return Err(DecodeError::Errno(libc::EOPNOTSUPP));
            }
            let vlen = usize::try_from(a[2]).unwrap_or(0).min(1024);
            // struct mmsghdr: a msghdr (56 bytes) and an unsigned int, padded to 64.
            let hdrs: Vec<u64> = (0..vlen as u64).map(|i| a[1] + i * 64).collect();
            msg_addresses(m, n, tid, &hdrs)?
        }
        _ => return Err(DecodeError::Errno(libc::ENOSYS)),
    };
    Ok(decoded)
}

/// A register carrying a C `int`: its low 32 bits, as the kernel reads it.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
fn low_i32(v: u64) -> i32 {
    v as u32 as i32
}

/// A register carrying a C `unsigned int` (mode): its low 32 bits.
#[allow(clippy::cast_possible_truncation)]
fn low_u32(v: u64) -> u32 {
    v as u32
}

/// Copies `buf.len()` bytes of the agent's memory, then checks the call is still pending.
fn read_exact(
    m: &Monitor,
    n: &Notif,
    tid: i32,
    addr: u64,
    buf: &mut [u8],
) -> Result<(), DecodeError> {
    let got = proc_mem::read(tid, addr, buf).map_err(|_| DecodeError::Errno(libc::EFAULT))?;
    valid(m, n)?;
    if got != buf.len() {
        return Err(DecodeError::Errno(libc::EFAULT));
    }
    Ok(())
}

fn valid(m: &Monitor, n: &Notif) -> Result<(), DecodeError> {
    if seccomp_notify::id_valid(m.listener.as_fd(), n.id) {
        Ok(())
    } else {
        Err(DecodeError::Gone)
    }
}

fn read_path(m: &Monitor, n: &Notif, tid: i32, addr: u64) -> Result<Vec<u8>, DecodeError> {
    let raw = proc_mem::read_cstr(tid, addr, PATH_MAX)?;
    valid(m, n)?;
    Ok(raw)
}

#[allow(clippy::too_many_arguments)]
fn open(
    m: &mut Monitor,
    n: &Notif,
    tid: i32,
    dirfd: i32,
    path_ptr: u64,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<Decoded, DecodeError> {
    let raw = read_path(m, n, tid, path_ptr)?;
    let access = if flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC) != 0
    {
        OpenAccess::Write
    } else {
        OpenAccess::Read
    };
    let abs = absolute(tid, dirfd, &raw)?;
    let nofollow = flags & libc::O_NOFOLLOW != 0;
    let (target, own_fd) = match resolve_in_view(m, tid, &abs, nofollow, resolve) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && flags & libc::O_CREAT != 0 => {
            let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
                return Err(DecodeError::Errno(libc::ENOENT));
            };
            let (dir, _) = resolve_in_view(m, tid, parent, false, resolve)?;
            let path = real_path(&dir)?.join(name);
            return Ok(Decoded::Open {
                event: Event::Open {
                    path,
                    access: OpenAccess::Write,
                },
                target: dir,
                create: Some(name.to_os_string()),
                flags,
                mode,
                builtin: None,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL {
        return Err(DecodeError::Errno(libc::EEXIST));
    }
    let real = real_path(&target)?;
    let builtin = own_fd.then(|| Decision {
        verdict: Verdict::Allow,
        rule_id: Some("builtin:own-descriptor".into()),
        reason: "re-opening a descriptor the agent already holds".into(),
    });
    // Pipes, sockets and anonymous inodes have no path: only reachable through the agent's own
    // descriptors, and then `builtin` allows them.
    if !real.is_absolute() && builtin.is_none() {
        return Err(DecodeError::Errno(libc::EACCES));
    }
    Ok(Decoded::Open {
        event: Event::Open { path: real, access },
        target,
        create: None,
        flags,
        mode,
        builtin,
    })
}

/// The absolute view path of `raw` as the agent named it (relative to its cwd or `dirfd`).
fn absolute(tid: i32, dirfd: i32, raw: &[u8]) -> Result<PathBuf, DecodeError> {
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
fn resolve_in_view(
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
fn own_magic_link(tid: i32, abs: &Path) -> Option<PathBuf> {
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
fn real_path(fd: &OwnedFd) -> Result<PathBuf, DecodeError> {
    let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| DecodeError::Errno(libc::EACCES))?;
    Ok(
        match p.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
            Some(stripped) => PathBuf::from(stripped),
            None => p,
        },
    )
}

fn exec(
    m: &mut Monitor,
    n: &Notif,
    tid: i32,
    dirfd: i32,
    path_ptr: u64,
    argv_ptr: u64,
    flags: i32,
) -> Result<Decoded, DecodeError> {
    let raw = read_path(m, n, tid, path_ptr)?;
    let argv = read_argv(m, n, tid, argv_ptr)?;
    let path = if raw.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        std::fs::read_link(format!("/proc/{tid}/fd/{dirfd}"))
            .map_err(|_| DecodeError::Errno(libc::EBADF))?
    } else {
        let abs = absolute(tid, dirfd, &raw)?;
        let (fd, _) = resolve_in_view(m, tid, &abs, flags & libc::AT_SYMLINK_NOFOLLOW != 0, 0)?;
        real_path(&fd)?
    };
    Ok(Decoded::Exec {
        event: Event::Exec { path, argv },
    })
}

fn read_argv(m: &Monitor, n: &Notif, tid: i32, argv_ptr: u64) -> Result<Vec<String>, DecodeError> {
    let mut argv = Vec::new();
    let mut total = 0;
    if argv_ptr == 0 {
        return Ok(argv);
    }
    for i in 0..MAX_ARGS as u64 {
        let mut p = [0u8; 8];
        read_exact(m, n, tid, argv_ptr + i * 8, &mut p)?;
        let ptr = u64::from_ne_bytes(p);
        if ptr == 0 {
            break;
        }
        let arg = proc_mem::read_cstr(tid, ptr, MAX_ARGV_BYTES - total.min(MAX_ARGV_BYTES - 1))?;
        total += arg.len() + 1;
        argv.push(String::from_utf8_lossy(&arg).into_owned());
        if total >= MAX_ARGV_BYTES {
            break;
        }
    }
    valid(m, n)?;
    Ok(argv)
}

/// Reads and parses a `sockaddr` of `len` bytes.
fn sockaddr(m: &Monitor, n: &Notif, tid: i32, ptr: u64, len: u64) -> Result<SockAddr, DecodeError> {
    let len = usize::try_from(len).unwrap_or(0).min(128);
    if ptr == 0 || len < 2 {
        return Err(DecodeError::Errno(libc::EINVAL));
    }
    let mut buf = vec![0u8; len];
    read_exact(m, n, tid, ptr, &mut buf)?;
    parse_sockaddr(tid, &buf).ok_or(DecodeError::Errno(libc::EINVAL))
}

pub(crate) fn parse_sockaddr(tid: i32, b: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = |b: &[u8]| Some(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    match i32::from(family) {
        libc::AF_INET => {
            let ip = Ipv4Addr::new(*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?);
            Some(SockAddr::Inet(SocketAddr::new(IpAddr::V4(ip), port(b)?)))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(octets);
            // A v4-mapped v6 address is the v4 address: judged as such.
            let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
            Some(SockAddr::Inet(SocketAddr::new(ip, port(b)?)))
        }
        libc::AF_UNIX => {
            let path = b.get(2..).unwrap_or(&[]);
            if path.first() == Some(&0) {
                let name = &path[1..];
                return Some(SockAddr::Abstract(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            }
            let end = path.iter().position(|c| *c == 0).unwrap_or(path.len());
            let p = Path::new(OsStr::from_bytes(&path[..end]));
            if p.as_os_str().is_empty() {
                return Some(SockAddr::Other(family));
            }
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::fs::read_link(format!("/proc/{tid}/cwd")).ok()?.join(p)
            };
            Some(SockAddr::Unix(abs))
        }
        _ => Some(SockAddr::Other(family)),
    }
}

/// The addresses `sendmsg`/`sendmmsg` carry (`msghdr.msg_name`), each read once.
fn msg_addresses(m: &Monitor, n: &Notif, tid: i32, hdrs: &[u64]) -> Result<Decoded, DecodeError> {
    let mut events = Vec::new();
    for hdr in hdrs {
        let mut h = [0u8; 12];
        read_exact(m, n, tid, *hdr, &mut h)?;
        let name = u64::from_ne_bytes(h[0..8].try_into().unwrap_or([0; 8]));
        let len = u32::from_ne_bytes(h[8..12].try_into().unwrap_or([0; 4]));
        if name != 0 && len > 0 {
            events.push(Event::Connect {
                addr: sockaddr(m, n, tid, name, u64::from(len))?,
            });
        }
    }
    if events.is_empty() {
        return Ok(Decoded::Nothing);
    }
    Ok(Decoded::Address {
        events,
        bind: false,
    })
}

/// An address as the audit log shows it.
pub(crate) fn addr_text(a: &SockAddr) -> String {
    match a {
        SockAddr::Inet(s) => s.to_string(),
        SockAddr::Unix(p) => p.display().to_string(),
        SockAddr::Abstract(n) => format!("@{n}"),
        SockAddr::Other(f) => format!("family {f}"),
    }
}

#[cfg(test)]
mod tests;
