//! Pending approvals and the daemon's event feed.
//!
//! A held call (`ask`/`pause`) is submitted by its run's monitor; it gets a short id and waits on
//! a channel of its own for an [`Answer`]. Identical requests of one run (same kind, target and
//! rule) are collapsed into one pending request that answers all of them. `agentctl approve` and
//! `deny` answer through [`Approvals::answer`], which checks the asker's authority. Plain
//! `std::sync` so monitor threads and async handlers share it; every critical section is short.
//!
//! Events (`started`, `paused`, `resumed`, `pending`, `decided`, `exited`) go to a bounded
//! broadcast: a subscriber that falls behind loses events (and is disconnected by its handler);
//! the daemon never waits for it.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use agentd_proto::{ApprovalScope, DaemonEvent, ErrorBody, ErrorCode, PendingRequest};
use tokio::sync::broadcast;

use super::registry::Asker;

/// Events buffered per subscriber before it is considered too slow.
const EVENT_BUFFER: usize = 1024;

/// A human's (or the clock's) answer to a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allow {
        scope: ApprovalScope,
        by: u32,
    },
    Deny {
        errno: Option<i32>,
        by: u32,
    },
    /// Nobody answered before the deadline: the policy's default (deny) applies.
    Timeout,
}

struct Slot {
    info: PendingRequest,
    key: String,
    waiters: Vec<SyncSender<Answer>>,
}

pub struct Approvals {
    slots: Mutex<HashMap<String, Slot>>,
    events: broadcast::Sender<DaemonEvent>,
}

impl Default for Approvals {
    fn default() -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Approvals {
            slots: Mutex::new(HashMap::new()),
            events,
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn short_id() -> String {
    let mut b = [0u8; 3];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Approvals {
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.events.subscribe()
    }

    /// Publishes an event to every subscriber (never waits).
    pub fn publish(&self, event: DaemonEvent) {
        let _ = self.events.send(event);
    }

    /// Registers a held call. `req.id` and `req.waiting` are filled here. Returns the request's
    /// id, its deadline (a call joining an identical request shares that request's deadline) and
    /// the receiver its answer arrives on.
    pub fn submit(&self, mut req: PendingRequest) -> (String, u64, Receiver<Answer>) {
        let (tx, rx) = sync_channel(1);
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{:?}",
            req.run,
            req.kind,
            if req.key.is_empty() {
                req.subject()
            } else {
                req.key.clone()
            },
            req.rule
        );
        let mut slots = self.slots();
        if let Some(slot) = slots.values_mut().find(|s| s.key == key) {
            slot.waiters.push(tx);
            slot.info.waiting = u32::try_from(slot.waiters.len()).unwrap_or(u32::MAX);
            return (slot.info.id.clone(), slot.info.deadline_ms, rx);
        }
        let mut id = short_id();
        while slots.contains_key(&id) {
            id = short_id();
        }
        req.id = id.clone();
        req.waiting = 1;
        let deadline = req.deadline_ms;
        let event = DaemonEvent {
            kind: "pending".into(),
            run: req.run.clone(),
            uid: req.uid,
            at_ms: now_ms(),
            pending: Some(req.clone()),
            decision: None,
            by: None,
            exit: None,
        };
        slots.insert(
            id.clone(),
            Slot {
                info: req,
                key,
                waiters: vec![tx],
            },
        );
        drop(slots);
        self.publish(event);
        (id, deadline, rx)
    }

    /// Pending requests the asker may answer, oldest deadline first.
    pub fn list(&self, asker: Asker) -> Vec<PendingRequest> {
        let mut v: Vec<PendingRequest> = self
            .slots()
            .values()
            .filter(|s| asker.may_act_on_uid(s.info.uid))
            .map(|s| s.info.clone())
            .collect();
        v.sort_by_key(|p| (p.deadline_ms, p.id.clone()));
        v
    }

    /// Answers the request `prefix` names, for every call waiting on it.
    pub fn answer(
        &self,
        prefix: &str,
        asker: Asker,
        answer: Answer,
    ) -> Result<PendingRequest, ErrorBody> {
        let mut slots = self.slots();
        // Only requests the asker may answer are matched, so an id prefix reveals nothing of
        // other users' requests.
        let ids: Vec<String> = slots
            .iter()
            .filter(|(id, s)| {
                !prefix.is_empty() && id.starts_with(prefix) && asker.may_act_on_uid(s.info.uid)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let id = match ids.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(ErrorBody::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "no pending request `{prefix}` among those you have permission to answer"
                    ),
                )
                .with_hint("`agentctl pending` lists yours; a request may also have timed out"))
            }
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::NoSuchRun,
                    format!("`{prefix}` matches several requests"),
                )
                .with_hint("give more characters of the id"))
            }
        };
        let Some(slot) = slots.remove(&id) else {
            return Err(ErrorBody::new(
                ErrorCode::NoSuchRun,
                format!("request {id} is gone"),
            ));
        };
        drop(slots);
        for w in &slot.waiters {
            let _ = w.try_send(answer);
        }
        let (decision, by) = match answer {
            Answer::Allow { by, .. } => ("allow", by),
            Answer::Deny { by, .. } => ("deny", by),
            Answer::Timeout => ("timeout", 0),
        };
        self.decided(&slot.info, decision, &format!("uid:{by}"));
        Ok(slot.info)
    }

    /// The request's deadline passed: every call waiting on it gets [`Answer::Timeout`] (unless
    /// an answer arrived first, which is then returned to the caller).
    pub fn expire(&self, id: &str, rx: &Receiver<Answer>) -> Answer {
        let mut slots = self.slots();
        if let Ok(a) = rx.try_recv() {
            return a;
        }
        if let Some(slot) = slots.remove(id) {
            drop(slots);
            for w in &slot.waiters {
                let _ = w.try_send(Answer::Timeout);
            }
            self.decided(&slot.info, "timeout", "timeout");
        }
        rx.try_recv().unwrap_or(Answer::Timeout)
    }

    /// The run ended: its pending requests go away (their waiters see a closed channel).
    pub fn cancel_run(&self, run: &str) {
        self.slots().retain(|_, s| s.info.run != run);
    }

    fn decided(&self, info: &PendingRequest, decision: &str, by: &str) {
        self.publish(DaemonEvent {
            kind: "decided".into(),
            run: info.run.clone(),
            uid: info.uid,
            at_ms: now_ms(),
            pending: Some(info.clone()),
            decision: Some(decision.into()),
            by: Some(by.into()),
            exit: None,
        });
    }
}

#[cfg(test)]
mod tests;
