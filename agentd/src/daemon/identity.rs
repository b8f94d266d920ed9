//! Who is calling, and reading the caller's files as the caller.
//!
//! Identity comes from the socket (`SO_PEERCRED`, `SO_PEERGROUPS`), never from a request.
//! Everything the daemon reads on a caller's behalf (a policy path, the workspace) is read from a
//! short-lived thread that has taken the caller's filesystem identity, so root's privileges
//! never let a caller see a file they could not read themselves.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use agentd_policy::{Loader, Policy, Vars};
use agentd_proto::{ErrorBody, ErrorCode};
use tokio::net::UnixStream;

use crate::sys::{creds, peercred};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub pid: Option<i32>,
}

pub fn caller_of(stream: &UnixStream) -> std::io::Result<Caller> {
    let cred = stream.peer_cred()?;
    let groups = peercred::peer_groups(stream.as_fd())?;
    Ok(Caller {
        uid: cred.uid(),
        gid: cred.gid(),
        groups,
        pid: cred.pid(),
    })
}

/// Whether the peer process lives inside a run: its cgroup is `…/<parent>/<id>` (or
/// `…/runs/<id>`) for a run `is_run` knows, or its pid namespace is one of `run_pid_namespaces`.
/// Fails closed: a peer whose process cannot be examined counts as inside.
pub fn is_inside_a_run(
    caller: &Caller,
    parent: &str,
    is_run: impl Fn(&str) -> bool,
    run_pid_namespaces: &[String],
) -> bool {
    let Some(pid) = caller.pid.filter(|p| *p > 0) else {
        return true;
    };
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return true;
    };
    let in_run_cgroup = text.lines().any(|line| {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        parts
            .windows(2)
            .any(|w| (w[0] == parent || w[0] == "runs") && is_run(w[1]))
    });
    if in_run_cgroup {
        return true;
    }
    match pid_namespace(pid) {
        Some(ns) => run_pid_namespaces.contains(&ns),
        None => true,
    }
}

/// The pid namespace of `pid` (`pid:[inode]`).
pub fn pid_namespace(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.display().to_string())
}

/// The caller's home and name: from their environment if given (it is theirs to choose: the
/// kernel still checks every access as their uid), else from the passwd database.
pub fn vars_for(caller: &Caller, env: &[(String, String)], workspace: PathBuf) -> Vars {
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let pw = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller.uid))
        .ok()
        .flatten();
    let home = get("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .or_else(|| pw.as_ref().map(|p| p.dir.clone()))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    let user = get("USER")
        .filter(|u| !u.is_empty())
        .or_else(|| pw.as_ref().map(|p| p.name.clone()))
        .unwrap_or_else(|| caller.uid.to_string());
    Vars {
        home,
        workspace,
        user,
    }
}

/// Checks the workspace and loads the policy, both with the caller's filesystem identity.
pub async fn load_policy(
    caller: &Caller,
    loader: Loader,
    name: String,
    env: Vec<(String, String)>,
    workspace: PathBuf,
) -> Result<(Policy, Vars), ErrorBody> {
    let caller = caller.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A dedicated thread, not the blocking pool: credentials are per thread and this thread
    // ends right after.
    std::thread::spawn(move || {
        let _ = tx.send(load_as(&caller, &loader, &name, &env, workspace));
    });
    rx.await.unwrap_or_else(|_| {
        Err(ErrorBody::new(
            ErrorCode::Internal,
            "policy loader thread died",
        ))
    })
}

fn load_as(
    caller: &Caller,
    loader: &Loader,
    name: &str,
    env: &[(String, String)],
    workspace: PathBuf,
) -> Result<(Policy, Vars), ErrorBody> {
    creds::assume_fs_identity(caller.uid, caller.gid, &caller.groups).map_err(|e| {
        ErrorBody::new(
            ErrorCode::Internal,
            format!("cannot take the caller's identity: {e}"),
        )
    })?;
    let workspace = check_workspace(&workspace)?;
    let vars = vars_for(caller, env, workspace);
    let policy = loader.load(name, &vars).map_err(|e| {
        let body = ErrorBody::new(ErrorCode::InvalidPolicy, format!("invalid policy: {e}"));
        match e.hint() {
            Some(h) => body.with_hint(h),
            None => body.with_hint("check it with `agentctl policy check FILE`"),
        }
    })?;
    Ok((policy, vars))
}

fn check_workspace(ws: &Path) -> Result<PathBuf, ErrorBody> {
    let bad = |m: String| {
        ErrorBody::new(ErrorCode::InvalidRequest, m)
            .with_hint("pass an existing directory you own with --workspace")
    };
    if !ws.is_absolute() {
        return Err(bad(format!(
            "workspace {} is not an absolute path",
            ws.display()
        )));
    }
    let canon = std::fs::canonicalize(ws).map_err(|e| {
        bad(format!(
            "workspace {} does not exist or is not reachable: {e}",
            ws.display()
        ))
    })?;
    if !canon.is_dir() {
        return Err(bad(format!(
            "workspace {} is not a directory",
            ws.display()
        )));
    }
    Ok(canon)
}
