//! One run from request to exit: check the stdio fds, load the policy as the caller, create the
//! cgroup, plan, launch, then supervise (wall-clock limit, client gone = kill) until it ends,
//! and record each state change in `<state-dir>/runs/<id>/state.json` (written atomically).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;

use nix::sys::stat::SFlag;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentd_policy::{Loader, Policy};
use agentd_proto::{
    ErrorBody, ErrorCode, ExitStatus, Response, RunInfo, RunRequest, RunState, Stdio,
};
use tokio::time::{sleep_until, timeout, Instant};

use super::conn::{Conn, Incoming};
use super::identity::{self, Caller};
use super::registry::RunEntry;
use super::{control, State};
use crate::audit::{AuditHandle, AuditLog, Body, Entry, Kind};
use crate::launch::plan::{plan, PlanInput};
use crate::launch::spec::Identity;
use crate::launch::{self, HelperEvent};
use crate::monitor::{Monitor, PolicyCell, RunContext};

/// How long building a sandbox may take before the run is abandoned.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a dead run's last tasks to leave its cgroup.
const CLEANUP_PATIENCE: Duration = Duration::from_secs(5);
/// Records a run's monitor may queue before it waits for the disk.
const AUDIT_QUEUE: usize = 65_536;
/// How often host names in a policy are resolved again.
const HOST_TTL: Duration = Duration::from_secs(60);
const PTY_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

fn err(code: ErrorCode, msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, msg)
}

pub async fn handle_run(state: Arc<State>, mut conn: Conn, caller: Caller, req: RunRequest) {
    let fds = conn.take_fds();
    let prepared = match prepare(&state, &caller, &req, fds).await {
        Ok(p) => p,
        Err(body) => {
            tracing::info!(uid = caller.uid, error = %body.message, "run refused");
            let _ = conn.send_error(body).await;
            return;
        }
    };
    supervise(state, conn, prepared).await;
}

struct Prepared {
    entry: Arc<RunEntry>,
    policy: Arc<PolicyCell>,
    launched: launch::Launched,
    audit: AuditHandle,
    caller: Caller,
    user: String,
    /// Subscribed before the agent may run, so `--json-events` sees every record.
    events: Option<tokio::sync::broadcast::Receiver<std::sync::Arc<str>>>,
}

