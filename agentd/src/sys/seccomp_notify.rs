//! seccomp user notification: installing a filter with a listener, and the listener's ioctls
//! (RECV, SEND, ID_VALID, ADDFD, SET_FLAGS). libseccomp builds the BPF program; this file only
//! moves it and the notifications across the kernel boundary.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{check, check_int};

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6; not in libc yet): wake the notifying task
/// on the answering thread's CPU.
const SYNC_WAKE_UP: u64 = 1;
/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, as the `u32` the response struct holds.
const USER_NOTIF_FLAG_CONTINUE: u32 = 1;

pub use libc::seccomp_notif as Notif;

/// A zeroed notification buffer.
pub fn empty_notif() -> Notif {
    // SAFETY: `seccomp_notif` is plain data for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Installs the BPF program `prog` (raw `sock_filter` array) on the calling thread with
/// `NEW_LISTENER | WAIT_KILLABLE_RECV` and returns the listener. `no_new_privs` must be set.
pub fn install_with_listener(prog: &[u8]) -> io::Result<OwnedFd> {
    let insns = prog.len() / std::mem::size_of::<libc::sock_filter>();
    let fprog = libc::sock_fprog {
        len: u16::try_from(insns).map_err(|_| io::Error::other("seccomp program too long"))?,
        filter: prog.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    let flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: `fprog` points at `insns` complete sock_filter records inside `prog`, which
    // outlives the call; the kernel copies the program and only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    let fd = check(ret)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this listener fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Asks the kernel to hand the CPU straight to the answering thread and back.
pub fn set_sync_wakeup(listener: BorrowedFd<'_>) -> io::Result<()> {
    let flags: u64 = SYNC_WAKE_UP;
    // SAFETY: SET_FLAGS takes the flags by value (the ioctl's argument is the integer).
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            flags,
        )
    })
    .map(drop)
}

/// Blocks until a notification arrives. `EINTR` is retried; `ENOENT` (the target died before
/// we read it) is returned as an error the caller skips.
pub fn recv(listener: BorrowedFd<'_>, out: &mut Notif) -> io::Result<()> {
    loop {
        // SAFETY: the kernel requires a zeroed buffer; `seccomp_notif` is plain data.
        *out = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one `seccomp_notif` into `out`, which is valid and writable.
        let ret = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                out as *mut Notif,
            )
        };
        match check_int(ret) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// Whether every task the listener's filter applied to is gone (`POLLHUP`).
pub fn orphaned(listener: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(listener, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => true,
    }
}

/// Whether notification `id` is still pending (its task has not died or been interrupted):
/// call it after every read of the task's memory, before acting on what was read.
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: ID_VALID reads one u64 from a valid pointer.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        ) == 0
    }
}

/// The answer to a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Let the kernel run the syscall as issued.
    Continue,
    /// The syscall returns `-errno`.
    Error(i32),
    /// The syscall returns `val` (emulated).
    Value(i64),
    /// Already answered (by `add_fd_and_reply`): nothing to send.
    Sent,
}

/// Sends the reply. `ENOENT` means the task is gone: not an error for the monitor.
pub fn send(listener: BorrowedFd<'_>, id: u64, reply: Reply) -> io::Result<()> {
    let (val, error, flags) = match reply {
        Reply::Sent => return Ok(()),
        Reply::Continue => (0, 0, USER_NOTIF_FLAG_CONTINUE),
        Reply::Error(e) => (0, -e.abs(), 0),
        Reply::Value(v) => (v, 0, 0),
    };
    let resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    // SAFETY: SEND reads one `seccomp_notif_resp` from a valid pointer.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const _,
        )
    };
    match check_int(ret) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other.map(drop),
    }
}

/// Installs `fd` and answers the notification with its number in one step (`ADDFD_FLAG_SEND`):
/// atomic, so an interruption cannot leave a stray descriptor, and two wake-ups instead of four.
pub fn add_fd_and_reply(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    cloexec: bool,
) -> io::Result<i32> {
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: ADDFD_FLAG_SEND,
        srcfd: u32::try_from(fd.as_raw_fd()).map_err(|_| io::Error::other("bad fd"))?,
        newfd: 0,
        newfd_flags: if cloexec { O_CLOEXEC_U32 } else { 0 },
    };
    // SAFETY: ADDFD reads one `seccomp_notif_addfd` from a valid pointer.
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
            &addfd as *const _,
        )
    })
}

/// `O_CLOEXEC` as the `u32` the addfd struct holds.
const O_CLOEXEC_U32: u32 = 0o2_000_000;

/// `SECCOMP_ADDFD_FLAG_SEND`, as the `u32` the addfd struct holds.
const ADDFD_FLAG_SEND: u32 = 2;
