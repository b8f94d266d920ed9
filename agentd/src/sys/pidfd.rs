//! `pidfd_open(2)`: a pollable handle on a process that cannot be confused by pid reuse.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use super::check;

/// Opens a pidfd for `pid` (readable once the process has exited).
pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = check(ret)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for one thread, so `get_fd` reads that thread's table.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// Opens a pidfd for thread `tid`.
pub fn open_thread(tid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) };
    let fd = check(ret)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A duplicate of descriptor `fd` of thread `tid`.
pub fn get_fd_of_thread(tid: i32, fd: i32) -> io::Result<OwnedFd> {
    use std::os::fd::AsFd;
    get_fd(open_thread(tid)?.as_fd(), fd)
}

/// `pidfd_getfd(2)`: a duplicate of descriptor `target` of the process `pidfd` names.
pub fn get_fd(pidfd: std::os::fd::BorrowedFd<'_>, target: i32) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_getfd takes three integers and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    let fd = check(ret)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
