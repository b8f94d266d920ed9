//! The only module of the workspace with `unsafe` code: thin wrappers over kernel facilities
//! that nix and the crates we use do not cover, one facility per file. Every unsafe block does
//! one thing and says why it is sound (`// SAFETY:`); every wrapper returns `io::Result`.
//!
//! Nothing here knows about policies, runs or the protocol.
#![allow(unsafe_code)]

pub mod creds;
pub mod fdpass;
pub mod mount_api;
pub mod netdev;
pub mod peercred;
pub mod pidfd;
pub mod proc_mem;
pub mod process;
pub mod seccomp_notify;
pub mod tty;

use std::io;

/// Converts a raw syscall return (`-1` + errno on failure) into `io::Result`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`check`] for libc functions returning `c_int`.
fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
