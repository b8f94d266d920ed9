//! Serving one connection: decode each frame, check authority, answer. A malformed or
//! oversized frame gets a structured error and the connection (and the daemon) carries on.

use std::sync::Arc;

use agentd_proto::codec::decode_request;
use agentd_proto::{ErrorBody, ErrorCode, Request, Response, RunDetail};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::UnixStream;

use super::conn::{Conn, Incoming};
use super::identity::{self, Caller};
use super::registry::Asker;
use super::{runs, State};

pub async fn serve_connection(state: Arc<State>, stream: UnixStream) {
    let caller = match identity::caller_of(&stream) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; dropping connection");
            return;
        }
    };
    let inside = identity::is_inside_a_run(&caller, |id| state.registry.contains(id));
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
    let asker = Asker { uid: caller.uid };
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
        Request::Kill { run } => state.registry.find(&run, asker).and_then(|entry| {
            if !entry.is_live() {
                return Err(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("run {} has already ended", entry.id),
                ));
            }
            tracing::info!(run = %entry.id, by = caller.uid, "kill requested");
            entry.kill(&format!("killed by uid {}", caller.uid));
            Ok(Response::Ok)
        }),
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
        Request::Run(_) => Err(ErrorBody::new(ErrorCode::Internal, "run handled elsewhere")),
    };
    result.unwrap_or_else(Response::Error)
}
