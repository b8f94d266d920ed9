//! Socket addresses copied out of an agent's memory: `sockaddr` parsing and the addresses that
//! `sendmsg`/`sendmmsg` carry.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use agentd_policy::{Event, SockAddr};

use super::decode::{read_exact, DecodeError, Decoded};
use super::Monitor;
use crate::sys::seccomp_notify::Notif;

/// Reads and parses a `sockaddr` of `len` bytes.
pub(super) fn sockaddr(
    m: &Monitor,
    n: &Notif,
    tid: i32,
    ptr: u64,
    len: u64,
) -> Result<SockAddr, DecodeError> {
    let len = usize::try_from(len).unwrap_or(0).min(128);
    if ptr == 0 || len < 2 {
        return Err(DecodeError::Errno(libc::EINVAL));
    }
    let mut buf = vec![0u8; len];
    read_exact(m, n, tid, ptr, &mut buf)?;
    parse_sockaddr(tid, &buf).ok_or(DecodeError::Errno(libc::EINVAL))
}

pub(crate) fn parse_sockaddr(tid: i32, b: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = |b: &[u8]| Some(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    match i32::from(family) {
        libc::AF_INET => {
            let ip = Ipv4Addr::new(*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?);
            Some(SockAddr::Inet(SocketAddr::new(IpAddr::V4(ip), port(b)?)))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(octets);
            // A v4-mapped v6 address is the v4 address: judged as such.
            let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
            Some(SockAddr::Inet(SocketAddr::new(ip, port(b)?)))
        }
        libc::AF_UNIX => {
            let path = b.get(2..).unwrap_or(&[]);
            if path.first() == Some(&0) {
                let name = &path[1..];
                return Some(SockAddr::Abstract(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            }
            let end = path.iter().position(|c| *c == 0).unwrap_or(path.len());
            let p = Path::new(OsStr::from_bytes(&path[..end]));
            if p.as_os_str().is_empty() {
                return Some(SockAddr::Other(family));
            }
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::fs::read_link(format!("/proc/{tid}/cwd")).ok()?.join(p)
            };
            Some(SockAddr::Unix(abs))
        }
        _ => Some(SockAddr::Other(family)),
    }
}

/// The addresses `sendmsg`/`sendmmsg` carry (`msghdr.msg_name`), each read once.
pub(super) fn msg_addresses(
    m: &Monitor,
    n: &Notif,
    tid: i32,
    hdrs: &[u64],
) -> Result<Decoded, DecodeError> {
    let mut events = Vec::new();
    for hdr in hdrs {
        let mut h = [0u8; 12];
        read_exact(m, n, tid, *hdr, &mut h)?;
        let name = u64::from_ne_bytes(h[0..8].try_into().unwrap_or([0; 8]));
        let len = u32::from_ne_bytes(h[8..12].try_into().unwrap_or([0; 4]));
        if name != 0 && len > 0 {
            events.push(Event::Connect {
                addr: sockaddr(m, n, tid, name, u64::from(len))?,
            });
        }
    }
    if events.is_empty() {
        return Ok(Decoded::Nothing);
    }
    Ok(Decoded::Address {
        events,
        bind: false,
    })
}

/// An address as the audit log shows it.
pub(crate) fn addr_text(a: &SockAddr) -> String {
    match a {
        SockAddr::Inet(s) => s.to_string(),
        SockAddr::Unix(p) => p.display().to_string(),
        SockAddr::Abstract(n) => format!("@{n}"),
        SockAddr::Other(f) => format!("family {f}"),
    }
}
