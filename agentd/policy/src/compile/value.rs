//! Checks and conversions of single values: variables, paths, sizes, durations, network
//! entries, environment names. Pure functions returning [`Bad`] without a location; the caller
//! attaches the value's span.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::error::Bad;
use crate::glob::Glob;
use crate::model::{NetAllow, NetMode, TmpMode, Vars};

const VARS_HINT: &str = "the variables are ${HOME}, ${WORKSPACE}, ${USER}";
const SIZE_HINT: &str = "write a size like \"512M\" or \"4G\"";
const WALL_HINT: &str = "write a duration like \"90s\", \"30m\" or \"1h30m\"";
const ALLOW_HINT: &str = "write IP:PORT or CIDR:PORT, like \"10.0.0.0/8:443\" or \"[::1]:8080\"";

/// Replaces `${HOME}`, `${WORKSPACE}` and `${USER}`; any other `${…}` is an error.
pub(crate) fn substitute(s: &str, vars: &Vars) -> Result<String, Bad> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(Bad::new(format!("unclosed `${{` in `{s}`")).hint(VARS_HINT));
        };
        match &after[..end] {
            "HOME" => out.push_str(&vars.home.to_string_lossy()),
            "WORKSPACE" => out.push_str(&vars.workspace.to_string_lossy()),
            "USER" => out.push_str(&vars.user),
            other => {
                return Err(Bad::new(format!("unknown variable `${{{other}}}`")).hint(VARS_HINT))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A granted path: substituted, absolute, without `..`, `.` and trailing `/` removed.
pub(crate) fn grant_path(s: &str, vars: &Vars) -> Result<PathBuf, Bad> {
    let path = substitute(s, vars)?;
    if path.contains('\0') {
        return Err(Bad::new(format!("path `{path}` contains a NUL character")));
    }
    if !path.starts_with('/') {
        return Err(Bad::new(format!("path `{path}` is not absolute"))
            .hint("write an absolute path or start it with ${WORKSPACE} or ${HOME}"));
    }
    let mut out = PathBuf::from("/");
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(Bad::new(format!("path `{path}` contains `..`"))
                    .hint("write the path without `..`"))
            }
            seg => out.push(seg),
        }
    }
    Ok(out)
}

/// A `hide` pattern: substituted, then compiled.
pub(crate) fn hide_glob(s: &str, vars: &Vars) -> Result<Glob, Bad> {
    let pattern = substitute(s, vars)?;
    Glob::new(&pattern).map_err(|e| {
        Bad::new(e).hint("write a path pattern like \"${WORKSPACE}/**/.env\" or \"**/*.pem\"")
    })
}

pub(crate) fn tmp_mode(s: &str) -> Result<TmpMode, Bad> {
    match s {
        "private" => Ok(TmpMode::Private),
        "none" => Ok(TmpMode::None),
        other => Err(Bad::new(format!("unknown tmp mode `{other}`"))
            .hint("write tmp = \"private\" or tmp = \"none\"")),
    }
}

pub(crate) fn net_mode(s: &str) -> Result<NetMode, Bad> {
    match s {
        "none" => Ok(NetMode::None),
        "filtered" => Ok(NetMode::Filtered),
        other => Err(Bad::new(format!("unknown network mode `{other}`"))
            .hint("write mode = \"none\" or mode = \"filtered\"")),
    }
}

/// An `env.pass` entry: a name, or a prefix followed by `*`.
pub(crate) fn env_pass(s: &str) -> Result<String, Bad> {
    env_name(s.strip_suffix('*').unwrap_or(s), s.ends_with('*'))?;
    Ok(s.to_string())
}

/// An `env.set` name.
pub(crate) fn env_set_name(s: &str) -> Result<(), Bad> {
    env_name(s, false)
}

fn env_name(name: &str, prefix: bool) -> Result<(), Bad> {
    if name.is_empty() && !prefix {
        return Err(Bad::new("empty variable name"));
    }
    if name.contains(['=', '\0', '*']) {
        return Err(Bad::new(format!("invalid variable name `{name}`"))
            .hint("a name cannot contain `=`; `*` is allowed only at the end of a pass entry"));
    }
    Ok(())
}

