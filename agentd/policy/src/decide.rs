//! [`decide`]: the policy's answer to one event. Pure and total: no I/O, no panics, the same
//! answer for the same input. The monitor calls it for every mediated event.
//!
//! Order: the rules that match (deny > pause > ask > allow; the first rule of the winning
//! action decides), else the default for the event's kind, which follows from the grants.
//! Two invariants hold whatever the rules say: an `allow` rule never un-hides a path hidden by
//! `filesystem.hide`, and a path that is not absolute and normalised is never allowed by
//! default.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Component, Path};

use crate::event::ENETUNREACH;
use crate::event::{Decision, Event, OpenAccess, SockAddr, Verdict, EACCES, ECONNREFUSED};
use crate::model::{in_net, Action, AddrPattern, Matcher, NetMode, Policy, Rule, TmpMode};

/// Paths every run's view has, readable and writable. The launcher builds its Landlock device
/// rules from this list too, so the judge and the wall cannot drift apart.
pub const IMPLICIT_RW: [&str; 8] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];
/// With `tmp = "private"`: fresh, writable, not executable.
pub(crate) const IMPLICIT_TMP: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];
/// Readable trees.
pub(crate) const IMPLICIT_RO_TREES: [&str; 1] = ["/proc"];
/// Readable directories (their listing), not what lies below.
pub(crate) const IMPLICIT_RO_DIRS: [&str; 2] = ["/", "/dev"];

/// The policy's decision on `event`.
pub fn decide(policy: &Policy, event: &Event) -> Decision {
    let event = canonical(event);
    let mut best: Option<&Rule> = None;
    for rule in &policy.rules {
        if rule.matcher.matches(&event) && best.is_none_or(|b| rank(rule.action) > rank(b.action)) {
            best = Some(rule);
        }
    }
    match best {
        Some(rule) if rule.action == Action::Allow => match hidden(policy, &event) {
            Some(denied) => denied,
            None => by_rule(rule),
        },
        Some(rule) => by_rule(rule),
        None => default(policy, &event),
    }
}

/// Whether the argv of an exec of `path` can change the decision: some exec rule has an `argv`
/// pattern and its `path` matches. When it cannot, an argv the monitor could only read in part
/// is judged on the path alone; when it can, such an exec must be refused, not judged on a part.
pub fn argv_matters(policy: &Policy, path: &std::path::Path) -> bool {
    policy
        .rules
        .iter()
        .any(|r| matches!(&r.matcher, Matcher::Exec { path: p, argv: Some(_) } if p.matches(path)))
}

/// Deny beats pause beats ask beats allow (`explain` ranks with this too).
pub(crate) fn rank(a: Action) -> u8 {
    match a {
        Action::Allow => 0,
        Action::Ask => 1,
        Action::Pause => 2,
        Action::Deny => 3,
    }
}

fn by_rule(rule: &Rule) -> Decision {
    let verdict = match rule.action {
        Action::Allow => Verdict::Allow,
        Action::Deny => Verdict::Deny { errno: rule.errno },
        Action::Ask => Verdict::Ask,
        Action::Pause => Verdict::Pause,
    };
    Decision {
        verdict,
        rule_id: Some(rule.id.clone()),
        reason: rule.reason.clone(),
    }
}

/// A v4-mapped IPv6 address reaches the IPv4 host: match it as IPv4. Every other event is
/// borrowed as it is (`decide` runs for every event: no copy of paths and argv).
pub(crate) fn canonical(event: &Event) -> Cow<'_, Event> {
    match event {
        Event::Connect {
            addr: SockAddr::Inet(sa),
        } if sa.ip().to_canonical() != sa.ip() => {
            let mut sa = *sa;
            sa.set_ip(sa.ip().to_canonical());
            Cow::Owned(Event::Connect {
                addr: SockAddr::Inet(sa),
            })
        }
        other => Cow::Borrowed(other),
    }
}

impl Matcher {
    /// Whether this matcher applies to `event` (of the same kind).
    pub fn matches(&self, event: &Event) -> bool {
        match (self, event) {
            (Matcher::Exec { path, argv }, Event::Exec { path: p, argv: a }) => {
                path.matches(p) && argv.as_ref().is_none_or(|g| g.matches(a))
            }
            (Matcher::Open { path, access }, Event::Open { path: p, access: a }) => {
                path.matches_or_below(p) && access.is_none_or(|x| x == *a)
            }
            (Matcher::Connect(pattern), Event::Connect { addr }) => pattern.matches(addr),
            _ => false,
        }
    }
}

impl AddrPattern {
    /// Whether `addr` is a destination of this pattern.
    pub fn matches(&self, addr: &SockAddr) -> bool {
        let port_ok = |want: &Option<u16>, got: u16| want.is_none_or(|p| p == got);
        match (self, addr) {
            (AddrPattern::Net { addr, prefix, port }, SockAddr::Inet(sa)) => {
                in_net(*addr, *prefix, sa.ip()) && port_ok(port, sa.port())
            }
            (AddrPattern::Host { port, resolved, .. }, SockAddr::Inet(sa)) => {
                resolved.contains(&sa.ip()) && port_ok(port, sa.port())
            }
            (AddrPattern::Unix(glob), SockAddr::Unix(path)) => glob.matches(path),
            (AddrPattern::Abstract(name), SockAddr::Abstract(got)) => name == got,
            _ => false,
        }
    }
}

