//! Process creation: `fork` for the single-threaded launcher, and the fd plumbing of the
//! launcher's own spawn from the (multi-threaded) daemon.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use nix::unistd::ForkResult;

/// Forks the calling process, which must be single-threaded (the launcher is: a fresh exec of
/// agentd that never starts a thread). Checked at run time, so this wrapper is safe to call.
pub fn fork_single_threaded() -> io::Result<ForkResult> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<u32>().ok());
    if threads != Some(1) {
        return Err(io::Error::other(
            "refusing to fork a multi-threaded process",
        ));
    }
    // SAFETY: the process has exactly one thread (checked just above, and nothing between the
    // check and the fork can start one), so the child may run arbitrary code.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Makes `fd` the child's descriptor 3 (close-on-exec cleared) when `cmd` is spawned.
pub fn pass_as_fd3(cmd: &mut Command, fd: OwnedFd) {
    // SAFETY: the closure runs between fork and exec and only calls dup2/fcntl (through
    // `dup_to_3`), which are async-signal-safe; it owns `fd`, so the descriptor stays open
    // until `cmd` is dropped.
    unsafe {
        cmd.pre_exec(move || dup_to_3(&fd));
    }
}

fn dup_to_3(fd: &OwnedFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    if raw == 3 {
        // SAFETY: fcntl on a descriptor we own; no memory is passed.
        let flags = unsafe { libc::fcntl(3, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 onto fd 3 in the child between fork and exec; no memory is passed. dup2
    // clears close-on-exec on the new descriptor.
    if unsafe { libc::dup2(raw, 3) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kills every process of the caller's pid namespace but itself (`kill(-1, SIGKILL)` from the
/// namespace's init).
pub fn kill_all_in_namespace() {
    // SAFETY: kill(2) passes no memory; from a pid namespace's init, -1 means every other
    // process of that namespace.
    unsafe { libc::kill(-1, libc::SIGKILL) };
}

/// Closes every descriptor from `first` up (`close_range(2)`), so nothing the daemon held
/// leaks into a run.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range passes no memory; closing fds we do not use cannot break Rust
    // ownership because the launcher owns no descriptor above `first` at this point.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    super::check(ret).map(drop)
}

/// Takes ownership of an inherited descriptor `fd` (fd 3 of the launcher, `--ready-fd` of the
/// daemon) and marks it close-on-exec.
pub fn take_inherited(fd: std::os::fd::RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD passes no memory; it only checks that `fd` is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and, by our calling convention (it was inherited
    // for this purpose and is taken once, at start-up), owned by nothing else in the process.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(owned)
}

/// In a forked child that will never return into its caller (it ends with `exit`), closes the
/// child's copy of a descriptor that a Rust object in the parent's code still "owns".
pub fn close_in_child(fd: std::os::fd::RawFd) {
    // SAFETY: close passes no memory. The owning object is never used or dropped again in this
    // process (the child ends with `exit`), so no double close or use-after-close can happen.
    unsafe { libc::close(fd) };
}
