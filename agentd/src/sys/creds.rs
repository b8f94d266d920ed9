//! Credentials: per-thread filesystem identity and the securebits lock.
//!
//! glibc broadcasts `setgroups`/`setresuid` to every thread of a process; the raw syscalls used
//! here change only the calling thread. The daemon uses that to open a caller's files (a policy
//! path) with the caller's permissions from a short-lived thread that then exits; the launcher
//! uses it to resolve bind-mount sources as the caller, so a run never sees a path the caller
//! could not reach.

use std::io;

use super::{check, check_int};

/// Switches the calling thread's supplementary groups, fsgid and fsuid to the caller's.
/// Only filesystem permission checks change: the thread keeps its real/effective ids.
pub fn assume_fs_identity(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: raw setgroups(2) on this thread only; the kernel reads `groups.len()` gid_t values
    // from a valid slice.
    let ret = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    check(ret)?;
    // SAFETY: raw setfsgid(2) on this thread; no memory is passed.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) };
    // SAFETY: raw setfsuid(2) on this thread; no memory is passed.
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) };
    // setfsuid reports the previous value, not errors: read back to verify.
    // SAFETY: setfsuid(-1) changes nothing and returns the current fsuid.
    let now = unsafe { libc::syscall(libc::SYS_setfsuid, u32::MAX) };
    if now != libc::c_long::from(uid) {
        return Err(io::Error::other(format!(
            "setfsuid({uid}) did not take effect"
        )));
    }
    Ok(())
}

/// Restores fsuid/fsgid 0 on the calling thread (the launcher's own work after resolving sources).
pub fn restore_root_fs_identity() -> io::Result<()> {
    // SAFETY: raw setfsuid(2)/setfsgid(2) on this thread; no memory is passed.
    unsafe { libc::syscall(libc::SYS_setfsuid, 0) };
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_setfsgid, 0) };
    // SAFETY: setfsuid(-1) changes nothing and returns the current fsuid.
    let now = unsafe { libc::syscall(libc::SYS_setfsuid, u32::MAX) };
    if now != 0 {
        return Err(io::Error::other("could not restore fsuid 0"));
    }
    Ok(())
}

/// `SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED
/// | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED`: root gains nothing by
/// exec, capabilities are dropped on the uid change and can never be kept or raised again.
pub const LOCKED_SECUREBITS: libc::c_ulong = 0x01 | 0x02 | 0x08 | 0x20 | 0x40 | 0x80;

/// Locks the securebits of the calling process (needs CAP_SETPCAP).
pub fn lock_securebits() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_SECUREBITS, bits) passes no memory.
    let ret = unsafe { libc::prctl(libc::PR_SET_SECUREBITS, LOCKED_SECUREBITS, 0, 0, 0) };
    check_int(ret).map(drop)
}
