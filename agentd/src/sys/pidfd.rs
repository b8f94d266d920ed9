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
