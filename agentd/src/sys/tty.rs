//! Terminal control: making the agent's pty its controlling terminal.

use std::io;

use super::check_int;

/// `ioctl(0, TIOCSCTTY, 0)`: makes standard input (a pty slave) the controlling terminal of the
/// calling session leader.
pub fn set_controlling_terminal_stdin() -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory is passed.
    check_int(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }).map(drop)
}
