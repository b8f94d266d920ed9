//! Notification → what the agent tried, with every pointer argument copied out of its memory
//! once (then `ID_VALID` re-checked) and every path resolved inside the run's view.
//!
//! Paths are resolved with `openat2(RESOLVE_IN_ROOT)` from the run's root, as the run's user
//! (this thread's filesystem identity), to an `O_PATH` descriptor; the decision is taken on the
//! path that descriptor really names (`readlink` of it), so a symlink can never make the
//! monitor judge one file and open another.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use agentd_policy::{Decision, Event, OpenAccess, SockAddr, Verdict};

use super::resolve::{self, absolute, real_path, resolve_in_view};
use super::sockaddr::{msg_addresses, sockaddr};
use super::Monitor;
use crate::sys::seccomp_notify::{self, Notif};
use crate::sys::{mount_api, proc_mem};

const PATH_MAX: usize = 4096;
/// The most of an exec's argv the monitor reads (`xargs` fills 128 KiB with short names:
/// ~12,000 arguments). Past either bound the argv is *cut*: see [`Decoded::Exec`].
pub(crate) const MAX_ARGS: usize = 32 * 1024;
pub(crate) const MAX_ARGV_BYTES: usize = 256 * 1024;
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

/// Where an exec's path and argv are in the agent's memory, what they held when judged (as
/// bytes), and the file the path named then.
pub(crate) struct ExecArgs {
    pub path_ptr: u64,
    pub argv_ptr: u64,
    pub dirfd: i32,
    pub flags: i32,
    pub path: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    /// The file judged: its path and identity ([`FileId`]).
    pub judged: (std::path::PathBuf, FileId),
}

impl ExecArgs {
    /// Whether the exec would still run what was judged: the agent's memory holds the same
    /// path and the same whole argv, and the path (from the same cwd or descriptor) still
    /// names the same file in the view, unchanged (same device, inode and change time). (An exec cannot be emulated: the kernel reads all of
    /// it again when the call continues, so a held exec is compared again first; see
    /// docs/security.md.)
    pub fn unchanged(&self, tid: i32, root: BorrowedFd<'_>) -> bool {
        let same_text = matches!(
            (proc_mem::read_cstr(tid, self.path_ptr, PATH_MAX), copy_argv(tid, self.argv_ptr)),
            (Ok(p), Ok((a, true))) if p == self.path && a == self.argv
        );
        same_text
            && exec_path(root, tid, self.dirfd, &self.path, self.flags)
                .is_ok_and(|p| p == self.judged)
    }
}

/// The flags `O_PATH` keeps; open and openat drop the others (openat2 refuses them).
const O_PATH_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// The flags open and openat know (the kernel's VALID_OPEN_FLAGS): they drop any other bit,
/// openat2 refuses it.
const VALID_OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_ASYNC
    | libc::O_DIRECT
    | KERNEL_O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE
    | libc::O_SYNC;

/// The kernel's `O_LARGEFILE` (glibc's is 0 on 64-bit targets).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const KERNEL_O_LARGEFILE: i32 = 0o400_000;
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const KERNEL_O_LARGEFILE: i32 = 0o100_000;
#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "x86_64",
    target_arch = "x86"
)))]
compile_error!("the kernel's O_LARGEFILE for this architecture is not known here");

/// The `RESOLVE_*` flags openat2 knows (up to `RESOLVE_CACHED`); it refuses any other.
const RESOLVE_FLAGS: u64 = 0x3f;

/// The flag combinations every open refuses (the kernel's build_open_flags): a create that
/// must be a directory, and an `O_TMPFILE` that is also a create or cannot write.
fn check_open_flags(flags: i32) -> Result<(), DecodeError> {
    let tmpfile_bit = libc::O_TMPFILE & !libc::O_DIRECTORY;
    let invalid = flags & (libc::O_CREAT | libc::O_DIRECTORY) == libc::O_CREAT | libc::O_DIRECTORY
        || (flags & tmpfile_bit != 0
            && (flags & (libc::O_TMPFILE | libc::O_CREAT) != libc::O_TMPFILE
                || flags & libc::O_ACCMODE == libc::O_RDONLY));
    if invalid {
        return Err(DecodeError::Errno(libc::EINVAL));
    }
    Ok(())
}

