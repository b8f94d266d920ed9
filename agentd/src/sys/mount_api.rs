//! The new mount API (Linux 5.2+/5.12+): `open_tree`, `move_mount`, `mount_setattr`.
//!
//! It lets the launcher build the run's filesystem view from file descriptors instead of path
//! strings: a bind source is opened once (with the caller's filesystem identity, see
//! [`super::creds`]), its flags are set recursively on the detached copy, and it is attached at a
//! target opened without following symlinks.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::check;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC)`: a detached
/// recursive copy of the mount tree at `path` (follows symlinks in `path`, as the caller's
/// current filesystem identity resolves it).
pub fn clone_tree(path: &Path) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    let flags =
        libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: `p` is a valid NUL-terminated string that outlives the call; the kernel returns a
    // new fd or -1 and touches no memory of ours besides reading the path.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) };
    let fd = check(ret)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets `attr_set` (MOUNT_ATTR_*) recursively on the detached tree `tree`.
pub fn set_attr_recursive(tree: BorrowedFd<'_>, attr_set: u64) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: `attr` is a properly initialised `mount_attr` whose size we pass; `empty` is a valid
    // C string; the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    check(ret).map(drop)
}

/// Attaches the detached tree `tree` on the object `target` refers to (an `O_PATH` fd).
pub fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both fds are valid for the duration of the call; `empty` is a valid C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            flags,
        )
    };
    check(ret).map(drop)
}

/// Opens `rel` beneath `root` as an `O_PATH` fd without following any symlink and without
/// leaving `root` (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`).
pub fn open_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    openat2(root, rel, libc::O_PATH | libc::O_NOFOLLOW, 0, resolve)
}

fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    // SAFETY: `open_how` is a plain C struct for which all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::from(u32::from_ne_bytes((flags | libc::O_CLOEXEC).to_ne_bytes()));
    how.mode = u64::from(mode);
    how.resolve = resolve;
    // SAFETY: `p` and `how` are valid for the call and their sizes are passed; the kernel
    // returns a new fd or -1.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            p.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    let fd = check(ret)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `O_PATH` descriptor of `rel` inside the root `root` (`RESOLVE_IN_ROOT`: absolute symlinks
/// and `..` stay inside it), plus the caller's `extra` resolve flags.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    rel: &Path,
    nofollow: bool,
    extra: u64,
) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    openat2(root, rel, flags, 0, libc::RESOLVE_IN_ROOT | extra)
}

/// `O_PATH` descriptor of `rel` resolved from the directory `dir` with the `RESOLVE_*` flags
/// `resolve` (an agent's own `openat2` constraints: `RESOLVE_BENEATH`, `RESOLVE_IN_ROOT`, …).
pub fn open_under(
    dir: BorrowedFd<'_>,
    rel: &Path,
    nofollow: bool,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    openat2(dir, rel, flags, 0, resolve)
}

/// Opens `rel` inside the root `root` with `flags`, refusing every symlink on the way
/// (`RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`, plus `extra`): what is opened is exactly the object
/// the path names textually, so a decision taken on that text holds for the descriptor.
/// `ELOOP` when the path goes through a symlink.
pub fn open_exact(root: BorrowedFd<'_>, rel: &Path, flags: i32, extra: u64) -> io::Result<OwnedFd> {
    openat2(
        root,
        rel,
        flags,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | extra,
    )
}

/// `O_PATH` descriptor of a host path, following symlinks and magic links (`/proc/<tid>/fd/N`)
/// unless `nofollow` (last component only).
pub fn open_path_follow(path: &Path, nofollow: bool) -> io::Result<OwnedFd> {
    // SAFETY: AT_FDCWD is a valid directory descriptor argument for openat2.
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    openat2(cwd, path, flags, 0, 0)
}

/// Opens the object `fd` names again with `flags` (through `/proc/self/fd`): permission is
/// checked against the calling thread's credentials, as a fresh open would.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    open_path_follow_flags(&path, flags)
}

/// Opens `path` (a host path, magic links followed) with `flags`.
pub fn reopen_path(path: &str, flags: i32) -> io::Result<OwnedFd> {
    open_path_follow_flags(Path::new(path), flags)
}

fn open_path_follow_flags(path: &Path, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: AT_FDCWD is a valid directory descriptor argument for openat2.
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    openat2(cwd, path, flags, 0, 0)
}

/// Creates (or opens, per `flags`) `name` directly in the directory `dir`, never through a
/// symlink.
pub fn create_beneath(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    openat2(
        dir,
        Path::new(name),
        flags,
        mode,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
}