async fn prepare(
    state: &Arc<State>,
    caller: &Caller,
    req: &RunRequest,
    fds: Vec<OwnedFd>,
) -> Result<Prepared, ErrorBody> {
    let stdio = check_stdio(req.stdio, fds)?;
    if req.argv.is_empty() {
        return Err(err(ErrorCode::InvalidRequest, "no command given")
            .with_hint("agentctl run -- COMMAND [ARGS...]"));
    }
    let loader = Loader::new(state.config.policy_dirs.clone());
    let name = req.policy.clone().unwrap_or_else(|| "default".into());
    let name = absolutize(&name, &req.cwd);
    let (policy, vars) = identity::load_policy(
        caller,
        loader,
        name,
        req.env.clone(),
        PathBuf::from(&req.workspace),
    )
    .await?;
    let id = new_run_id(state);
    let limits = policy.resources;
    let cgroup = state.cgroups.create(&id, &limits).map_err(|e| {
        err(
            ErrorCode::Unsupported,
            format!("cannot create the run's cgroup: {e}"),
        )
    })?;
    let run_dir = state.runs_dir().join(&id);
    let staging = run_dir.join("root");
    let cleanup_cg = |cg: &crate::launch::cgroup::RunCgroup| {
        let _ = cg.remove(Duration::ZERO);
    };
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&staging)
    {
        cleanup_cg(&cgroup);
        return Err(err(
            ErrorCode::Internal,
            format!("cannot create {}: {e}", staging.display()),
        ));
    }
    let spec = plan(PlanInput {
        run_id: &id,
        policy: &policy,
        identity: Identity {
            uid: caller.uid,
            gid: caller.gid,
            groups: caller.groups.clone(),
        },
        argv: req.argv.clone(),
        caller_env: &req.env,
        cwd: PathBuf::from(&req.cwd),
        workspace: vars.workspace.clone(),
        tty: req.stdio == Stdio::Pty,
        staging,
        cgroup_procs: cgroup.procs_files(),
    })
    .map_err(|e| {
        cleanup_cg(&cgroup);
        err(ErrorCode::InvalidPolicy, e.to_string())
    })?;
    let info = RunInfo {
        id: id.clone(),
        uid: caller.uid,
        state: RunState::Starting,
        argv: req.argv.clone(),
        workspace: vars.workspace.display().to_string(),
        policy: policy.name.clone(),
        started_at: now(),
        pid: None,
        exit: None,
        paused_since: None,
        detail: None,
    };
    let policy_toml = policy.to_toml();
    let audit = match AuditLog::open(&run_dir.join("audit.jsonl"), &id, AUDIT_QUEUE) {
        Ok(a) => a,
        Err(e) => {
            cleanup_cg(&cgroup);
            return Err(err(
                ErrorCode::Internal,
                format!("cannot open the run's audit log: {e}"),
            ));
        }
    };
    let start = Entry {
        kind: Kind::RunStart,
        body: Body {
            uid: Some(caller.uid),
            user: Some(vars.user.clone()),
            argv: Some(req.argv.clone()),
            workspace: Some(vars.workspace.display().to_string()),
            policy_digest: Some(sha256_hex(policy_toml.as_bytes())),
            message: Some(format!("policy {}", policy.name)),
            ..Body::default()
        },
    };
    if audit.record(start).is_err() {
        cleanup_cg(&cgroup);
        return Err(err(ErrorCode::Internal, "cannot write the run's audit log"));
    }
    let entry = Arc::new(RunEntry::new(info, cgroup, policy_toml));
    state.registry.insert(entry.clone());
    write_state(&run_dir, &entry.info());
    let policy = resolve_hosts(policy).await;
    let launched = match launch::spawn(&spec, stdio).await {
        Ok(l) => l,
        Err(e) => {
            let status = ExitStatus::Killed {
                reason: e.to_string(),
            };
            finish(state, &entry, status, Some(audit)).await;
            return Err(err(
                ErrorCode::Internal,
                format!("cannot start the launcher: {e}"),
            ));
        }
    };
    tracing::info!(run = %id, uid = caller.uid, policy = %policy.name, argv = ?req.argv, "run launching");
    Ok(Prepared {
        entry,
        policy: PolicyCell::new(policy),
        launched,
        caller: caller.clone(),
        user: vars.user,
        events: req.json_events.then(|| audit.subscribe()),
        audit,
    })
}

/// Relative policy paths are the caller's, relative to their working directory.
fn absolutize(name: &str, cwd: &str) -> String {
    if name.contains('/') && !name.starts_with('/') {
        Path::new(cwd).join(name).display().to_string()
    } else {
        name.to_string()
    }
}

/// The agent's stdio must be what agentctl sends: one pty slave, or three pipes.
fn check_stdio(stdio: Stdio, fds: Vec<OwnedFd>) -> Result<[OwnedFd; 3], ErrorBody> {
    let bad = |m: &str| err(ErrorCode::InvalidRequest, m.to_string()).with_hint("use agentctl run");
    if fds.len() != stdio.fd_count() {
        return Err(bad(&format!(
            "expected {} file descriptors with the run request, got {}",
            stdio.fd_count(),
            fds.len()
        )));
    }
    for fd in &fds {
        let st =
            nix::sys::stat::fstat(fd.as_fd()).map_err(|_| bad("unreadable file descriptor"))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let ok = match stdio {
            Stdio::Pty => {
                kind == SFlag::S_IFCHR && PTY_MAJORS.contains(&nix::sys::stat::major(st.st_rdev))
            }
            Stdio::Pipes => kind == SFlag::S_IFIFO,
        };
        if !ok {
            return Err(bad("the run's stdio must be a pty slave or pipes"));
        }
    }
    match stdio {
        Stdio::Pty => {
            let slave = fds.into_iter().next().ok_or_else(|| bad("missing pty"))?;
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| err(ErrorCode::Internal, format!("dup: {e}")))
            };
            Ok([dup(&slave)?, dup(&slave)?, slave])
        }
        Stdio::Pipes => {
            let mut it = fds.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(i), Some(o), Some(e)) => Ok([i, o, e]),
                _ => Err(bad("missing pipes")),
            }
        }
    }
}

