//! Serving one connection: decode each frame, check authority, answer. A malformed or
//! oversized frame gets a structured error and the connection (and the daemon) carries on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentd_proto::codec::decode_request;
use agentd_proto::{ErrorBody, ErrorCode, PendingRequest, Request, Response, RunDetail};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::UnixStream;

use super::conn::{Conn, Incoming};
use super::identity::{self, Caller};
use super::registry::{Asker, Registry, RunEntry};
use super::{control, runs, State};
use crate::audit::{self, Filter, Kind, Tail, VerifyError};

pub async fn serve_connection(state: Arc<State>, stream: UnixStream) {
    let caller = match identity::caller_of(&stream) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; dropping connection");
            return;
        }
    };
    let run_namespaces: Vec<String> = state
        .registry
        .live()
        .iter()
        .filter_map(|r| r.info().pid)
        .filter_map(identity::pid_namespace)
        .collect();
    let inside = identity::is_inside_a_run(
        &caller,
        &state.config.cgroup_parent,
        |id| state.registry.contains(id),
        &run_namespaces,
    );
    let mut conn = Conn::new(stream);
    loop {
        let frame = match conn.read().await {
            Ok(Incoming::Frame(f)) => f,
            Ok(Incoming::Bad(e)) => {
                let _ = conn.take_fds();
                if conn.send_error(e.to_body()).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Incoming::Closed) | Err(_) => return,
        };
        let req = match decode_request(&frame) {
            Ok(env) => env.req,
            Err(e) => {
                let _ = conn.take_fds();
                if conn.send_error(e.to_body()).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if inside {
            let _ = conn.take_fds();
            let body = ErrorBody::new(
                ErrorCode::PermissionDenied,
                "requests from inside a run are refused",
            )
            .with_hint("an agent may not control agentd");
            if conn.send_error(body).await.is_err() {
                return;
            }
            continue;
        }
        match req {
            Request::Run(run) => return runs::handle_run(state, conn, caller, run).await,
            Request::Audit {
                run,
                follow,
                kind,
                verdict,
                verify,
            } => {
                let _ = conn.take_fds();
                let query = AuditQuery {
                    run,
                    follow,
                    kind,
                    verdict,
                    verify,
                };
                if handle_audit(&state, &mut conn, &caller, query)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Request::Events => {
                let _ = conn.take_fds();
                let asker = state.asker(&caller);
                let _ = control::stream_events(&state, &mut conn, asker, None).await;
                return;
            }
            Request::Pending { follow } => {
                let _ = conn.take_fds();
                let asker = state.asker(&caller);
                let (requests, omitted) = fit_in_frame(state.approvals.list(asker));
                if conn
                    .send(&Response::Pending { requests, omitted })
                    .await
                    .is_err()
                    || !follow
                {
                    if follow {
                        return;
                    }
                    continue;
                }
                let _ =
                    control::stream_events(&state, &mut conn, asker, Some(&["pending", "decided"]))
                        .await;
                return;
            }
            other => {
                let _ = conn.take_fds();
                let resp = answer(&state, &caller, other);
                if conn.send(&resp).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Answers every request but `run`.
fn answer(state: &State, caller: &Caller, req: Request) -> Response {
    let asker = state.asker(caller);
    let result = match req {
        Request::Ps => Ok(Response::Runs {
            runs: state.registry.visible(asker),
        }),
        Request::Inspect { run } => state.registry.find(&run, asker).map(|entry| {
            let usage = entry.cgroup.usage();
            let mut info = entry.info();
            info.detail = Some(RunDetail {
                pids: if entry.is_live() {
                    entry.cgroup.pids()
                } else {
                    vec![]
                },
                cgroup: entry.cgroup.describe(),
                cpu_seconds: usage.cpu_seconds,
                memory_peak_bytes: usage.memory_peak,
                memory_current_bytes: usage.memory_current,
                policy_toml: entry.policy_toml.clone(),
            });
            Response::Run { run: info }
        }),
        Request::Kill { run, signal } => control::kill(state, &run, signal, asker),
        Request::Pause { run } => control::pause(state, &run, asker),
        Request::Resume { run } => control::resume(state, &run, asker),
        Request::Approve { id, scope } => control::approve(state, &id, scope, asker),
        Request::Deny { id, errno } => control::deny(state, &id, errno, asker),
        Request::Events | Request::Pending { .. } => {
            Err(ErrorBody::new(ErrorCode::Internal, "streamed elsewhere"))
        }
        Request::Signal { run, signal } => state.registry.find(&run, asker).and_then(|entry| {
            let sig = Signal::try_from(signal).map_err(|_| {
                ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("{signal} is not a signal number"),
                )
            })?;
            let pid = entry
                .info()
                .pid
                .filter(|_| entry.is_live())
                .ok_or_else(|| {
                    ErrorBody::new(
                        ErrorCode::InvalidRequest,
                        format!("run {} is not running", entry.id),
                    )
                })?;
            kill(Pid::from_raw(pid), sig)
                .map(|()| Response::Ok)
                .map_err(|e| {
                    ErrorBody::new(
                        ErrorCode::Internal,
                        format!("cannot signal run {}: {e}", entry.id),
                    )
                })
        }),
        Request::Run(_) | Request::Audit { .. } => Err(ErrorBody::new(
            ErrorCode::Internal,
            "request handled elsewhere",
        )),
    };
    result.unwrap_or_else(Response::Error)
}

/// The requests that fit in one frame, and how many did not: a list too long for one frame
/// would otherwise not be sent at all. Each run's most urgent request comes first, then the
/// others by urgency, so one run's many or large requests cannot crowd out every other run's;
/// a request that does not fit is skipped, not the end of the list. The result is in
/// `requests`' order (most urgent first).
fn fit_in_frame(requests: Vec<PendingRequest>) -> (Vec<PendingRequest>, u32) {
    let budget = agentd_proto::MAX_FRAME - 16 * 1024;
    let size = |r: &PendingRequest| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len() + 1);
    let mut seen_runs = std::collections::HashSet::new();
    let first: Vec<bool> = requests
        .iter()
        .map(|r| seen_runs.insert(r.run.as_str()))
        .collect();
    let firsts = (0..requests.len()).filter(|&i| first[i]);
    let rest = (0..requests.len()).filter(|&i| !first[i]);
    let mut used = 0usize;
    let mut take = vec![false; requests.len()];
    for i in firsts.chain(rest) {
        let s = size(&requests[i]);
        if used.saturating_add(s) <= budget {
            used += s;
            take[i] = true;
        }
    }
    let omitted = take.iter().filter(|t| !**t).count();
    let fitting = requests
        .into_iter()
        .zip(take)
        .filter_map(|(r, t)| t.then_some(r))
        .collect();
    (fitting, u32::try_from(omitted).unwrap_or(u32::MAX))
}

/// How often `audit --follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Polls without new data after a run ended before `--follow` stops waiting for `run_end`.
const FOLLOW_GRACE_POLLS: u32 = 10;
/// Bytes of records per `audit_records` frame (a single record may take up to `MAX_ONE`).
const CHUNK_BUDGET: usize = agentd_proto::MAX_FRAME / 4;
const MAX_ONE: usize = agentd_proto::MAX_FRAME - 4096;

struct AuditQuery {
    run: String,
    follow: bool,
    kind: Option<String>,
    verdict: Option<String>,
    verify: bool,
}

/// The run an audit request names (owner or root only), its log file, and the filter.
fn audit_target(
    registry: &Registry,
    runs_dir: &Path,
    asker: Asker,
    q: &AuditQuery,
) -> Result<(Arc<RunEntry>, PathBuf, Filter), ErrorBody> {
    let invalid =
        |m: String, hint: &str| ErrorBody::new(ErrorCode::InvalidRequest, m).with_hint(hint);
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| {
            invalid(
                format!("unknown record kind `{k}`"),
                "kinds: exec, open, connect, run_start, run_end, daemon_start, note",
            )
        })?),
    };
    if let Some(v) = q.verdict.as_deref() {
        if !["allow", "deny", "ask", "pause"].contains(&v) {
            return Err(invalid(
                format!("unknown verdict `{v}`"),
                "verdicts: allow, deny, ask, pause",
            ));
        }
    }
    let entry = registry.find(&q.run, asker)?;
    let path = runs_dir.join(&entry.id).join(audit::FILE_NAME);
    let filter = Filter {
        kind,
        verdict: q.verdict.clone(),
    };
    Ok((entry, path, filter))
}

/// Answers an `audit` request; `Err` only when the connection is gone.
async fn handle_audit(
    state: &Arc<State>,
    conn: &mut Conn,
    caller: &Caller,
    q: AuditQuery,
) -> io::Result<()> {
    let asker = state.asker(caller);
    let (entry, path, filter) = match audit_target(&state.registry, &state.runs_dir(), asker, &q) {
        Ok(t) => t,
        Err(body) => return conn.send_error(body).await,
    };
    if q.verify {
        let resp = match blocking(move || audit::verify(&path)).await {
            Ok(Ok(n)) => Response::AuditEnd { verified: Some(n) },
            Ok(Err(e)) => Response::Error(verify_error(&entry.id, e)),
            Err(e) => Response::Error(read_error(&entry.id, &e)),
        };
        return conn.send(&resp).await;
    }
    let mut tail: Option<Tail> = None;
    let mut idle_after_end = 0;
    loop {
        let live = entry.is_live();
        let (t, batch) = blocking({
            let path = path.clone();
            let filter = filter.clone();
            move || next_batch(tail, &path, &filter)
        })
        .await
        .unwrap_or_else(|e| (None, Err(e)));
        tail = t;
        let records = match batch {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound && q.follow && live => Vec::new(),
            Err(e) => return conn.send_error(read_error(&entry.id, &e)).await,
        };
        let fresh = !records.is_empty();
        for records in audit::reader::chunks(records, CHUNK_BUDGET, MAX_ONE) {
            conn.send(&Response::AuditRecords { records }).await?;
        }
        if !q.follow || tail.as_ref().is_some_and(|t| t.ended) {
            break;
        }
        if !live {
            idle_after_end = if fresh { 0 } else { idle_after_end + 1 };
            if idle_after_end >= FOLLOW_GRACE_POLLS {
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            inc = conn.read() => match inc {
                Ok(Incoming::Closed) | Err(_) => return Err(io::ErrorKind::BrokenPipe.into()),
                Ok(_) => { let _ = conn.take_fds(); }
            },
        }
    }
    conn.send(&Response::AuditEnd { verified: None }).await
}

/// Opens the log on first use, then reads what was appended since the last call.
fn next_batch(
    tail: Option<Tail>,
    path: &Path,
    filter: &Filter,
) -> (Option<Tail>, io::Result<Vec<serde_json::Value>>) {
    let mut tail = match tail {
        Some(t) => t,
        None => match Tail::open(path) {
            Ok(t) => t,
            Err(e) => return (None, Err(e)),
        },
    };
    let batch = tail.next_batch(filter);
    (Some(tail), batch)
}

/// Runs file I/O off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)
}

fn verify_error(run: &str, e: VerifyError) -> ErrorBody {
    match e {
        VerifyError::Broken { .. } => ErrorBody::new(
            ErrorCode::AuditBroken,
            format!("audit log of run {run} is broken: {e}"),
        )
        .with_hint("the file was changed after agentd wrote it; keep a copy for investigation"),
        VerifyError::Io { .. } => ErrorBody::new(ErrorCode::Internal, e.to_string()),
    }
}

fn read_error(run: &str, e: &io::Error) -> ErrorBody {
    if e.kind() == io::ErrorKind::NotFound {
        return ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("run {run} has no audit log"),
        )
        .with_hint("runs started before auditing was enabled have none");
    }
    ErrorBody::new(
        ErrorCode::Internal,
        format!("cannot read the audit log of run {run}: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_proto::{RunInfo, RunState};

    fn registry_with(id: &str, owner: u32) -> Registry {
        let r = Registry::default();
        r.insert(Arc::new(RunEntry::new(
            RunInfo {
                id: id.into(),
                uid: owner,
                state: RunState::Exited,
                argv: vec!["sh".into()],
                workspace: "/w".into(),
                policy: "default".into(),
                started_at: 1,
                pid: None,
                exit: None,
                paused_since: None,
                detail: None,
            },
            crate::launch::cgroup::RunCgroup {
                v2: None,
                v1: vec![],
                v2_limits: false,
            },
            String::new(),
        )));
        r
    }

    fn query(run: &str, kind: Option<&str>, verdict: Option<&str>) -> AuditQuery {
        AuditQuery {
            run: run.into(),
            follow: false,
            kind: kind.map(Into::into),
            verdict: verdict.map(Into::into),
            verify: false,
        }
    }

    #[test]
    fn audit_target_refuses_other_users_runs() {
        let r = registry_with("ab12cd34", 1000);
        let err = audit_target(
            &r,
            Path::new("/s/runs"),
            Asker {
                uid: 2000,
                admin: false,
            },
            &query("ab", None, None),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
    }

    #[test]
    fn audit_target_resolves_owner_and_root_to_the_runs_log() {
        let r = registry_with("ab12cd34", 1000);
        for uid in [1000, 0] {
            let q = query("ab1", Some("open"), Some("deny"));
            let (entry, path, filter) =
                audit_target(&r, Path::new("/s/runs"), Asker { uid, admin: false }, &q).unwrap();
            assert_eq!(entry.id, "ab12cd34");
            assert_eq!(path, Path::new("/s/runs/ab12cd34/audit.jsonl"));
            assert_eq!(filter.kind, Some(Kind::Open));
            assert_eq!(filter.verdict.as_deref(), Some("deny"));
        }
    }

    #[test]
    fn audit_target_rejects_unknown_kind_and_verdict() {
        let r = registry_with("ab12cd34", 1000);
        let me = Asker {
            uid: 1000,
            admin: false,
        };
        let runs = Path::new("/s/runs");
        let err = audit_target(&r, runs, me, &query("ab", Some("fork"), None)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains("fork"));
        let err = audit_target(&r, runs, me, &query("ab", None, Some("maybe"))).unwrap_err();
        assert!(err.message.contains("maybe"));
    }

    fn pending(id: &str, argv_len: usize) -> PendingRequest {
        PendingRequest {
            id: id.into(),
            run: "r1".into(),
            uid: 1000,
            kind: "exec".into(),
            target: "/bin/x".into(),
            argv: Some(vec!["\u{1}".repeat(argv_len)]),
            argv_hidden: 0,
            access: None,
            pid: 1,
            comm: "x".into(),
            rule: None,
            reason: "r".into(),
            pause: false,
            waiting: 1,
            deadline_ms: 0,
            key: String::new(),
        }
    }

    #[test]
    fn every_run_keeps_a_place_in_a_cut_pending_list() {
        // Run r1's 40 large requests are the most urgent; r2's small one comes last.
        let mut list: Vec<PendingRequest> =
            (0..40).map(|i| pending(&format!("a{i}"), 4096)).collect();
        let mut other = pending("b", 10);
        other.run = "r2".into();
        list.push(other);
        let (fit, omitted) = fit_in_frame(list);
        assert!(fit.iter().any(|p| p.id == "b"), "the other run is listed");
        assert_eq!(fit[0].id, "a0", "still most urgent first");
        assert!(omitted > 0);
        // A request too large for what is left is skipped, not the end of the list.
        let mut huge = pending("huge", 60_000);
        huge.run = "r3".into();
        let list = vec![pending("x", 10), huge, pending("y", 10)];
        let (fit, omitted) = fit_in_frame(list);
        let ids: Vec<&str> = fit.iter().map(|p| p.id.as_str()).collect();
        assert_eq!((ids, omitted), (vec!["x", "y"], 1));
    }

    #[test]
    fn a_pending_list_too_long_for_a_frame_is_cut_and_counted() {
        let few = vec![pending("a", 10), pending("b", 10)];
        assert_eq!(fit_in_frame(few).1, 0);
        // Control bytes take 6 bytes each in JSON: 100 requests of 4 KiB of them are ~2.4 MiB.
        let many: Vec<PendingRequest> = (0..100).map(|i| pending(&i.to_string(), 4096)).collect();
        let (fit, omitted) = fit_in_frame(many);
        assert!(
            !fit.is_empty() && fit[0].id == "0",
            "the most urgent come first"
        );
        assert_eq!(fit.len() + omitted as usize, 100);
        let frame = serde_json::to_vec(&Response::Pending {
            requests: fit,
            omitted,
        })
        .unwrap();
        assert!(frame.len() < agentd_proto::MAX_FRAME);
    }
}