/// Bytes: an integer, or a string of digits with an optional K/M/G/T suffix (powers of 1024).
pub(crate) fn memory(v: &toml::Value) -> Result<u64, Bad> {
    let bytes = match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse_size(s),
        _ => None,
    };
    match bytes {
        Some(0) => Err(Bad::new("memory must be more than zero").hint(SIZE_HINT)),
        Some(b) if i64::try_from(b).is_ok() => Ok(b),
        Some(_) => Err(Bad::new(format!("memory size {v} is too large")).hint(SIZE_HINT)),
        None => Err(Bad::new(format!("invalid memory size {v}")).hint(SIZE_HINT)),
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        (i, 'T' | 't') => (&s[..i], 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

pub(crate) fn pids(n: i64) -> Result<u64, Bad> {
    match u64::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Bad::new(format!("pids must be more than zero, not {n}"))
            .hint("write a process count like pids = 1024")),
    }
}

/// Cores: an integer or a float, finite and more than zero.
pub(crate) fn cpu(v: &toml::Value) -> Result<f64, Bad> {
    let cores = match v {
        // Exact for every count of cores a machine can have.
        #[allow(clippy::cast_precision_loss)]
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    };
    match cores {
        Some(c) if c.is_finite() && c > 0.0 => Ok(c),
        _ => Err(Bad::new(format!(
            "cpu must be a number of cores more than zero, not {v}"
        ))
        .hint("write cpu = 2 or cpu = 0.5")),
    }
}

/// A duration of `<n>d<n>h<n>m<n>s` parts, each at most once, largest first.
pub(crate) fn wall(s: &str) -> Result<Duration, Bad> {
    let bad = || Bad::new(format!("invalid duration \"{s}\"")).hint(WALL_HINT);
    let units = [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut next_unit = 0;
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let i = units[next_unit..]
            .iter()
            .position(|(u, _)| *u == c)
            .ok_or_else(bad)?;
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let secs = n.checked_mul(units[next_unit + i].1).ok_or_else(bad)?;
        total = total.checked_add(secs).ok_or_else(bad)?;
        next_unit += i + 1;
        digits.clear();
    }
    if !digits.is_empty() || next_unit == 0 {
        return Err(bad());
    }
    if total == 0 {
        return Err(Bad::new("wall must be more than zero").hint(WALL_HINT));
    }
    Ok(Duration::from_secs(total))
}

/// `a.b.c.d[/n]:port` or `[v6[/n]]:port`.
pub(crate) fn net_allow(s: &str) -> Result<NetAllow, Bad> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((h, p)) => (h, p),
            None => return Err(Bad::new(format!("missing port in `{s}`")).hint(ALLOW_HINT)),
        },
        None => match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(
                    Bad::new(format!("IPv6 address without brackets in `{s}`")).hint(ALLOW_HINT)
                )
            }
            Some((h, p)) => (h, p),
            None => return Err(Bad::new(format!("missing port in `{s}`")).hint(ALLOW_HINT)),
        },
    };
    let (addr, prefix) = match host.split_once('/') {
        Some((a, n)) => (a, Some(n)),
        None => (host, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        if addr.chars().any(|c| c.is_ascii_alphabetic()) && !addr.contains(':') {
            Bad::new(format!("host name `{addr}` in `{s}`"))
                .hint("host names come with the monitor; use an IP or CIDR")
        } else {
            Bad::new(format!("invalid IP address `{addr}` in `{s}`")).hint(ALLOW_HINT)
        }
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(n) => match n.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(
                    Bad::new(format!("invalid prefix length `/{n}` in `{s}`")).hint(format!(
                        "a prefix length is 0 to {max} for an IPv{} address",
                        if max == 32 { 4 } else { 6 }
                    )),
                )
            }
        },
    };
    let network = mask(addr, prefix);
    if network != addr {
        return Err(Bad::new(format!("host bits set in `{addr}/{prefix}`"))
            .hint(format!("write the network address: {network}/{prefix}")));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(Bad::new(format!("invalid port `{port}` in `{s}`"))
                .hint("a port is a number from 1 to 65535"))
        }
    };
    Ok(NetAllow { addr, prefix, port })
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
    match (a.addr, a.prefix) {
        (IpAddr::V4(v4), 32) => format!("{v4}:{}", a.port),
        (IpAddr::V4(v4), n) => format!("{v4}/{n}:{}", a.port),
        (IpAddr::V6(v6), 128) => format!("[{v6}]:{}", a.port),
        (IpAddr::V6(v6), n) => format!("[{v6}/{n}]:{}", a.port),
    }
}

/// The canonical text of a wall duration (`1h30m`), which [`wall`] parses back.
pub(crate) fn wall_text(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests;
