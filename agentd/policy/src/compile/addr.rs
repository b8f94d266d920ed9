//! Network destinations: `network.allow` entries and the `addr` of connect rules, and their
//! canonical text (which parses back to the same value). Pure functions returning [`Bad`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::Bad;
use super::value::substitute;
use crate::glob::Glob;
use crate::model::{AddrPattern, NetAllow, Vars};

pub(crate) const ALLOW_HINT: &str =
    "write IP:PORT, CIDR:PORT or HOST:PORT, like \"10.0.0.0/8:443\", \"[::1]:8080\" or \"example.com:443\"";
const ADDR_HINT: &str = "write IP:PORT, CIDR:PORT, [IPv6]:PORT, HOST:PORT (PORT may be *), \
     an absolute Unix socket path or @NAME for an abstract socket";

/// A `network.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allowed {
    Net(NetAllow),
    /// A DNS name and port, compiled into a connect allow rule.
    Host(String, u16),
}

/// `a.b.c.d[/n]:port`, `[v6[/n]]:port` or `host.name:port`.
pub(crate) fn net_allow(s: &str) -> Result<Allowed, Bad> {
    match endpoint(s, false, ALLOW_HINT)? {
        AddrPattern::Net {
            addr,
            prefix,
            port: Some(port),
        } => Ok(Allowed::Net(NetAllow { addr, prefix, port })),
        AddrPattern::Host {
            name,
            port: Some(port),
            ..
        } => Ok(Allowed::Host(name, port)),
        _ => Err(Bad::new(format!("invalid network.allow entry `{s}`")).hint(ALLOW_HINT)),
    }
}

/// The `addr` of a connect rule, after variable substitution.
pub(crate) fn addr_pattern(s: &str, vars: &Vars) -> Result<AddrPattern, Bad> {
    let s = substitute(s, vars)?;
    if s.starts_with('/') {
        let glob = Glob::new(&s).map_err(|e| Bad::new(e).hint(ADDR_HINT))?;
        return Ok(AddrPattern::Unix(glob));
    }
    if let Some(name) = s.strip_prefix('@') {
        if name.is_empty() || name.contains('\0') {
            return Err(Bad::new(format!("invalid abstract socket name `{s}`")).hint(ADDR_HINT));
        }
        return Ok(AddrPattern::Abstract(name.to_string()));
    }
    endpoint(&s, true, ADDR_HINT)
}

/// Parses `HOST:PORT`; `any_port` admits `*` for the port.
fn endpoint(s: &str, any_port: bool, hint: &str) -> Result<AddrPattern, Bad> {
    let missing_port = || Bad::new(format!("missing port in `{s}`")).hint(hint);
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").ok_or_else(missing_port)?,
        None => match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(Bad::new(format!("IPv6 address without brackets in `{s}`")).hint(hint))
            }
            Some(hp) => hp,
            None => return Err(missing_port()),
        },
    };
    let port = match port {
        "*" if any_port => None,
        p => match p.parse::<u16>() {
            Ok(n) if n > 0 && !p.starts_with('+') => Some(n),
            _ => {
                let any = if any_port { ", or * for any port" } else { "" };
                return Err(Bad::new(format!("invalid port `{port}` in `{s}`"))
                    .hint(format!("a port is a number from 1 to 65535{any}")));
            }
        },
    };
    if !s.starts_with('[') && is_host_name(host) {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let resolved = Vec::new();
        return Ok(AddrPattern::Host {
            name,
            port,
            resolved,
        });
    }
    let (addr, prefix) = cidr(host, s, hint)?;
    Ok(AddrPattern::Net { addr, prefix, port })
}

/// A DNS name: dot-separated labels of letters, digits and `-` (not at either end), at least
/// one letter (so that a malformed IPv4 address is not taken for a name), at most 253 bytes.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.split('.').all(label_ok)
}

/// `addr[/prefix]` with the host bits clear.
fn cidr(host: &str, s: &str, hint: &str) -> Result<(IpAddr, u8), Bad> {
    let (addr, prefix) = match host.split_once('/') {
        Some((a, n)) => (a, Some(n)),
        None => (host, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        Bad::new(format!("invalid IP address or host name `{addr}` in `{s}`")).hint(hint)
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(n) => match n.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                let v = if max == 32 { 4 } else { 6 };
                return Err(
                    Bad::new(format!("invalid prefix length `/{n}` in `{s}`")).hint(format!(
                        "a prefix length is 0 to {max} for an IPv{v} address"
                    )),
                );
            }
        },
    };
    let network = mask(addr, prefix);
    if network != addr {
        return Err(Bad::new(format!("host bits set in `{addr}/{prefix}`"))
            .hint(format!("write the network address: {network}/{prefix}")));
    }
    Ok((addr, prefix))
}

/// `addr` with the bits after `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The canonical text of `a`, which [`net_allow`] parses back.
pub(crate) fn net_allow_text(a: &NetAllow) -> String {
    net_text(a.addr, a.prefix, Some(a.port))
}

/// The canonical text of a rule's `addr`, which [`addr_pattern`] parses back.
pub(crate) fn addr_text(a: &AddrPattern) -> String {
    match a {
        AddrPattern::Net { addr, prefix, port } => net_text(*addr, *prefix, *port),
        AddrPattern::Host { name, port, .. } => format!("{name}:{}", port_text(*port)),
        AddrPattern::Unix(glob) => glob.as_str().to_string(),
        AddrPattern::Abstract(name) => format!("@{name}"),
    }
}

fn net_text(addr: IpAddr, prefix: u8, port: Option<u16>) -> String {
    let port = port_text(port);
    match (addr, prefix) {
        (IpAddr::V4(v4), 32) => format!("{v4}:{port}"),
        (IpAddr::V4(v4), n) => format!("{v4}/{n}:{port}"),
        (IpAddr::V6(v6), 128) => format!("[{v6}]:{port}"),
        (IpAddr::V6(v6), n) => format!("[{v6}/{n}]:{port}"),
    }
}

fn port_text(port: Option<u16>) -> String {
    port.map_or_else(|| "*".to_string(), |p| p.to_string())
}

#[cfg(test)]
mod tests;
