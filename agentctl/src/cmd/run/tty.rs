//! The caller's terminal in pty mode: raw mode with a restoring guard, and window sizes.
//!
//! [`RawMode`] puts stdin's terminal in raw mode and restores the saved settings when dropped;
//! `run` keeps it alive for the whole relay and returns (never exits) on every path, signals
//! included (they arrive on a signalfd), so the terminal is always restored. The two `ioctl`s
//! here are the only unsafe code in agentctl: nix has no safe wrapper for `TIOCGWINSZ` and
//! `TIOCSWINSZ`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Context, Result};
use nix::pty::{openpty, OpenptyResult};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Raw mode on stdin's terminal while alive.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> Result<Self> {
        let stdin = io::stdin();
        let saved = tcgetattr(stdin.as_fd()).context("cannot read the terminal settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing sensible is left to do if restoring fails; the shell's `reset` will.
        let _ = tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Opens a pty pair whose size is that of our stdout.
pub fn open_pty() -> Result<OpenptyResult> {
    let size = crate::sys::window_size(io::stdout().as_fd());
    openpty(size.as_ref(), None).context("cannot open a pseudo-terminal")
}

/// Copies the window size of our stdout to the pty `master` (on `SIGWINCH`).
pub fn copy_window_size(master: BorrowedFd<'_>) {
    if let Some(size) = crate::sys::window_size(io::stdout().as_fd()) {
        crate::sys::set_window_size(master, &size);
    }
}
