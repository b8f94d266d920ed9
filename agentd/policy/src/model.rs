//! The compiled policy: plain data, every path absolute and normalised, every variable
//! substituted, every value validated. Nothing downstream of this module reads TOML.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::glob::Glob;

/// The values `${HOME}`, `${WORKSPACE}` and `${USER}` stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// The caller's home directory (absolute).
    pub home: PathBuf,
    /// The run's workspace (absolute).
    pub workspace: PathBuf,
    /// The caller's user name.
    pub user: String,
}

/// A compiled, merged policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The name or path the policy was asked for by (`default`, `./p.toml`).
    pub name: String,
    /// Every file merged into this policy, bases first, the named file last.
    pub sources: Vec<PathBuf>,
    pub filesystem: Filesystem,
    pub env: EnvPolicy,
    pub network: Network,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filesystem {
    /// Read-only trees (files or directories).
    pub read: Vec<PathBuf>,
    /// Read, write, create and delete.
    pub write: Vec<PathBuf>,
    /// May execute (and read, since exec needs it).
    pub exec: Vec<PathBuf>,
    pub tmp: TmpMode,
    /// Unreadable even inside a granted tree. Deny wins over every grant.
    pub hide: Vec<Glob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TmpMode {
    /// Fresh /tmp, /var/tmp and /dev/shm: writable, not executable, nothing of the host's.
    #[default]
    Private,
    /// No /tmp at all (only what the grants make visible).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvPolicy {
    /// Variable names passed from the caller's environment. A trailing `*` matches a prefix
    /// (`LC_*`). Everything else is dropped.
    pub pass: Vec<String>,
    /// Variables set (after substitution), overriding passed ones.
    pub set: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetMode {
    /// An own, empty network namespace (loopback only).
    #[default]
    None,
    /// The host network, only the `allow` destinations.
    Filtered,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Network {
    pub mode: NetMode,
    pub allow: Vec<NetAllow>,
}

/// `IP:port` or `CIDR:port` (`[v6]:port`, `[v6/64]:port` for IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetAllow {
    pub addr: IpAddr,
    /// Prefix length: 32 (or 128) for a single address.
    pub prefix: u8,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Maximum number of processes and threads.
    pub pids: Option<u64>,
    /// CPU limit in cores (fractions allowed).
    pub cpu: Option<f64>,
    /// Wall-clock limit: the run is killed after this.
    pub wall: Option<Duration>,
}

impl EnvPolicy {
    /// The environment the agent gets: passed variables of `caller`, then `set` on top.
    pub fn filter(&self, caller: &[(String, String)]) -> Vec<(String, String)> {
        let mut out: BTreeMap<String, String> = caller
            .iter()
            .filter(|(k, _)| self.passes(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &self.set {
            out.insert(k.clone(), v.clone());
        }
        out.into_iter().collect()
    }

    /// Whether `name` is in `pass` (exactly, or by a `PREFIX*` entry).
    pub fn passes(&self, name: &str) -> bool {
        self.pass.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
    }
}

impl NetAllow {
    /// Whether `addr:port` falls in this entry.
    pub fn matches(&self, addr: IpAddr, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(&net.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(&net.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a.len() < full || b.len() < full || a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_filter_passes_listed_and_prefix_sets_override() {
        let p = EnvPolicy {
            pass: vec!["PATH".into(), "LC_*".into()],
            set: [("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())]
                .into_iter()
                .collect(),
        };
        let caller = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("LC_ALL".to_string(), "C".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "x".to_string()),
            ("GIT_TERMINAL_PROMPT".to_string(), "1".to_string()),
        ];
        let out = p.filter(&caller);
        assert_eq!(
            out,
            vec![
                ("GIT_TERMINAL_PROMPT".to_string(), "0".to_string()),
                ("LC_ALL".to_string(), "C".to_string()),
                ("PATH".to_string(), "/bin".to_string()),
            ]
        );
    }

    #[test]
    fn net_allow_matches_cidr_and_port() {
        let a = NetAllow {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
            port: 443,
        };
        assert!(a.matches("10.1.2.3".parse().unwrap(), 443));
        assert!(!a.matches("10.1.2.3".parse().unwrap(), 80));
        assert!(!a.matches("11.0.0.1".parse().unwrap(), 443));
        let b = NetAllow {
            addr: "192.168.0.0".parse().unwrap(),
            prefix: 20,
            port: 1,
        };
        assert!(b.matches("192.168.15.255".parse().unwrap(), 1));
        assert!(!b.matches("192.168.16.0".parse().unwrap(), 1));
        assert!(!b.matches("::1".parse().unwrap(), 1));
    }
}
