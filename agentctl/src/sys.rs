//! The only `unsafe` in agentctl: the two terminal ioctls nix has no safe wrapper for.
//! (agentctl cannot use agentd's `sys` module without linking the daemon and libseccomp.)
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::pty::Winsize;

/// The window size of the terminal `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to a live,
    // writable `Winsize` (= `libc::winsize`); `fd` is a valid open descriptor for the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            std::ptr::from_mut(&mut size),
        )
    };
    (rc == 0).then_some(size)
}

pub fn set_window_size(fd: BorrowedFd<'_>, size: &Winsize) {
    // SAFETY: TIOCSWINSZ only reads one `struct winsize` from the pointer, which points to a live
    // `Winsize`; `fd` is a valid open descriptor for the call. A failure changes nothing.
    let _ = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, std::ptr::from_ref(size)) };
}