/// A create that finds a directory fails (`EISDIR`), as the kernel's.
fn not_a_dir_for_create(target: &OwnedFd, flags: i32) -> Result<(), DecodeError> {
    if flags & libc::O_CREAT != 0
        && nix::sys::stat::fstat(target).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    {
        return Err(DecodeError::Errno(libc::EISDIR));
    }
    Ok(())
}

/// The flags and mode open and openat really apply (as the kernel's build_open_how): only
/// [`VALID_OPEN_FLAGS`], with `O_PATH` only [`O_PATH_FLAGS`]; a mode only when creating, and only its permission bits
/// (`mode_t` from `stat` carries the file type too; openat2 would refuse it).
fn open_args(flags: i32, mode: u32) -> (i32, u32) {
    let flags = flags & VALID_OPEN_FLAGS;
    let flags = if flags & libc::O_PATH != 0 {
        flags & O_PATH_FLAGS
    } else {
        flags
    };
    let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    (flags, if creates { mode & 0o7777 } else { 0 })
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
    /// An open decided on the path as the agent named it and already carried out (the fast
    /// path, see [`direct`]): `fd` to install, or `None` to continue the call.
    Opened {
        event: Event,
        decision: Decision,
        fd: Option<OwnedFd>,
        cloexec: bool,
    },
    /// `argv_cut`: the argv was longer than [`MAX_ARGS`] / [`MAX_ARGV_BYTES`] and the event
    /// holds its beginning only. `asked`: what the agent's memory held, to compare again
    /// before a held exec continues.
    Exec {
        event: Event,
        argv_cut: bool,
        asked: ExecArgs,
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
    /// listen: emulated on the agent's own socket (no descriptor swap can change which socket
    /// listens), refused for IP sockets on the host network (filtered mode).
    Listen { sockfd: i32, backlog: i32 },
    /// An open of a path the run's view does not contain: answered ENOENT, recorded only when
    /// the policy refuses the path as well.
    Absent { event: Event },
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
        libc::SYS_open => {
            let (flags, mode) = open_args(int(a[1]), low_u32(a[2]));
            open(m, n, tid, at_fdcwd, a[0], flags, mode, 0)?
        }
        libc::SYS_openat => {
            let (flags, mode) = open_args(int(a[2]), low_u32(a[3]));
            open(m, n, tid, int(a[0]), a[1], flags, mode, 0)?
        }
        libc::SYS_creat => {
            let (flags, mode) = open_args(
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                low_u32(a[1]),
            );
            open(m, n, tid, at_fdcwd, a[0], flags, mode, 0)?
        }
        libc::SYS_openat2 => {
            // As the kernel copies `open_how`: at least this version, at most a page, and
            // anything past the fields known zero.
            let size = usize::try_from(a[3]).unwrap_or(usize::MAX);
            if size < 24 {
                return Err(DecodeError::Errno(libc::EINVAL));
            }
            if size > 4096 {
                return Err(DecodeError::Errno(libc::E2BIG));
            }
            if size > 24 {
                let mut tail = vec![0u8; size - 24];
                read_exact(m, n, tid, a[2].wrapping_add(24), &mut tail)?;
                if tail.iter().any(|b| *b != 0) {
                    return Err(DecodeError::Errno(libc::E2BIG));
                }
            }
            let mut how = [0u8; 24];
            read_exact(m, n, tid, a[2], &mut how)?;
            let word =
                |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let (flags, mode, resolve) = (word(0), word(1), word(2));
            let flags = i32::try_from(flags).map_err(|_| DecodeError::Errno(libc::EINVAL))?;
            // openat2 checks what open and openat forgive (as the kernel's build_open_flags).
            let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
            let contained = libc::RESOLVE_BENEATH | libc::RESOLVE_IN_ROOT;
            if flags & !VALID_OPEN_FLAGS != 0
                || mode & !0o7777 != 0
                || (mode != 0 && !creates)
                || (flags & libc::O_PATH != 0 && flags & !O_PATH_FLAGS != 0)
                || resolve & !RESOLVE_FLAGS != 0
                || resolve & contained == contained
            {
                return Err(DecodeError::Errno(libc::EINVAL));
            }
            // An allowed O_PATH open continues (ADDFD cannot inject path descriptors), and the
            // kernel then reads `open_how` again from the agent's memory: a racing thread could
            // turn O_PATH into a read of another path. open and openat take their flags from a
            // register; openat2's O_PATH is refused where the monitor is the only wall.
            if flags & libc::O_PATH != 0 && m.emulate_open {
                return Err(DecodeError::Errno(libc::EOPNOTSUPP));
            }
            open(m, n, tid, int(a[0]), a[1], flags, low_u32(mode), resolve)?
        }
        libc::SYS_execve => exec(m, n, tid, at_fdcwd, a[0], a[1], 0)?,
        libc::SYS_execveat => exec(m, n, tid, int(a[0]), a[1], a[2], int(a[4]))?,
        libc::SYS_connect => {
            let addr = sockaddr(m, n, tid, a[1], a[2])?;
            // A Unix address is allowed and continued (the view is its wall), so the kernel
            // reads the address again: on an IP socket a racing thread could turn it into an
            // IP address by then. Only a Unix socket is continued with a Unix address.
            if matches!(addr, SockAddr::Unix(_) | SockAddr::Abstract(_)) {
                let sock = crate::sys::pidfd::get_fd_of_thread(tid, int(a[0]))?;
                valid(m, n)?;
                if super::act::socket_family(&sock) != Some(libc::AF_UNIX) {
                    return Err(DecodeError::Errno(libc::EAFNOSUPPORT));
                }
            }
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
        libc::SYS_listen => Decoded::Listen {
            sockfd: int(a[0]),
            backlog: int(a[1]),
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
            let hdrs: Vec<u64> = (0..vlen as u64)
                .map_while(|i| a[1].checked_add(i * 64))
                .collect();
            msg_addresses(m, n, tid, &hdrs)?
        }
        _ => return Err(DecodeError::Errno(libc::ENOSYS)),
    };
    Ok(decoded)
}

/// `abs` with `.` and `..` folded away textually (for judging a path that does not exist).
fn lexical(abs: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
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
pub(super) fn read_exact(
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
    check_open_flags(flags)?;
    // As the kernel: a name ending in `/` is never created.
    if flags & libc::O_CREAT != 0 && raw.ends_with(b"/") {
        return Err(DecodeError::Errno(libc::EISDIR));
    }
    if resolve & (libc::RESOLVE_BENEATH | libc::RESOLVE_IN_ROOT) != 0 {
        return contained(m, n, tid, dirfd, &raw, flags, mode, resolve, access);
    }
    let abs = absolute(tid, dirfd, &raw)?;
    // The agent's own RESOLVE_* flags on a path through one of its magic links (reached below
    // without a walk): the mount crossing into /proc or /dev, then the magic link, refuse.
    if resolve != 0 && resolve::own_magic_link(&abs).is_some() {
        if resolve & libc::RESOLVE_NO_XDEV != 0 {
            return Err(DecodeError::Errno(libc::EXDEV));
        }
        if resolve & (libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS) != 0 {
            return Err(DecodeError::Errno(libc::ELOOP));
        }
    }
    if let Some(opened) = direct(m, &abs, flags, resolve, access) {
        return Ok(opened);
    }
    let nofollow = flags & libc::O_NOFOLLOW != 0;
    let (target, own_fd) = match resolve_in_view(m.root.as_fd(), tid, &abs, nofollow, resolve) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && flags & libc::O_CREAT != 0 => {
            return create_at(m.root.as_fd(), tid, abs, flags, mode, resolve);
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // Not in the run's view: the call fails with ENOENT whatever the policy says; if the
            // policy refuses the path too (a secret outside the grants), that is recorded.
            return Ok(Decoded::Absent {
                event: Event::Open {
                    path: lexical(&abs),
                    access,
                },
            });
        }
        Err(e) => return Err(e.into()),
    };
    if flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL {
        return Err(DecodeError::Errno(libc::EEXIST));
    }
    not_a_dir_for_create(&target, flags)?;
    let real = real_path(&target)?;
    let target = own_tty(tid, &real, target)?;
    // Only a path-less object (pipe, socket, anonymous inode) reached through the agent's own
    // descriptor skips the policy: anything with a path is judged by that path.
    let builtin = (own_fd && !real.is_absolute()).then(|| Decision {
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

/// An `openat2` with the agent's own `RESOLVE_BENEATH` or `RESOLVE_IN_ROOT`: resolved as the
/// agent asked, from its own directory descriptor (or cwd) with its own `RESOLVE_*` flags, so
/// the containment a program relies on (an archive extractor, a file server) holds under the
/// monitor too: `..` out of the directory fails with `EXDEV`, or stays clamped in it. The
/// directory is one the agent holds, inside its view; the object reached is then judged by
/// its real path and opened again here, like any other.
#[allow(clippy::too_many_arguments)]
fn contained(
    m: &Monitor,
    n: &Notif,
    tid: i32,
    dirfd: i32,
    raw: &[u8],
    flags: i32,
    mode: u32,
    resolve: u64,
    access: OpenAccess,
) -> Result<Decoded, DecodeError> {
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd")
    } else {
        format!("/proc/{tid}/fd/{dirfd}")
    };
    let base = mount_api::open_path_follow(std::path::Path::new(&base), false)
        .map_err(|_| DecodeError::Errno(libc::EBADF))?;
    // The descriptor was the task's own: the tid named it when it was taken.
    valid(m, n)?;
    let keep = resolve
        & (libc::RESOLVE_BENEATH
            | libc::RESOLVE_IN_ROOT
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_MAGICLINKS
            | libc::RESOLVE_NO_XDEV);
    let nofollow = flags & libc::O_NOFOLLOW != 0;
    let rel = std::path::Path::new(std::ffi::OsStr::from_bytes(raw));
    match mount_api::open_under(base.as_fd(), rel, nofollow, keep) {
        Ok(target) => {
            if flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL {
                return Err(DecodeError::Errno(libc::EEXIST));
            }
            not_a_dir_for_create(&target, flags)?;
            let real = real_path(&target)?;
            if !real.is_absolute() {
                return Err(DecodeError::Errno(libc::EACCES));
            }
            let target = own_tty(tid, &real, target)?;
            Ok(Decoded::Open {
                event: Event::Open { path: real, access },
                target,
                create: None,
                flags,
                mode,
                builtin: None,
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && flags & libc::O_CREAT != 0 => {
            let name = rel.file_name().ok_or(DecodeError::Errno(libc::ENOENT))?;
            let parent = match rel.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => std::path::Path::new("."),
            };
            let dir = mount_api::open_under(base.as_fd(), parent, false, keep)?;
            create_in(dir, name, flags, mode)
        }
        Err(e) => Err(e.into()),
    }
}

/// An open that creates the file `abs` names. As the kernel, a dangling symlink in the last
/// place is followed (its target is created) unless `O_EXCL` or `O_NOFOLLOW`, at most 40 times.
fn create_at(
    root: BorrowedFd<'_>,
    tid: i32,
    mut abs: std::path::PathBuf,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<Decoded, DecodeError> {
    for _ in 0..40 {
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return Err(DecodeError::Errno(libc::ENOENT));
        };
        let (dir, _) = resolve_in_view(root, tid, parent, false, resolve)?;
        if flags & (libc::O_EXCL | libc::O_NOFOLLOW) == 0 {
            if let Ok(link) = nix::fcntl::readlinkat(&dir, name) {
                let link = std::path::PathBuf::from(link);
                abs = if link.is_absolute() {
                    link
                } else {
                    parent.join(link)
                };
                continue;
            }
        }
        return create_in(dir, name, flags, mode);
    }
    Err(DecodeError::Errno(libc::ELOOP))
}

/// An open that creates `name` in the directory `dir` (judged as a write of the path it will
/// have).
fn create_in(
    dir: OwnedFd,
    name: &std::ffi::OsStr,
    flags: i32,
    mode: u32,
) -> Result<Decoded, DecodeError> {
    let path = real_path(&dir)?.join(name);
    Ok(Decoded::Open {
        event: Event::Open {
            path,
            access: OpenAccess::Write,
        },
        target: dir,
        create: Some(name.to_os_string()),
        flags,
        mode,
        builtin: None,
    })
}

/// `/dev/tty` means the opener's controlling terminal; opened here it would mean the daemon's.
/// The policy judges `/dev/tty`; the object opened is the task's own terminal.
fn own_tty(tid: i32, real: &std::path::Path, target: OwnedFd) -> Result<OwnedFd, DecodeError> {
    if real == std::path::Path::new("/dev/tty") && resolve::is_dev_tty(&target) {
        return resolve::controlling_tty(tid).map_err(DecodeError::from);
    }
    Ok(target)
}

/// The fast path of an open (most opens take it): when the path the agent named has no `..`
/// and goes through no symlink, it *is* the object's path, so the policy can decide on the text
/// first and the file be opened after, in one step that refuses any symlink
/// ([`mount_api::open_exact`]): a component swapped for a symlink after the decision fails
/// the open instead of redirecting it. Only an `allow` is carried out here; anything else
/// (a refusal, a question, a path through a symlink, `..`, the task's own magic links, a file
/// to create, a FIFO) returns `None` and takes the full path: resolve, judge the real path,
/// reopen.
///
/// The file is opened with the agent's own flags plus `O_NOCTTY` (a terminal never becomes the
/// daemon's).
fn direct(
    m: &Monitor,
    abs: &std::path::Path,
    flags: i32,
    resolve: u64,
    access: OpenAccess,
) -> Option<Decoded> {
    // Creates (and O_TMPFILE) need the task's umask: the full path.
    if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return None;
    }
    let (path, rel) = plain(abs)?;
    let event = Event::Open { path, access };
    let decision = agentd_policy::decide(&m.ctx.policy.get(), &event);
    if decision.verdict != Verdict::Allow {
        return None;
    }
    let extra = resolve & (libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_MAGICLINKS);
    if !m.emulate_open || flags & libc::O_PATH != 0 {
        // The walls hold whatever the agent rewrites, or the agent asks for an `O_PATH`
        // descriptor (no content; it cannot be injected): opening `O_PATH` here only proves
        // the path has no symlink (so the record names the real file); the call continues.
        let o_path = libc::O_PATH | (flags & libc::O_NOFOLLOW);
        mount_api::open_exact(m.root.as_fd(), rel, o_path, extra).ok()?;
        return Some(Decoded::Opened {
            event,
            decision,
            fd: None,
            cloexec: false,
        });
    }
    // Only regular files, directories and character devices (the view's /dev: null, zero,
    // ptys) are opened here: a FIFO's open waits for its other end, and even a non-blocking
    // open of one would be seen by that end; those take the full path (a worker opens them).
    // `/dev/tty` means the opener's terminal, which only the agent itself can open. The type
    // comes from an `O_PATH` descriptor opened like the file itself (inside the view, no
    // symlink, no side effect on the object).
    let o_path = mount_api::open_exact(
        m.root.as_fd(),
        rel,
        libc::O_PATH | libc::O_NOFOLLOW | (flags & libc::O_DIRECTORY),
        extra,
    )
    .ok()?;
    let st = nix::sys::stat::fstat(&o_path).ok()?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => {}
        libc::S_IFCHR if st.st_rdev != libc::makedev(5, 0) => {}
        _ => return None,
    }
    drop(o_path);
    // `O_NONBLOCK`: should a FIFO be swapped in meanwhile, the open must not wait (the monitor
    // would); taken off again unless the agent asked for it.
    let fd = mount_api::open_exact(
        m.root.as_fd(),
        rel,
        flags | libc::O_NOCTTY | libc::O_NONBLOCK,
        extra,
    )
    .ok()?;
    if flags & libc::O_NONBLOCK == 0 {
        let keep = nix::fcntl::OFlag::from_bits_retain(flags);
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(keep)).ok()?;
    }
    Some(Decoded::Opened {
        event,
        decision,
        fd: Some(fd),
        cloexec: flags & libc::O_CLOEXEC != 0,
    })
}

/// A path the fast path may take (absolute, no `..`, not through the task's own magic links
/// or `/proc/self`): its normalised form (`a//b/./c` is `a/b/c`), which is what is judged, and
/// the text to open from the run's root as given, so the kernel still applies its own rules
/// (a trailing `/` needs a directory).
fn plain(abs: &std::path::Path) -> Option<(std::path::PathBuf, &std::path::Path)> {
    use std::path::Component;
    let mut comps = abs.components();
    if comps.next() != Some(Component::RootDir)
        || !comps.all(|c| matches!(c, Component::Normal(_)))
        || resolve::own_magic_link(abs).is_some()
        || abs.starts_with("/proc/self")
        || abs.starts_with("/proc/thread-self")
    {
        return None;
    }
    let bytes = abs.as_os_str().as_bytes();
    let start = bytes.iter().position(|&b| b != b'/')?;
    let rel = std::path::Path::new(std::ffi::OsStr::from_bytes(bytes.get(start..)?));
    Some((abs.components().collect(), rel))
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
    let (raw_argv, argv_whole) = read_argv(m, n, tid, argv_ptr)?;
    let (path, file) = exec_path(m.root.as_fd(), tid, dirfd, &raw, flags)?;
    let argv = raw_argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let asked = ExecArgs {
        path_ptr,
        argv_ptr,
        dirfd,
        flags,
        path: raw,
        argv: raw_argv,
        judged: (path.clone(), file),
    };
    Ok(Decoded::Exec {
        event: Event::Exec { path, argv },
        argv_cut: !argv_whole,
        asked,
    })
}

/// The path of the file an exec names (`raw` from `dirfd`, as `execveat` reads it), in the view.
/// The file an exec names: its path in the view, and which file it is (device, inode and
/// change time: a file renamed over the same path, or written in place, is another).
fn exec_path(
    root: BorrowedFd<'_>,
    tid: i32,
    dirfd: i32,
    raw: &[u8],
    flags: i32,
) -> Result<(std::path::PathBuf, FileId), DecodeError> {
    let ebadf = |_| DecodeError::Errno(libc::EBADF);
    if raw.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        let link = format!("/proc/{tid}/fd/{dirfd}");
        let fd = mount_api::open_path_follow(std::path::Path::new(&link), false).map_err(ebadf)?;
        let path = std::fs::read_link(&link).map_err(ebadf)?;
        return Ok((path, file_id(&fd)?));
    }
    let abs = absolute(tid, dirfd, raw)?;
    let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
    // A path through no symlink names itself (see `direct`); else, the path its descriptor
    // names.
    let o_path = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    let exact = plain(&abs)
        .and_then(|(path, rel)| Some((path, mount_api::open_exact(root, rel, o_path, 0).ok()?)));
    match exact {
        Some((path, fd)) => Ok((path, file_id(&fd)?)),
        None => {
            let (fd, _) = resolve_in_view(root, tid, &abs, nofollow, 0)?;
            Ok((real_path(&fd)?, file_id(&fd)?))
        }
    }
}

/// Which file a descriptor is: device, inode, change time (seconds, nanoseconds).
pub(crate) type FileId = (u64, u64, i64, i64);

fn file_id(fd: &OwnedFd) -> Result<FileId, DecodeError> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| DecodeError::Errno(e as i32))?;
    Ok((st.st_dev, st.st_ino, st.st_ctime, st.st_ctime_nsec))
}

