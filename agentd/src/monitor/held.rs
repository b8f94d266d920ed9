//! Calls held for a human (`ask`, `pause`).
//!
//! Each held call gets a thread of its own that takes the run's filesystem identity (an approved
//! open is still performed as the run's user), submits a pending request to the daemon's
//! [`Approvals`] and waits for `agentctl approve`/`deny` or the policy's approval timeout
//! (then the default, deny, applies). A `pause` rule also freezes the whole run until the
//! answer. At most [`MAX_HELD`] calls of a run wait at once; further asks are denied at once and
//! recorded, so an approval flood cannot exhaust the daemon.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use agentd_policy::{Decision, Event, Verdict};
use agentd_proto::{ApprovalScope, PendingRequest};

use crate::audit::AuditHandle;
use crate::daemon::approvals::{now_ms, Answer, Approvals};
use crate::daemon::control::event;
use crate::daemon::registry::RunEntry;
use crate::sys::creds;
use crate::sys::seccomp_notify::{self, Reply};

pub const MAX_HELD: usize = 32;

/// What to do when a held call is allowed.
pub type OnAllow = Box<dyn FnOnce(BorrowedFd<'_>, u64) -> Reply + Send>;

pub struct EntryCtx {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub user: String,
}

/// One held call.
pub struct Parked {
    pub id: u64,
    pub tid: i32,
    pub comm: String,
    pub event: Event,
    pub decision: Decision,
    pub pause: bool,
    pub on_allow: OnAllow,
    pub audit: AuditHandle,
    pub entry_ctx: EntryCtx,
    /// [`Subject::key`] of the call.
    pub key: String,
}

pub struct Held {
    listener: Arc<OwnedFd>,
    run: Arc<RunEntry>,
    approvals: Arc<Approvals>,
    timeout: Duration,
    count: Arc<AtomicUsize>,
}

/// What an event is about, as pending requests and temporary grants name it: the kind, the
/// target, and the argv of an exec or the access of an open (an approval of `git push x`
/// must not cover `git push --force`, nor one of a read a write).
pub struct Subject {
    pub kind: &'static str,
    /// As shown (a path is shown lossily, UTF-8).
    pub target: String,
    /// As matched: a path's bytes.
    target_bytes: Vec<u8>,
    pub argv: Option<Vec<String>>,
    /// As matched: the argv's bytes, when the caller has them (the event's argv is UTF-8,
    /// lossily).
    raw_argv: Option<Vec<Vec<u8>>>,
    pub access: Option<String>,
}

impl Subject {
    pub fn of(event: &Event) -> Subject {
        let (kind, target, argv, access) = match event {
            Event::Exec { path, argv } => {
                ("exec", path.display().to_string(), Some(argv.clone()), None)
            }
            Event::Open { path, access } => (
                "open",
                path.display().to_string(),
                None,
                Some(format!("{access:?}").to_lowercase()),
            ),
            Event::Connect { addr } => ("connect", super::sockaddr::addr_text(addr), None, None),
        };
        let target_bytes = match event {
            Event::Exec { path, .. } | Event::Open { path, .. } => {
                std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec()
            }
            Event::Connect { .. } => target.as_bytes().to_vec(),
        };
        Subject {
            kind,
            target,
            target_bytes,
            argv,
            raw_argv: None,
            access,
        }
    }

    /// The same, matched on the argv's bytes as the agent passed them.
    pub fn with_raw_argv(mut self, raw: Vec<Vec<u8>>) -> Subject {
        self.raw_argv = Some(raw);
        self
    }

    /// What grants and identical asks are matched on: a digest of the kind, the target, every
    /// argument and the access, each length-prefixed (two different calls never share a key,
    /// however their text would read).
    pub fn key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(self.kind.as_bytes());
        field(&self.target_bytes);
        match (&self.raw_argv, &self.argv) {
            (Some(raw), _) => {
                field(&(raw.len() as u64).to_le_bytes());
                raw.iter().for_each(|a| field(a));
            }
            (None, Some(argv)) => {
                field(&(argv.len() as u64).to_le_bytes());
                argv.iter().for_each(|a| field(a.as_bytes()));
            }
            (None, None) => field(b"-"),
        }
        field(self.access.as_deref().unwrap_or("-").as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The argv as a pending request shows it: at most `MAX_SHOWN_ARGV` bytes of it as JSON
    /// (what it takes on the wire: an empty argument costs 3 bytes, a control character 6), an
    /// argument cut there ending in `…[N more bytes]`, and how many arguments are not shown.
    fn shown_argv(&self) -> (Option<Vec<String>>, u32) {
        let Some(argv) = &self.argv else {
            return (None, 0);
        };
        let wire = |s: &str| serde_json::to_string(s).map_or(usize::MAX, |j| j.len() + 1);
        // The array's brackets, then each argument with its comma.
        let mut budget = agentd_proto::MAX_SHOWN_ARGV - 2;
        let mut shown = Vec::new();
        for a in argv {
            let cost = wire(a);
            if cost <= budget {
                budget -= cost;
                shown.push(a.clone());
                continue;
            }
            // Cut: as many characters as fit, with room kept for the marker.
            let mut kept = String::new();
            let mut left = budget.saturating_sub(32);
            for c in a.chars() {
                let w = wire(c.encode_utf8(&mut [0; 4])).saturating_sub(3);
                if w > left {
                    break;
                }
                left -= w;
                kept.push(c);
            }
            if !kept.is_empty() {
                shown.push(format!("{kept}…[{} more bytes]", a.len() - kept.len()));
            }
            break;
        }
        let hidden = u32::try_from(argv.len() - shown.len()).unwrap_or(u32::MAX);
        (Some(shown), hidden)
    }
}

impl Held {
    pub fn new(
        listener: Arc<OwnedFd>,
        run: Arc<RunEntry>,
        approvals: Arc<Approvals>,
        timeout: Duration,
    ) -> Held {
        Held {
            listener,
            run,
            approvals,
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
        let run = self.run.clone();
        let approvals = self.approvals.clone();
        let timeout = self.timeout;
        let count = self.count.clone();
        let spawned = std::thread::Builder::new()
            .name("held".into())
            .spawn(move || {
                wait_and_answer(p, listener.as_fd(), &run, &approvals, timeout);
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The run is over: held calls end with their tasks.
    pub fn deny_all(&self) {
        self.approvals.cancel_run(&self.run.id);
    }
}

fn wait_and_answer(
    p: Parked,
    listener: BorrowedFd<'_>,
    run: &RunEntry,
    approvals: &Approvals,
    timeout: Duration,
) {
    let who = &p.entry_ctx;
    if creds::assume_fs_identity(who.uid, who.gid, &who.groups).is_err() {
        let _ = seccomp_notify::send(listener, p.id, Reply::Error(libc::EACCES));
        return;
    }
    let subject = Subject::of(&p.event);
    let key = p.key.clone();
    let (argv, argv_hidden) = subject.shown_argv();
    let request = PendingRequest {
        id: String::new(),
        run: run.id.clone(),
        uid: who.uid,
        kind: subject.kind.into(),
        target: subject.target,
        argv,
        argv_hidden,
        access: subject.access,
        key,
        pid: p.tid,
        comm: p.comm.clone(),
        rule: p.decision.rule_id.clone(),
        reason: p.decision.reason.clone(),
        pause: p.pause,
        waiting: 0,
        deadline_ms: now_ms() + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let (req_id, deadline_ms, rx) = approvals.submit(request);
    if p.pause {
        match as_root(who, || run.pause()) {
            Ok(Ok(true)) => approvals.publish(event("paused", run)),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::error!(run = %run.id, error = %e, "pause rule: cannot freeze the run")
            }
            // No identity to trust: undo the freeze if it happened (this thread is then left
            // with root's identity, which can write the freezer), withdraw the request so
            // nobody approves it, and refuse.
            Err(ran) => {
                if ran.is_some() {
                    let _ = run.resume(false);
                }
                let _ = approvals.expire(&req_id, &rx);
                let _ = seccomp_notify::send(listener, p.id, Reply::Error(libc::EACCES));
                return;
            }
        }
    }
    let wait = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
    let answer = match rx.recv_timeout(wait) {
        Ok(a) => a,
        Err(RecvTimeoutError::Timeout) => approvals.expire(&req_id, &rx),
        Err(RecvTimeoutError::Disconnected) => Answer::Timeout,
    };
    let errno = match p.decision.verdict {
        Verdict::Deny { errno } => errno,
        _ => libc::EACCES,
    };
    let (decision, by) = match answer {
        Answer::Allow { scope, by } => {
            let reason = match scope {
                ApprovalScope::Once => format!("approved once by uid {by}: {}", p.decision.reason),
                ApprovalScope::For { seconds } => {
                    format!("approved by uid {by} for {seconds}s: {}", p.decision.reason)
                }
                ApprovalScope::Run => {
                    format!("approved by uid {by} for the run: {}", p.decision.reason)
                }
            };
            (
                verdict(Verdict::Allow, &p.decision, reason),
                format!("uid:{by}"),
            )
        }
        Answer::Deny { errno: e, by } => {
            let e = e.unwrap_or(errno);
            let reason = format!("denied by uid {by}: {}", p.decision.reason);
            (
                verdict(Verdict::Deny { errno: e }, &p.decision, reason),
                format!("uid:{by}"),
            )
        }
        Answer::Timeout => {
            let reason = format!(
                "no answer within {}s: {}",
                timeout.as_secs(),
                p.decision.reason
            );
            (
                verdict(Verdict::Deny { errno }, &p.decision, reason),
                "timeout".into(),
            )
        }
    };
    // Recorded before the agent is answered: once answered it may exit and the run's log close.
    let ctx = super::RunContextLite {
        uid: who.uid,
        user: who.user.clone(),
    };
    let recorded = p
        .audit
        .record(super::entry_for(
            &ctx, p.tid, p.comm, &p.event, &decision, &by,
        ))
        .is_ok();
    // A `pause` rule's freeze ends with the answer, before the call is carried out: carrying
    // it out may need the run (a FIFO's open waits for its other end, which a frozen run would
    // never open).
    if p.pause {
        match as_root(who, || run.resume(false)) {
            Ok(Ok(true)) => approvals.publish(event("resumed", run)),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::error!(run = %run.id, error = %e, "pause rule: cannot thaw the run")
            }
            // This thread could not take the run's identity back: it must carry out nothing.
            Err(thawed) => {
                if matches!(thawed, Some(Ok(true))) {
                    approvals.publish(event("resumed", run));
                }
                let _ = seccomp_notify::send(listener, p.id, Reply::Error(libc::EACCES));
                return;
            }
        }
    }
    let reply = match decision.verdict {
        // Never acted on unrecorded (the monitor stops on the same failure at its next call).
        Verdict::Allow if !recorded => Reply::Error(libc::EIO),
        Verdict::Allow => (p.on_allow)(listener, p.id),
        Verdict::Deny { errno } => Reply::Error(errno),
        Verdict::Ask | Verdict::Pause => Reply::Error(libc::EACCES),
    };
    if reply != Reply::Sent {
        let _ = seccomp_notify::send(listener, p.id, reply);
    }
}

/// Runs `f` with root's filesystem identity (the run's cgroup files are root's), then takes
/// the run's again. `Err` if either switch fails (`Err(None)`: `f` did not run; `Err(Some)`:
/// it ran, and the thread still has root's identity): the thread must then answer nothing but
/// a refusal.
fn as_root<T>(who: &EntryCtx, f: impl FnOnce() -> T) -> Result<T, Option<T>> {
    creds::restore_root_fs_identity().map_err(|_| None)?;
    let out = f();
    match creds::assume_fs_identity(who.uid, who.gid, &who.groups) {
        Ok(()) => Ok(out),
        Err(_) => Err(Some(out)),
    }
}

fn verdict(v: Verdict, asked: &Decision, reason: String) -> Decision {
    Decision {
        verdict: v,
        rule_id: asked.rule_id.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn exec(path: &str, argv: &[&str]) -> Subject {
        Subject::of(&Event::Exec {
            path: PathBuf::from(path),
            argv: argv.iter().map(|a| (*a).to_string()).collect(),
        })
    }

    #[test]
    fn key_tells_apart_paths_that_differ_in_invalid_utf8_only() {
        use std::os::unix::ffi::OsStrExt;
        let open = |bytes: &[u8]| {
            Subject::of(&Event::Open {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(bytes)),
                access: agentd_policy::OpenAccess::Read,
            })
        };
        let (a, b) = (open(b"/w/\xff"), open(b"/w/\xfe"));
        assert_eq!(a.target, b.target, "both show as U+FFFD");
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn key_tells_apart_calls_whose_text_reads_alike() {
        // Both read `/tmp/a: b: c` as text.
        assert_ne!(
            exec("/tmp/a", &["b:", "c"]).key(),
            exec("/tmp/a: b", &["c"]).key()
        );
        assert_ne!(
            exec("/bin/sh", &["a b"]).key(),
            exec("/bin/sh", &["a", "b"]).key()
        );
        assert_ne!(exec("/bin/x", &[]).key(), exec("/bin/x", &[""]).key());
        assert_eq!(exec("/bin/x", &["y"]).key(), exec("/bin/x", &["y"]).key());
        let open = |access| {
            Subject::of(&Event::Open {
                path: PathBuf::from("/w/f"),
                access,
            })
        };
        assert_ne!(
            open(agentd_policy::OpenAccess::Read).key(),
            open(agentd_policy::OpenAccess::Write).key()
        );
    }

    #[test]
    fn key_uses_the_argv_bytes_when_given() {
        let lossy =
            |raw: &[u8]| exec("/bin/rm", &["rm"]).with_raw_argv(vec![b"rm".to_vec(), raw.to_vec()]);
        assert_ne!(lossy(b"\xff").key(), lossy(b"\xfe").key());
        assert_eq!(lossy(b"x").key(), lossy(b"x").key());
    }

    #[test]
    fn shown_argv_stays_within_its_budget_and_counts_the_rest() {
        let big = "x".repeat(3000);
        let argv: Vec<&str> = vec!["prog", &big, &big, "--force"];
        let (shown, hidden) = exec("/bin/prog", &argv).shown_argv();
        let shown = shown.unwrap();
        assert_eq!(shown.len(), 3);
        assert!(shown[2].ends_with(" more bytes]"), "{}", shown[2]);
        assert_eq!(hidden, 1, "--force is counted, not dropped silently");
        let wire = serde_json::to_string(&shown).unwrap().len();
        assert!(wire <= agentd_proto::MAX_SHOWN_ARGV, "{wire}");
        // Empty arguments and control characters cost what they take as JSON.
        let empty = vec![""; 40_000];
        let (shown, hidden) = exec("/bin/prog", &empty).shown_argv();
        assert!(serde_json::to_string(&shown).unwrap().len() <= agentd_proto::MAX_SHOWN_ARGV);
        assert_eq!(shown.unwrap().len() + hidden as usize, 40_000);
        let ctl = "\u{1}".repeat(10_000);
        let (shown, _) = exec("/bin/prog", &["p", &ctl]).shown_argv();
        assert!(serde_json::to_string(&shown).unwrap().len() <= agentd_proto::MAX_SHOWN_ARGV);
        let (shown, hidden) = exec("/bin/ls", &["ls", "-l"]).shown_argv();
        assert_eq!((shown.unwrap().len(), hidden), (2, 0));
    }
}
