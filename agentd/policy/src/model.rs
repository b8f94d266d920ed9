//! The compiled policy: plain data, every path absolute and normalised, every variable
//! substituted, every value validated. Nothing downstream of this module reads TOML.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::event::OpenAccess;
use crate::glob::{ArgvGlob, Glob};

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
    /// `[[rule]]` entries of every merged file, bases first, then the host names of
    /// `network.allow` as connect allow rules.
    pub rules: Vec<Rule>,
    pub approval: Approval,
}

/// How `ask` and `pause` wait for a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval {
    /// How long a held call waits; then it is denied (the only default today).
    pub timeout: Duration,
}

impl Default for Approval {
    fn default() -> Self {
        Approval {
            timeout: Duration::from_secs(60),
        }
    }
}

/// One `[[rule]]`: when `matcher` matches an event, `action` applies (see [`crate::decide`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique in the merged policy: as written, or `rule-<N>` (N counts from 1 in its file).
    pub id: String,
    pub matcher: Matcher,
    pub action: Action,
    /// The errno of a `deny` (EACCES unless the rule names another).
    pub errno: i32,
    /// Why, in words; copied into audit records.
    pub reason: String,
    /// Where the rule was defined: `file:line`.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Deny,
    /// Hold the call for a human.
    Ask,
    /// Freeze the run and hold the call for a human.
    Pause,
}

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// `path` matches the executable; `argv`, if given, matches the arguments joined by spaces.
    Exec {
        path: Glob,
        argv: Option<ArgvGlob>,
    },
    /// `path` matches the file or a directory above it; `access` `None` means both.
    Open {
        path: Glob,
        access: Option<OpenAccess>,
    },
    Connect(AddrPattern),
}

/// The destination of a connect rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrPattern {
    /// A CIDR (`prefix` 32 or 128 for one address); `port` `None` means any port.
    Net {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
    /// A DNS name (lower case); matches the addresses in `resolved`, which the daemon fills
    /// through [`Policy::with_resolved`]. Empty at compile time.
    Host {
        name: String,
        port: Option<u16>,
        resolved: Vec<IpAddr>,
    },
    /// A Unix socket path pattern.
    Unix(Glob),
    /// An abstract Unix socket name (without the leading `@`).
    Abstract(String),
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

impl Policy {
    /// Every distinct DNS name of the connect rules, in policy order.
    pub fn hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.rules {
            if let Matcher::Connect(AddrPattern::Host { name, .. }) = &r.matcher {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
        out
    }

    /// A copy whose host patterns resolve to the addresses in `table`; a name the table lacks
    /// resolves to nothing (so it matches no address).
    pub fn with_resolved(&self, table: &HashMap<String, Vec<IpAddr>>) -> Policy {
        let mut p = self.clone();
        for r in &mut p.rules {
            if let Matcher::Connect(AddrPattern::Host { name, resolved, .. }) = &mut r.matcher {
                *resolved = table.get(name.as_str()).cloned().unwrap_or_default();
            }
        }
        p
    }

    /// Whether the kernel walls (view + Landlock) leave opens the policy forbids: any `hide`
    /// (files created after launch) or any open rule that is not `allow`.
    pub fn open_needs_emulation(&self) -> bool {
        !self.filesystem.hide.is_empty()
            || self
                .rules
                .iter()
                .any(|r| matches!(r.matcher, Matcher::Open { .. }) && r.action != Action::Allow)
    }

    /// Whether connects need the monitor: `filtered` (Landlock filters ports, not addresses)
    /// or any connect rule that is not `allow`.
    pub fn connect_needs_emulation(&self) -> bool {
        self.network.mode == NetMode::Filtered
            || self
                .rules
                .iter()
                .any(|r| matches!(r.matcher, Matcher::Connect(_)) && r.action != Action::Allow)
    }
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
        in_net(self.addr, self.prefix, addr)
    }
}

/// Whether `addr` lies in `net/prefix` (an IPv4 address is never in an IPv6 network).
pub(crate) fn in_net(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(&net.octets(), &a.octets(), prefix),
        (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(&net.octets(), &a.octets(), prefix),
        _ => false,
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