/// The argv (as bytes), and whether it is whole (`false`: cut at [`MAX_ARGS`] or
/// [`MAX_ARGV_BYTES`]); `ID_VALID` once all is copied.
fn read_argv(
    m: &Monitor,
    n: &Notif,
    tid: i32,
    argv_ptr: u64,
) -> Result<(Vec<Vec<u8>>, bool), DecodeError> {
    let argv = copy_argv(tid, argv_ptr)?;
    valid(m, n)?;
    Ok(argv)
}

/// [`read_argv`] without the validity check (the caller makes it).
pub(super) fn copy_argv(tid: i32, argv_ptr: u64) -> Result<(Vec<Vec<u8>>, bool), DecodeError> {
    let mut argv = Vec::new();
    let mut total = 0;
    if argv_ptr == 0 {
        return Ok((argv, true));
    }
    let mut whole = false;
    // The pointer array is read in runs of up to 64 pointers (never across a page: the next
    // one may be unmapped), the strings one by one.
    let mut ptrs = [0u8; 512];
    let mut at = argv_ptr;
    'array: loop {
        // (A pointer straddling a page boundary is read whole: 8 bytes.)
        let to_page_end = 4096 - (at % 4096) as usize;
        let want = to_page_end.clamp(8, ptrs.len());
        let got = proc_mem::read(tid, at, &mut ptrs[..want])
            .map_err(|_| DecodeError::Errno(libc::EFAULT))?;
        if got < 8 {
            return Err(DecodeError::Errno(libc::EFAULT));
        }
        for word in ptrs[..got - got % 8].chunks_exact(8) {
            let ptr = u64::from_ne_bytes(word.try_into().unwrap_or([0; 8]));
            if ptr == 0 {
                whole = true;
                break 'array;
            }
            if argv.len() >= MAX_ARGS {
                break 'array;
            }
            let left = MAX_ARGV_BYTES - total.min(MAX_ARGV_BYTES - 1);
            let arg = match proc_mem::read_cstr(tid, ptr, left) {
                Ok(arg) => arg,
                // Longer than what is left of the budget: the argv is cut here.
                Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => break 'array,
                Err(e) => return Err(e.into()),
            };
            total += arg.len() + 1;
            argv.push(arg);
            if total >= MAX_ARGV_BYTES {
                break 'array;
            }
        }
        at = at
            .checked_add((got - got % 8) as u64)
            .ok_or(DecodeError::Errno(libc::EFAULT))?;
    }
    Ok((argv, whole))
}

#[cfg(test)]
mod tests;
