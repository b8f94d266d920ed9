//! The accept loop: one task per connection, bounded by a semaphore, stopped by `shutdown`.

use std::future::Future;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::Semaphore;

use super::{requests, State};

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 512;

pub async fn serve(listener: UnixListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
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
        let state = state.clone();
        tokio::spawn(async move {
            requests::serve_connection(state, stream).await;
            drop(permit);
        });
    }
}