/// A short random run id (8 hex digits), unique among known runs.
fn new_run_id(state: &State) -> String {
    loop {
        let mut b = [0u8; 4];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = std::io::Read::read_exact(&mut f, &mut b);
        }
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if !state.registry.contains(&id) && !state.runs_dir().join(&id).exists() {
            return id;
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `state.json` atomically (temp file + rename).
fn write_state(run_dir: &Path, info: &RunInfo) {
    let tmp = run_dir.join("state.json.tmp");
    let res = serde_json::to_vec_pretty(info)
        .map_err(std::io::Error::other)
        .and_then(|data| std::fs::write(&tmp, data))
        .and_then(|()| std::fs::rename(&tmp, run_dir.join("state.json")));
    if let Err(e) = res {
        tracing::warn!(run = %info.id, error = %e, "cannot write run state");
    }
}

async fn supervise(state: Arc<State>, mut conn: Conn, p: Prepared) {
    let Prepared {
        entry,
        policy,
        mut launched,
        audit,
        caller,
        user,
        mut events,
    } = p;
    let mut monitor = None;
    let started = loop {
        let ev = timeout(LAUNCH_TIMEOUT, launched.next_event()).await;
        match ev {
            Ok(Some((HelperEvent::Listener { agent_pid }, mut fds))) => {
                let ctx = RunContext {
                    run_id: entry.id.clone(),
                    uid: caller.uid,
                    gid: caller.gid,
                    groups: caller.groups.clone(),
                    user: user.clone(),
                    agent_pid,
                    policy: policy.clone(),
                    cgroup: entry.cgroup.clone(),
                    audit: audit.clone(),
                    run: entry.clone(),
                    approvals: state.approvals.clone(),
                };
                let started = match fds.pop() {
                    Some(listener) => Monitor::new(ctx, listener).and_then(Monitor::spawn),
                    None => Err(std::io::Error::other("no listener came with the event")),
                };
                match started {
                    Ok(handle) => monitor = Some(handle),
                    Err(e) => break Err(format!("cannot start the reference monitor: {e}")),
                }
            }
            Ok(Some((HelperEvent::Started { agent_pid, .. }, _))) if monitor.is_some() => {
                break Ok(agent_pid)
            }
            Ok(Some((HelperEvent::ExecFailed { errno, message }, _))) => {
                let status = ExitStatus::ExecFailed { errno, message };
                finish(&state, &entry, status.clone(), Some(audit)).await;
                let _ = conn
                    .send(&Response::Exited {
                        run: entry.id.clone(),
                        status,
                    })
                    .await;
                let _ = launched.child.wait().await;
                return;
            }
            Ok(Some((HelperEvent::SetupFailed { message }, _))) => break Err(message),
            Ok(Some((HelperEvent::Started { .. }, _))) => {
                break Err("the run started without its monitor".into())
            }
            Ok(Some((HelperEvent::Exited { .. }, _))) => {
                break Err("the run ended before it started".into())
            }
            Err(_) => {
                break Err(format!(
                    "building the sandbox took longer than {}s",
                    LAUNCH_TIMEOUT.as_secs()
                ))
            }
            Ok(None) => break Err("the launcher exited unexpectedly".into()),
        }
    };
    let agent_pid = match started {
        Ok(pid) => pid,
        Err(message) => {
            entry.kill("launch failed");
            let _ = launched.child.kill().await;
            finish(
                &state,
                &entry,
                ExitStatus::Killed {
                    reason: message.clone(),
                },
                Some(audit),
            )
            .await;
            let code = if message.starts_with("landlock") {
                ErrorCode::Unsupported
            } else {
                ErrorCode::InvalidRequest
            };
            let _ = conn
                .send_error(err(code, format!("cannot start the run: {message}")))
                .await;
            return;
        }
    };
    entry.update(|i| {
        i.state = RunState::Running;
        i.pid = Some(agent_pid);
    });
    write_state(&state.runs_dir().join(&entry.id), &entry.info());
    let started = Response::Started {
        run: entry.id.clone(),
        policy: policy.get().name.clone(),
        pid: agent_pid,
    };
    if conn.send(&started).await.is_err() {
        entry.kill("agentctl disconnected");
    }
    state.approvals.publish(control::event("started", &entry));
    // A monitor that stops while the run lives leaves it answered by ENOSYS only: kill it.
    let mut monitor_done = match monitor.take() {
        Some(handle) => tokio::task::spawn_blocking(move || handle.join()),
        None => tokio::task::spawn_blocking(|| Ok(true)),
    };
    let mut monitor_live = true;
    let refresh = tokio::spawn(refresh_hosts(policy.clone()));
    let wall = policy.get().resources.wall;
    let run_start = Instant::now().into_std();
    let mut client = true;
    let mut wall_fired = false;
    let status = loop {
        tokio::select! {
            ev = launched.next_event() => match ev {
                Some((HelperEvent::Exited { status }, _)) => break status,
                Some(_) => continue,
                None => {
                    entry.kill("the launcher died");
                    break ExitStatus::Killed { reason: "the launcher died".into() };
                }
            },
            done = &mut monitor_done, if monitor_live => {
                monitor_live = false;
                // Stopping because the run's last task is gone is the normal end.
                if !matches!(done, Ok(Ok(true))) {
                    tracing::error!(run = %entry.id, "the reference monitor stopped; killing the run");
                    entry.kill("the reference monitor stopped");
                }
            }
            inc = conn.read(), if client => match inc {
                Ok(Incoming::Closed) | Err(_) => {
                    client = false;
                    entry.kill("agentctl disconnected");
                }
                Ok(_) => {
                    let _ = conn.take_fds();
                }
            },
            line = async { match events.as_mut() { Some(rx) => rx.recv().await.ok(), None => None } }, if client && events.is_some() => {
                if let Some(record) = line.and_then(|l| serde_json::from_str(&l).ok()) {
                    if conn.send(&Response::Event { record }).await.is_err() {
                        client = false;
                        entry.kill("agentctl disconnected");
                    }
                }
            }
            // The wall clock does not tick while the run is paused: the deadline is recomputed
            // (paused time added) each time this wakes; while paused it checks again shortly.
            _ = wall_tick(&entry, run_start, wall), if wall.is_some() && !wall_fired => {
                let w = wall.unwrap_or_default();
                if entry.wall_deadline(run_start, w).is_some_and(|d| d <= std::time::Instant::now()) {
                    wall_fired = true;
                    entry.kill(&format!("wall-clock limit of {}s reached", w.as_secs()));
                }
            }
        }
    };
    refresh.abort();
    let status = entry.final_status(status);
    // finish() writes run_end and waits until every queued record is written (and broadcast).
    finish(&state, &entry, status.clone(), Some(audit)).await;
    state.approvals.cancel_run(&entry.id);
    let mut exited = control::event("exited", &entry);
    exited.exit = Some(status.clone());
    state.approvals.publish(exited);
    if let (true, Some(rx)) = (client, events.as_mut()) {
        while let Ok(line) = rx.try_recv() {
            if let Ok(record) = serde_json::from_str(&line) {
                let _ = conn.send(&Response::Event { record }).await;
            }
        }
    }
    if client {
        let _ = conn
            .send(&Response::Exited {
                run: entry.id.clone(),
                status,
            })
            .await;
    }
    let _ = launched.child.wait().await;
}

/// Sleeps until the run's wall-clock deadline (or a second, while it is paused).
async fn wall_tick(entry: &RunEntry, start: std::time::Instant, wall: Option<Duration>) {
    let Some(w) = wall else {
        return std::future::pending().await;
    };
    match entry.wall_deadline(start, w) {
        Some(d) => sleep_until(Instant::from_std(d)).await,
        None => tokio::time::sleep(Duration::from_secs(1)).await,
    }
}

/// Resolves the policy's host names (blocking resolver, off the runtime's threads).
async fn resolve_hosts(policy: Policy) -> Policy {
    let names = policy.hosts();
    if names.is_empty() {
        return policy;
    }
    let table = tokio::task::spawn_blocking(move || {
        use std::net::ToSocketAddrs;
        names
            .into_iter()
            .map(|n| {
                let ips = (n.as_str(), 0)
                    .to_socket_addrs()
                    .map(|it| it.map(|a| a.ip()).collect())
                    .unwrap_or_default();
                (n, ips)
            })
            .collect::<HashMap<String, Vec<std::net::IpAddr>>>()
    })
    .await
    .unwrap_or_default();
    policy.with_resolved(&table)
}

/// Re-resolves host names every [`HOST_TTL`] while the run lives.
async fn refresh_hosts(cell: Arc<PolicyCell>) {
    loop {
        tokio::time::sleep(HOST_TTL).await;
        let current = (*cell.get()).clone();
        if current.hosts().is_empty() {
            return;
        }
        cell.set(resolve_hosts(current).await);
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Records the end of a run and removes its cgroup and staging directory.
async fn finish(
    state: &State,
    entry: &Arc<RunEntry>,
    status: ExitStatus,
    audit: Option<AuditHandle>,
) {
    tracing::info!(run = %entry.id, status = ?status, "run ended");
    entry.update(|i| {
        i.state = RunState::Exited;
        i.exit = Some(status);
    });
    let run_dir = state.runs_dir().join(&entry.id);
    write_state(&run_dir, &entry.info());
    let usage = entry.cgroup.usage();
    if let Some(audit) = audit {
        let end = Entry {
            kind: Kind::RunEnd,
            body: Body {
                status: serde_json::to_value(entry.info().exit).ok(),
                usage: Some(serde_json::json!({
                    "cpu_seconds": usage.cpu_seconds,
                    "memory_peak_bytes": usage.memory_peak,
                })),
                ..Body::default()
            },
        };
        let _ = audit.record(end);
        let _ = tokio::task::spawn_blocking(move || audit.close()).await;
    }
    let cg = entry.cgroup.clone();
    let staging = run_dir.join("root");
    let id = entry.id.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = cg.remove(CLEANUP_PATIENCE) {
            tracing::warn!(run = %id, error = %e, "cannot remove the run's cgroup");
        }
        let _ = std::fs::remove_dir(&staging);
    })
    .await;
}

/// Kills and records runs a previous daemon left behind (it died or was killed): nothing runs
/// unsupervised. Each such run's audit log gets a `daemon_start` and a `run_end` (lost) record,
/// chained to what the previous daemon wrote.
pub async fn reap_leftovers(state: &State) {
    let mut ids = state.cgroups.existing_runs();
    // Runs whose state says live but whose cgroup is gone were lost too.
    if let Ok(dir) = std::fs::read_dir(state.runs_dir()) {
        for e in dir.flatten() {
            let Ok(id) = e.file_name().into_string() else {
                continue;
            };
            let live = read_state(&state.runs_dir().join(&id))
                .is_some_and(|i| matches!(i.state, RunState::Starting | RunState::Running));
            if live && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    for id in ids {
        let cg = state.cgroups.existing(&id);
        tracing::warn!(run = %id, "found a run left by a previous agentd: killing it");
        let _ = cg.kill();
        let run_dir = state.runs_dir().join(&id);
        if let Some(mut info) = read_state(&run_dir) {
            info.state = RunState::Lost;
            info.exit = Some(ExitStatus::Lost);
            write_state(&run_dir, &info);
            record_lost(&run_dir, &id).await;
            state
                .registry
                .insert(Arc::new(RunEntry::new(info, cg.clone(), String::new())));
        }
        let _ = tokio::task::spawn_blocking(move || cg.remove(CLEANUP_PATIENCE)).await;
        let _ = std::fs::remove_dir(run_dir.join("root"));
    }
}

fn read_state(run_dir: &Path) -> Option<RunInfo> {
    let bytes = std::fs::read(run_dir.join("state.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Appends the restart records to a lost run's audit log (continuing its chain).
async fn record_lost(run_dir: &Path, id: &str) {
    let path = run_dir.join("audit.jsonl");
    let id = id.to_string();
    let _ = tokio::task::spawn_blocking(move || {
        let log = AuditLog::open(&path, &id, 16)?;
        let note = |kind, message: &str| Entry {
            kind,
            body: Body {
                message: Some(message.to_string()),
                status: (kind == Kind::RunEnd).then(|| serde_json::json!({ "kind": "lost" })),
                ..Body::default()
            },
        };
        let _ = log.record(note(
            Kind::DaemonStart,
            "agentd restarted; the run was live and has been killed",
        ));
        let _ = log.record(note(
            Kind::RunEnd,
            "lost: agentd stopped while the run was live",
        ));
        log.close().map_err(std::io::Error::other)
    })
    .await;
}
