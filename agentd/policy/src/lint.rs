//! [`lint`]: warnings about a valid policy that probably does not say what its author meant.
//!
//! - a rule that can never match: an open rule whose path lies outside every grant and every
//!   implicit grant (the run's view never contains it), an exec rule outside every exec grant,
//!   a connect rule on a non-loopback address in network mode `"none"`;
//! - a grant that exposes a known secret location (`~/.ssh`, `~/.aws`, …) that is not hidden.
//!
//! Warnings never make a policy invalid: `agentctl policy check` prints them and still exits 0.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::compile::Origin;
use crate::decide::{IMPLICIT_RO_DIRS, IMPLICIT_RO_TREES, IMPLICIT_RW, IMPLICIT_TMP};
use crate::event::OpenAccess;
use crate::model::{in_net, AddrPattern, Matcher, NetMode, Policy, TmpMode, Vars};

/// Secret locations under `$HOME` a grant should not expose, and what they hold.
pub const HOME_SECRETS: [(&str, &str); 17] = [
    (".ssh", "SSH keys"),
    (".gnupg", "GnuPG keys"),
    (".aws", "AWS credentials"),
    (".config/gcloud", "Google Cloud credentials"),
    (".azure", "Azure credentials"),
    (".kube", "Kubernetes credentials"),
    (".docker/config.json", "container registry credentials"),
    (".netrc", "passwords for any host"),
    (".git-credentials", "git's credential store"),
    (".config/git/credentials", "git's credential store"),
    (".npmrc", "npm tokens"),
    (".pypirc", "PyPI tokens"),
    (".cargo/credentials", "the crates.io token"),
    (".cargo/credentials.toml", "the crates.io token"),
    (".config/gh", "the GitHub CLI token"),
    (".password-store", "pass(1) passwords"),
    (".local/share/keyrings", "the desktop keyring"),
];

/// One warning: where (`file:line`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub at: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// The warnings for `policy`; `origins` from [`crate::Loader::load_traced`] locate grants.
pub fn lint(policy: &Policy, origins: &[Origin], vars: &Vars) -> Vec<Warning> {
    let mut out = Vec::new();
    unreachable_rules(policy, &mut out);
    exposed_secrets(policy, origins, vars, &mut out);
    out
}

fn unreachable_rules(policy: &Policy, out: &mut Vec<Warning>) {
    let fs = &policy.filesystem;
    let mut writable: Vec<PathBuf> = fs.write.clone();
    writable.extend(IMPLICIT_RW.iter().map(PathBuf::from));
    if fs.tmp == TmpMode::Private {
        writable.extend(IMPLICIT_TMP.iter().map(PathBuf::from));
    }
    let mut visible = writable.clone();
    visible.extend(fs.read.iter().cloned());
    visible.extend(fs.exec.iter().cloned());
    visible.extend(IMPLICIT_RO_TREES.iter().map(PathBuf::from));
    // `/` and `/dev` are visible themselves, not what lies below them.
    let dirs: Vec<&Path> = IMPLICIT_RO_DIRS.iter().map(Path::new).collect();
    for r in &policy.rules {
        let message = match &r.matcher {
            Matcher::Open { path, access } => {
                let (grants, what, dirs) = match access {
                    Some(OpenAccess::Write) => (&writable, "write grant", &[][..]),
                    _ => (&visible, "grant", &dirs[..]),
                };
                let prefix = path.literal_prefix();
                if grants.iter().any(|g| overlaps(&prefix, g))
                    || dirs.iter().any(|d| d.starts_with(&prefix))
                {
                    continue;
                }
                format!(
                    "rule `{}` can never match: {} is outside every {what} and every implicit \
                     one, so the run's view never contains it",
                    r.id, path
                )
            }
            Matcher::Exec { path, .. } => {
                let prefix = path.literal_prefix();
                if fs.exec.iter().any(|g| overlaps(&prefix, g)) {
                    continue;
                }
                format!(
                    "rule `{}` can never match: {} is outside every exec grant",
                    r.id, path
                )
            }
            Matcher::Connect(a) => {
                if policy.network.mode != NetMode::None || reaches_loopback(a) {
                    continue;
                }
                format!(
                    "rule `{}` can never match: network mode \"none\" reaches only loopback",
                    r.id
                )
            }
        };
        out.push(Warning {
            at: r.source.clone(),
            message,
        });
    }
}

/// Whether one path is at or below the other (their trees share paths).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn reaches_loopback(a: &AddrPattern) -> bool {
    match a {
        AddrPattern::Net { addr, prefix, .. } => {
            let v4 = IpAddr::from([127, 0, 0, 0]);
            let v6 = IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
            in_net(*addr, (*prefix).min(8), v4) || in_net(*addr, *prefix, v6)
        }
        // A name may resolve to loopback; Unix and abstract sockets are not addresses.
        AddrPattern::Host { .. } | AddrPattern::Unix(_) | AddrPattern::Abstract(_) => true,
    }
}

fn exposed_secrets(policy: &Policy, origins: &[Origin], vars: &Vars, out: &mut Vec<Warning>) {
    let hidden = |p: &Path| policy.filesystem.hide.iter().any(|g| g.matches_or_below(p));
    for o in origins {
        for (rel, what) in HOME_SECRETS {
            let secret = vars.home.join(rel);
            // The grant covers the secret, or lies inside it.
            let exposed = if secret.starts_with(&o.path) {
                !hidden(&secret)
            } else if o.path.starts_with(&secret) {
                !hidden(&o.path)
            } else {
                false
            };
            if exposed {
                out.push(Warning {
                    at: format!("{}:{}", o.at.file.display(), o.at.line),
                    message: format!(
                        "{} grant {} exposes {} ({what}); add it to [filesystem] hide",
                        o.kind.key(),
                        o.path.display(),
                        secret.display()
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
