//! Reading a notifying task's memory (`process_vm_readv`): syscall arguments that are pointers.
//! The caller must re-check `NOTIF_ID_VALID` after every read before trusting what it read.

use std::io;

/// Reads up to `buf.len()` bytes at `addr` in task `tid`; returns how many were read (a read
/// stops early at an unmapped page).
pub fn read(tid: i32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, writable for its whole length; the remote iovec is only
    // read by the kernel, which checks the remote range itself.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Reads a NUL-terminated string of at most `max` bytes at `addr`: a short first read (most
/// paths are short), then page by page.
pub fn read_cstr(tid: i32, addr: u64, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut at = addr;
    let mut first = true;
    while out.len() < max {
        // Never read across a page boundary in one go: the next page may be unmapped.
        let to_page_end = 4096 - (at % 4096) as usize;
        let want = to_page_end
            .min(max - out.len())
            .min(if first { 256 } else { 4096 });
        first = false;
        let buf = &mut chunk[..want];
        let n = read(tid, at, buf)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        let got = &buf[..n];
        if let Some(end) = got.iter().position(|b| *b == 0) {
            out.extend_from_slice(&got[..end]);
            return Ok(out);
        }
        out.extend_from_slice(got);
        at = at
            .checked_add(n as u64)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFAULT))?;
    }
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}
