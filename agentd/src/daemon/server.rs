//! The accept loop: one task per connection, stopped by `shutdown`.
//!
//! Connections are always accepted, so a full daemon answers instead of leaving clients waiting
//! in the kernel's backlog: beyond [`MAX_CONNECTIONS`] in all, or [`MAX_PER_UID`] for one user,
//! a new connection gets a structured "too many connections" error and is closed. One user
//! holding idle connections can therefore never lock the others (or root) out.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use agentd_proto::{ErrorBody, ErrorCode, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::{requests, State};

/// Connections served at once, for everyone.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections served at once for one uid (root is not limited: it is how an admin gets in).
pub const MAX_PER_UID: usize = 128;

/// Open connections per uid.
#[derive(Default)]
struct PerUid(Mutex<HashMap<u32, usize>>);

impl PerUid {
    fn try_take(&self, uid: u32) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(uid).or_default();
        if uid != 0 && *n >= MAX_PER_UID {
            return false;
        }
        *n += 1;
        true
    }

    fn give_back(&self, uid: u32) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&uid);
            }
        }
    }
}

pub async fn serve(listener: UnixListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_uid = Arc::new(PerUid::default());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
        let root = uid == 0;
        // Root always gets a slot: an administrator must be able to act on a flooded daemon.
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if root => None,
            Err(_) => {
                tokio::spawn(refuse(stream, "agentd is serving too many connections"));
                continue;
            }
        };
        if !per_uid.try_take(uid) {
            tokio::spawn(refuse(
                stream,
                "you have too many connections open to agentd",
            ));
            continue;
        }
        let state = state.clone();
        let per_uid = per_uid.clone();
        tokio::spawn(async move {
            requests::serve_connection(state, stream).await;
            per_uid.give_back(uid);
            drop(permit);
        });
    }
}

/// Answers a connection the daemon will not serve, then closes it (bounded: never waits on a
/// client that does not read).
async fn refuse(mut stream: UnixStream, why: &str) {
    let body = ErrorBody::new(ErrorCode::InvalidRequest, format!("{why}; try again later"))
        .with_hint("close idle agentctl sessions (watch, events, pending --follow)");
    if let Ok(frame) = agentd_proto::codec::encode(&Response::Error(body)) {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&frame)).await;
    }
}