fn allow(reason: String) -> Decision {
    Decision {
        verdict: Verdict::Allow,
        rule_id: None,
        reason,
    }
}

fn deny(errno: i32, reason: String) -> Decision {
    Decision {
        verdict: Verdict::Deny { errno },
        rule_id: None,
        reason,
    }
}

/// The hide default, if `event` is an open or exec of a hidden path.
fn hidden(policy: &Policy, event: &Event) -> Option<Decision> {
    let path = match event {
        Event::Exec { path, .. } | Event::Open { path, .. } => path,
        Event::Connect { .. } => return None,
    };
    let glob = policy
        .filesystem
        .hide
        .iter()
        .find(|g| g.matches_or_below(path))?;
    let reason = format!("hidden by the policy (hide = {:?})", glob.as_str());
    Some(deny(EACCES, reason))
}

/// What the policy says when no rule matches.
fn default(policy: &Policy, event: &Event) -> Decision {
    if let Some(denied) = hidden(policy, event) {
        return denied;
    }
    match event {
        Event::Exec { path, .. } => {
            if !normal(path) {
                return deny(EACCES, not_normal(path));
            }
            match under(path, &policy.filesystem.exec) {
                Some(g) => allow(format!("inside the exec grant {}", g.display())),
                None => deny(EACCES, "outside the policy's exec grants".to_string()),
            }
        }
        Event::Open { path, access } => open_default(policy, path, *access),
        Event::Connect { addr } => connect_default(policy, addr),
    }
}

fn open_default(policy: &Policy, path: &Path, access: OpenAccess) -> Decision {
    if !normal(path) {
        return deny(EACCES, not_normal(path));
    }
    let fs = &policy.filesystem;
    if let Some(g) = under(path, &fs.write) {
        return allow(format!("inside the write grant {}", g.display()));
    }
    // An explicit grant is mounted on top of the implicit ones (a workspace under /tmp sits on
    // the private /tmp): inside it, its rights decide, not the implicit grant's.
    let explicit = [(&fs.read, "read"), (&fs.exec, "exec")]
        .into_iter()
        .find_map(|(list, kind)| under(path, list).map(|g| (g, kind)));
    if let Some((g, kind)) = explicit {
        if access == OpenAccess::Write {
            let why = format!(
                "outside the policy's write grants (inside the {kind} grant {})",
                g.display()
            );
            return deny(EACCES, why);
        }
        return allow(format!("inside the {kind} grant {}", g.display()));
    }
    let tmp: &[&str] = match fs.tmp {
        TmpMode::Private => &IMPLICIT_TMP,
        TmpMode::None => &[],
    };
    if let Some(g) = under(path, &IMPLICIT_RW).or_else(|| under(path, tmp)) {
        return allow(format!("inside the implicit grant {}", g.display()));
    }
    if access == OpenAccess::Write {
        return deny(EACCES, "outside the policy's write grants".to_string());
    }
    let implicit_dir = IMPLICIT_RO_DIRS.iter().find(|d| path == Path::new(d));
    if let Some(g) = under(path, &IMPLICIT_RO_TREES).or(implicit_dir.map(Path::new)) {
        return allow(format!(
            "inside the implicit read-only grant {}",
            g.display()
        ));
    }
    deny(EACCES, "outside the policy's read grants".to_string())
}

fn connect_default(policy: &Policy, addr: &SockAddr) -> Decision {
    let sa = match addr {
        SockAddr::Inet(sa) => sa,
        SockAddr::Unix(_) | SockAddr::Abstract(_) => {
            return allow("a Unix socket: the run's view is its wall".to_string())
        }
        SockAddr::Other(family) => {
            return deny(EACCES, format!("address family {family} is not allowed"))
        }
    };
    match policy.network.mode {
        NetMode::None if is_loopback(sa.ip()) => {
            allow("loopback, inside the run's own network namespace".to_string())
        }
        NetMode::None => deny(
            ENETUNREACH,
            "network mode \"none\": only loopback is reachable".to_string(),
        ),
        NetMode::Filtered => match policy
            .network
            .allow
            .iter()
            .find(|a| a.matches(sa.ip(), sa.port()))
        {
            Some(_) => allow(format!("{sa} is in network.allow")),
            None => deny(ECONNREFUSED, format!("{sa} is not in network.allow")),
        },
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// The first of `grants` that `path` is at or below (whole components).
fn under<'g, G: AsRef<Path>>(path: &Path, grants: &'g [G]) -> Option<&'g Path> {
    grants
        .iter()
        .map(AsRef::as_ref)
        .find(|g| path.starts_with(g))
}

/// Absolute, without `.` or `..`: the only paths the defaults can judge.
fn normal(path: &Path) -> bool {
    let mut comps = path.components();
    comps.next() == Some(Component::RootDir) && comps.all(|c| matches!(c, Component::Normal(_)))
}

fn not_normal(path: &Path) -> String {
    format!(
        "{:?} is not an absolute, normalised path",
        path.display().to_string()
    )
}

#[cfg(test)]
mod tests;
