//! The human's verbs on a live run: pause, resume, kill (with a signal), approve, deny, and the
//! `pending` / `events` feeds. Authority is checked by the caller ([`Asker`]); requests from
//! inside any run never reach this module (refused in `requests`).

use std::time::{Duration, Instant};

use agentd_proto::{ApprovalScope, DaemonEvent, ErrorBody, ErrorCode, Response};
use nix::sys::signal::Signal;

use super::approvals::{now_ms, Answer};
use super::conn::{Conn, Incoming};
use super::registry::{Asker, RunEntry};
use super::State;

fn failed(what: &str, run: &str, e: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, format!("cannot {what} run {run}: {e}"))
}

fn not_live(entry: &RunEntry) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::InvalidRequest,
        format!("run {} has already ended", entry.id),
    )
}

pub fn event(kind: &str, entry: &RunEntry) -> DaemonEvent {
    DaemonEvent {
        kind: kind.into(),
        run: entry.id.clone(),
        uid: entry.owner,
        at_ms: now_ms(),
        pending: None,
        decision: None,
        by: None,
        exit: None,
    }
}

pub fn pause(state: &State, run: &str, asker: Asker) -> Result<Response, ErrorBody> {
    let entry = state.registry.find(run, asker)?;
    if !entry.is_live() {
        return Err(not_live(&entry));
    }
    let froze = entry.pause().map_err(|e| failed("pause", &entry.id, e))?;
    tracing::info!(run = %entry.id, by = asker.uid, "paused");
    if froze {
        let mut ev = event("paused", &entry);
        ev.by = Some(format!("uid:{}", asker.uid));
        state.approvals.publish(ev);
    }
    Ok(Response::Ok)
}

pub fn resume(state: &State, run: &str, asker: Asker) -> Result<Response, ErrorBody> {
    let entry = state.registry.find(run, asker)?;
    if !entry.is_live() {
        return Err(not_live(&entry));
    }
    let thawed = entry
        .resume(true)
        .map_err(|e| failed("resume", &entry.id, e))?;
    tracing::info!(run = %entry.id, by = asker.uid, "resumed");
    if thawed {
        let mut ev = event("resumed", &entry);
        ev.by = Some(format!("uid:{}", asker.uid));
        state.approvals.publish(ev);
    }
    Ok(Response::Ok)
}

pub fn kill(
    state: &State,
    run: &str,
    signal: Option<i32>,
    asker: Asker,
) -> Result<Response, ErrorBody> {
    let entry = state.registry.find(run, asker)?;
    if !entry.is_live() {
        return Err(not_live(&entry));
    }
    tracing::info!(run = %entry.id, by = asker.uid, ?signal, "kill requested");
    match signal {
        None | Some(9) => entry.kill(&format!("killed by uid {}", asker.uid)),
        Some(n) => {
            let sig = Signal::try_from(n).map_err(|_| {
                ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("{n} is not a signal number"),
                )
            })?;
            entry
                .cgroup
                .signal_all(sig)
                .map_err(|e| failed("signal", &entry.id, e.to_string()))?;
        }
    }
    Ok(Response::Ok)
}

pub fn approve(
    state: &State,
    id: &str,
    scope: ApprovalScope,
    asker: Asker,
) -> Result<Response, ErrorBody> {
    let answer = Answer::Allow {
        scope,
        by: asker.uid,
    };
    let req = state.approvals.answer(id, asker, answer)?;
    tracing::info!(request = %req.id, run = %req.run, by = asker.uid, ?scope, "approved");
    if scope != ApprovalScope::Once {
        if let Ok(entry) = state.registry.find(&req.run, asker) {
            let until = match scope {
                ApprovalScope::For { seconds } => {
                    Some(Instant::now() + Duration::from_secs(seconds))
                }
                _ => None,
            };
            entry.add_grant(super::registry::TempGrant {
                rule: req.rule.clone(),
                kind: req.kind.clone(),
                key: req.key.clone(),
                until,
                by: asker.uid,
            });
        }
    }
    Ok(Response::Ok)
}

pub fn deny(
    state: &State,
    id: &str,
    errno: Option<i32>,
    asker: Asker,
) -> Result<Response, ErrorBody> {
    if errno.is_some_and(|e| !(1..=4095).contains(&e)) {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "errno must be between 1 and 4095",
        ));
    }
    let req = state.approvals.answer(
        id,
        asker,
        Answer::Deny {
            errno,
            by: asker.uid,
        },
    )?;
    tracing::info!(request = %req.id, run = %req.run, by = asker.uid, "denied");
    Ok(Response::Ok)
}

/// Streams events the asker may see until the client goes away or falls behind.
/// `only`: restrict to these kinds (`pending --follow`).
pub async fn stream_events(
    state: &State,
    conn: &mut Conn,
    asker: Asker,
    only: Option<&[&str]>,
) -> std::io::Result<()> {
    let mut rx = state.approvals.subscribe();
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(event) => {
                    if !asker.may_act_on_uid(event.uid) || only.is_some_and(|k| !k.contains(&event.kind.as_str())) {
                        continue;
                    }
                    conn.send(&Response::DaemonEvent { event }).await?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let body = ErrorBody::new(ErrorCode::InvalidRequest, format!("too slow: {n} events were dropped; disconnecting"))
                        .with_hint("reconnect; `agentctl ps` and `agentctl pending` show the current state");
                    let _ = conn.send_error(body).await;
                    return Ok(());
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            inc = conn.read() => match inc {
                Ok(Incoming::Closed) | Err(_) => return Ok(()),
                Ok(_) => {
                    let _ = conn.take_fds();
                }
            },
        }
    }
}
