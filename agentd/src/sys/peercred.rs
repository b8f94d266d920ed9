//! `SO_PEERGROUPS`: the supplementary groups of a Unix-socket peer, as the kernel recorded them
//! at connect time (nix has `SO_PEERCRED` only).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check_int;

const SO_PEERGROUPS: libc::c_int = 59;

/// The peer's supplementary groups (at most 1024 are read).
pub fn peer_groups(sock: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 1024];
    let mut len = libc::socklen_t::try_from(groups.len() * std::mem::size_of::<u32>())
        .map_err(|_| io::Error::other("size"))?;
    // SAFETY: `groups` is a writable buffer of `len` bytes; the kernel writes at most `len` bytes
    // and stores the length used in `len`.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    check_int(ret)?;
    groups.truncate(len as usize / std::mem::size_of::<u32>());
    Ok(groups)
}
