// Test fixtures build sockaddrs from libc's i32 family constants.
#![allow(clippy::cast_possible_truncation)]

use super::*;
use crate::monitor::resolve::own_magic_link;
use crate::monitor::sockaddr::parse_sockaddr;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

fn v4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut b = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(&ip);
    b.extend_from_slice(&[0; 8]);
    b
}

#[test]
fn parse_sockaddr_inet_v4_v6_and_mapped() {
    assert_eq!(
        parse_sockaddr(1, &v4([127, 0, 0, 1], 8080)),
        Some(SockAddr::Inet("127.0.0.1:8080".parse().unwrap()))
    );
    let mut b = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(&443u16.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&"::ffff:10.1.2.3".parse::<Ipv6Addr>().unwrap().octets());
    b.extend_from_slice(&[0; 4]);
    assert_eq!(
        parse_sockaddr(1, &b),
        Some(SockAddr::Inet("10.1.2.3:443".parse().unwrap()))
    );
}

#[test]
fn parse_sockaddr_unix_path_abstract_and_short() {
    let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(b"/run/x.sock\0");
    assert_eq!(
        parse_sockaddr(1, &b),
        Some(SockAddr::Unix("/run/x.sock".into()))
    );
    let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(b"\0name");
    assert_eq!(
        parse_sockaddr(1, &b),
        Some(SockAddr::Abstract("name".into()))
    );
    assert_eq!(parse_sockaddr(1, &[2]), None);
    assert_eq!(parse_sockaddr(1, &v4([1, 2, 3, 4], 1)[..5]), None);
}

#[test]
fn own_magic_links_split_into_the_link_and_what_follows() {
    let p = |s: &str| own_magic_link(Path::new(s));
    let l = |link: &str, rest: &str| Some((link.to_string(), PathBuf::from(rest)));
    assert_eq!(p("/proc/self/fd/3"), l("fd/3", ""));
    assert_eq!(p("/dev/fd/63"), l("fd/63", ""));
    assert_eq!(p("/dev/stdout"), l("fd/1", ""));
    assert_eq!(p("/proc/thread-self/cwd"), l("cwd", ""));
    assert_eq!(p("/proc/self/cwd/.npmrc"), l("cwd", ".npmrc"));
    assert_eq!(
        p("/proc/self/fd/4/../../self/root/etc"),
        l("fd/4", "../../self/root/etc")
    );
    assert_eq!(
        p("/proc/self/fd/../../self/root"),
        None,
        "fd must be followed by digits"
    );
    assert_eq!(p("/proc/self/fd/3x"), None);
    assert_eq!(
        p("/proc/self/status"),
        None,
        "not a magic link: resolved in the view"
    );
    assert_eq!(p("/etc/passwd"), None);
}

#[test]
fn open_args_reduce_flags_and_mode_as_open_does() {
    // A mode from stat (file type bits) keeps its permission bits, only when creating.
    assert_eq!(
        open_args(libc::O_CREAT | libc::O_WRONLY, 0o100_644),
        (libc::O_CREAT | libc::O_WRONLY, 0o644)
    );
    assert_eq!(open_args(libc::O_RDONLY, 0o644), (libc::O_RDONLY, 0));
    let tmp = libc::O_TMPFILE | libc::O_RDWR;
    assert_eq!(open_args(tmp, 0o4_755), (tmp, 0o4_755));
    // Unknown bits dropped; O_PATH keeps only its own flags (no O_CREAT, no write).
    assert_eq!(open_args(libc::O_RDONLY | 0x4000_0000, 0).0, libc::O_RDONLY);
    let path = libc::O_PATH | libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC;
    assert_eq!(open_args(path, 0o644), (libc::O_PATH | libc::O_CLOEXEC, 0));
    // The kernel's O_LARGEFILE and the other known flags survive.
    let known = libc::O_RDWR | libc::O_APPEND | libc::O_SYNC | KERNEL_O_LARGEFILE | libc::O_NOATIME;
    assert_eq!(open_args(known, 0).0, known);
}

#[test]
fn check_open_flags_refuses_what_every_open_refuses() {
    let einval = |flags: i32| {
        matches!(
            check_open_flags(flags),
            Err(DecodeError::Errno(libc::EINVAL))
        )
    };
    assert!(einval(libc::O_CREAT | libc::O_DIRECTORY));
    assert!(
        einval(libc::O_TMPFILE | libc::O_RDONLY),
        "O_TMPFILE must write"
    );
    assert!(einval(libc::O_TMPFILE | libc::O_RDWR | libc::O_CREAT));
    assert!(
        einval((libc::O_TMPFILE & !libc::O_DIRECTORY) | libc::O_RDWR),
        "needs O_DIRECTORY"
    );
    for ok in [
        libc::O_RDONLY,
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
        libc::O_DIRECTORY | libc::O_RDONLY,
        libc::O_TMPFILE | libc::O_WRONLY,
        libc::O_TMPFILE | libc::O_RDWR | libc::O_EXCL,
    ] {
        assert!(check_open_flags(ok).is_ok(), "{ok:#x}");
    }
}
