//! `agentctl policy explain P --exec CMD | --open PATH [--write] | --connect ADDR`: the policy's
//! decision on one event and how it came about (see `agentd_policy::explain`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};

use agentd_policy::{Event, Loader, OpenAccess, SockAddr};
use anyhow::{anyhow, Context, Result};

use super::{caller_vars, search_dirs, workspace_of, ExplainArgs};

pub fn run(args: &ExplainArgs) -> Result<i32> {
    let vars = caller_vars(workspace_of(args.workspace.as_deref())?)?;
    let loader = Loader::new(search_dirs(&args.policy_dirs, Path::new(&args.file)));
    let mut policy = loader.load(&args.file, &vars)?;
    let event = if let Some(cmd) = &args.exec {
        let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        let first = argv
            .first()
            .ok_or_else(|| anyhow!("--exec needs a command"))?;
        Event::Exec {
            path: program(first)?,
            argv,
        }
    } else if let Some(path) = &args.open {
        let access = if args.write {
            OpenAccess::Write
        } else {
            OpenAccess::Read
        };
        Event::Open {
            path: lexical(&std::path::absolute(path)?),
            access,
        }
    } else if let Some(addr) = &args.connect {
        let (addr, resolved) = sock_addr(addr)?;
        if let Some((name, ips)) = resolved {
            policy = policy.with_resolved(&HashMap::from([(name, ips)]));
        }
        Event::Connect { addr }
    } else {
        return Err(anyhow!("give one of --exec, --open or --connect"));
    };
    print!("{}", agentd_policy::explain(&policy, &event));
    Ok(0)
}

/// The program of a command: an absolute path as is, else found in PATH; symlinks resolved,
/// as the monitor sees them.
fn program(name: &str) -> Result<PathBuf> {
    let path = if name.contains('/') {
        std::path::absolute(name)?
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("{name} not found in PATH; give its absolute path"))?
    };
    Ok(path.canonicalize().unwrap_or(path))
}

/// `.` and `..` removed without touching the filesystem.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

type Resolved = Option<(String, Vec<IpAddr>)>;

/// An address as the monitor would see it; a host name is resolved here, and the policy's
/// rules for that name are given the same addresses.
fn sock_addr(s: &str) -> Result<(SockAddr, Resolved)> {
    if s.starts_with('/') {
        return Ok((SockAddr::Unix(PathBuf::from(s)), None));
    }
    if let Some(name) = s.strip_prefix('@') {
        return Ok((SockAddr::Abstract(name.to_string()), None));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((SockAddr::Inet(sa), None));
    }
    let (host, _) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("invalid address {s}: write IP:PORT, HOST:PORT, /path or @name"))?;
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {s}"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| anyhow!("{host} resolves to no address"))?;
    let ips = addrs.iter().map(SocketAddr::ip).collect();
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    Ok((SockAddr::Inet(first), Some((name, ips))))
}
