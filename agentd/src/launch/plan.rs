//! Policy → launch spec: which trees the view holds with which rights, the Landlock rules that
//! mirror them, the network wall and the filtered environment. Pure: no I/O, tested below.
//!
//! Invariants: a nested grant never has fewer rights than the grant it sits in (the view mounts
//! it on top, so it must not hide rights the outer grant gave); `/` is never granted whole (the
//! view is a fresh root, not the host's); every Landlock rule names a path the view contains.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentd_policy::{Action, AddrPattern, Matcher, NetMode, Policy, TmpMode};

use super::spec::{Access, FilterSpec, Identity, LandlockRule, LandlockSpec, Spec, ViewEntry};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the policy grants `/` ({kind}); grant the directories the agent needs instead")]
    RootGranted { kind: &'static str },
    #[error("the command line is empty")]
    EmptyArgv,
}

/// What the daemon knows of one run request, beyond its policy.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub run_id: &'a str,
    pub policy: &'a Policy,
    pub identity: Identity,
    pub argv: Vec<String>,
    /// The caller's whole environment: the policy filters it.
    pub caller_env: &'a [(String, String)],
    pub cwd: PathBuf,
    pub workspace: PathBuf,
    pub tty: bool,
    pub staging: PathBuf,
    pub cgroup_procs: Vec<PathBuf>,
}

pub fn plan(input: PlanInput<'_>) -> Result<Spec, PlanError> {
    if input.argv.is_empty() {
        return Err(PlanError::EmptyArgv);
    }
    let fs = &input.policy.filesystem;
    let mut grants: BTreeMap<PathBuf, (bool, bool)> = BTreeMap::new();
    for (paths, kind, write, exec) in [
        (&fs.read, "read", false, false),
        (&fs.write, "write", true, false),
        (&fs.exec, "exec", false, true),
    ] {
        for p in paths {
            if p == Path::new("/") {
                return Err(PlanError::RootGranted { kind });
            }
            let e = grants.entry(p.clone()).or_default();
            e.0 |= write;
            e.1 |= exec;
        }
    }
    // A nested grant inherits the rights of every grant above it.
    let effective: Vec<(PathBuf, bool, bool)> = grants
        .keys()
        .map(|p| {
            let (w, x) = grants
                .iter()
                .filter(|(q, _)| p.starts_with(q))
                .fold((false, false), |acc, (_, r)| (acc.0 | r.0, acc.1 | r.1));
            (p.clone(), w, x)
        })
        .collect();

    let mut view: Vec<ViewEntry> = effective
        .iter()
        .map(|(path, write, exec)| ViewEntry::Bind {
            path: path.clone(),
            write: *write,
            exec: *exec,
        })
        .collect();
    if fs.tmp == TmpMode::Private {
        for t in ["/tmp", "/var/tmp"] {
            view.push(ViewEntry::Tmpfs { path: t.into() });
        }
    }
    view.sort_by(|a, b| {
        let depth = |p: &Path| p.components().count();
        (depth(a.path()), a.path()).cmp(&(depth(b.path()), b.path()))
    });

    let landlock = landlock_rules(&view, &input.policy.network.mode, input.policy, fs.tmp);
    let visible = |p: &Path| view.iter().any(|e| p.starts_with(e.path()));
    let cwd = if visible(&input.cwd) {
        input.cwd.clone()
    } else if visible(&input.workspace) {
        input.workspace.clone()
    } else {
        PathBuf::from("/")
    };
    let isolated = input.policy.network.mode == NetMode::None;
    Ok(Spec {
        run_id: input.run_id.to_string(),
        argv: input.argv,
        env: input.policy.env.filter(input.caller_env),
        cwd,
        identity: input.identity,
        tty: input.tty,
        staging: input.staging,
        view,
        hide: fs.hide.iter().map(|g| g.as_str().to_string()).collect(),
        isolate_network: isolated,
        landlock,
        filter: FilterSpec {
            deny_udp: !isolated,
        },
        cgroup_procs: input.cgroup_procs,
        hostname: format!("agentd-{}", input.run_id),
    })
}

fn landlock_rules(
    view: &[ViewEntry],
    mode: &NetMode,
    policy: &Policy,
    tmp: TmpMode,
) -> LandlockSpec {
    let mut rules = vec![
        LandlockRule {
            path: "/".into(),
            access: Access::ListDir,
        },
        LandlockRule {
            path: "/proc".into(),
            access: Access::Read,
        },
    ];
    // The devices the policy grants every run (agentd_policy::IMPLICIT_RW), read-write with
    // ioctl. /dev/ptmx is a symlink to pts/ptmx in the view: /dev/pts covers it.
    rules.extend(
        agentd_policy::IMPLICIT_RW
            .iter()
            .filter(|d| **d != "/dev/ptmx")
            .map(|d| LandlockRule {
                path: (*d).into(),
                access: Access::Device,
            }),
    );
    if tmp == TmpMode::Private {
        rules.push(LandlockRule {
            path: "/dev/shm".into(),
            access: Access::ReadWrite,
        });
    }
    rules.extend(view.iter().map(|e| match e {
        ViewEntry::Bind { path, write, exec } => LandlockRule {
            path: path.clone(),
            access: match (write, exec) {
                (false, false) => Access::Read,
                (false, true) => Access::ReadExec,
                (true, false) => Access::ReadWrite,
                (true, true) => Access::ReadWriteExec,
            },
        },
        ViewEntry::Tmpfs { path } => LandlockRule {
            path: path.clone(),
            access: Access::ReadWrite,
        },
    }));
    let tcp_connect_ports = match mode {
        NetMode::None => None,
        NetMode::Filtered => filtered_ports(policy),
    };
    LandlockSpec {
        rules,
        tcp_connect_ports,
    }
}

/// The TCP ports Landlock lets the agent connect to in filtered mode: those of `network.allow`
/// and of every connect rule that allows. An allow rule for any port cannot be expressed by
/// Landlock: then it does not handle TCP connect, and the monitor (which emulates every IP
/// connect in filtered mode) is the wall for ports too.
fn filtered_ports(policy: &Policy) -> Option<Vec<u16>> {
    let mut ports: Vec<u16> = policy.network.allow.iter().map(|a| a.port).collect();
    for rule in &policy.rules {
        let (Action::Allow, Matcher::Connect(pattern)) = (&rule.action, &rule.matcher) else {
            continue;
        };
        match pattern {
            AddrPattern::Net { port, .. } | AddrPattern::Host { port, .. } => ports.push((*port)?),
            AddrPattern::Unix(_) | AddrPattern::Abstract(_) => {}
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Some(ports)
}

#[cfg(test)]
mod tests;
