//! Calls held for a human (`ask`, `pause`). Until the approval side exists (agentctl
//! approve/deny), nobody can answer: each held call waits for the policy's approval timeout
//! and is then denied, recorded as decided by "timeout". A `pause` also freezes the whole run
//! for that time. At most [`MAX_HELD`] calls of a run wait at once; more are denied at once,
//! so an approval flood cannot exhaust the daemon.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agentd_policy::{Decision, Event, Verdict};

use crate::audit::AuditHandle;
use crate::launch::cgroup::RunCgroup;
use crate::sys::seccomp_notify::{self, Reply};

pub const MAX_HELD: usize = 32;

/// What to do when a held call is allowed.
pub type OnAllow = Box<dyn FnOnce(BorrowedFd<'_>, u64) -> Reply + Send>;

pub struct EntryCtx {
    pub uid: u32,
    pub user: String,
}

/// One held call.
pub struct Parked {
    pub id: u64,
    pub tid: i32,
    pub event: Event,
    pub decision: Decision,
    pub pause: bool,
    pub on_allow: OnAllow,
    pub audit: AuditHandle,
    pub entry_ctx: EntryCtx,
}

pub struct Held {
    listener: Arc<OwnedFd>,
    cgroup: RunCgroup,
    timeout: Duration,
    count: Arc<AtomicUsize>,
}

impl Held {
    pub fn new(listener: Arc<OwnedFd>, cgroup: RunCgroup, timeout: Duration) -> Held {
        Held {
            listener,
            cgroup,
            timeout,
            count: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Holds the call; `false` when too many are held already (the caller denies it).
    pub fn park(&self, p: Parked) -> bool {
        if self.count.fetch_add(1, Ordering::SeqCst) >= MAX_HELD {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        let listener = self.listener.clone();
        let cgroup = self.cgroup.clone();
        let timeout = self.timeout;
        let count = self.count.clone();
        let spawned = std::thread::Builder::new()
            .name("held".into())
            .spawn(move || {
                if p.pause {
                    let _ = cgroup.freeze();
                }
                std::thread::sleep(timeout);
                if seccomp_notify::id_valid(listener.as_fd(), p.id) {
                    let _ =
                        seccomp_notify::send(listener.as_fd(), p.id, Reply::Error(libc::EACCES));
                    let decision = Decision {
                        verdict: Verdict::Deny {
                            errno: libc::EACCES,
                        },
                        rule_id: p.decision.rule_id.clone(),
                        reason: format!(
                            "no answer within {}s: {}",
                            timeout.as_secs(),
                            p.decision.reason
                        ),
                    };
                    let ctx = super::RunContextLite {
                        uid: p.entry_ctx.uid,
                        user: p.entry_ctx.user.clone(),
                    };
                    let entry = super::entry_for_lite(&ctx, p.tid, &p.event, &decision, "timeout");
                    let _ = p.audit.record(entry);
                }
                drop(p.on_allow);
                if p.pause {
                    let _ = cgroup.thaw();
                }
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The run is over: held calls end with their tasks; nothing to answer.
    pub fn deny_all(&self) {}
}
