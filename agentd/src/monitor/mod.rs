//! THE REFERENCE MONITOR: every exec, open and connect of a run is decided here.
//!
//! One thread per run blocks in `SECCOMP_IOCTL_NOTIF_RECV` itself (sync wake-up set: no hop
//! through the async runtime on the hot path) and, for each notification:
//! recv → decode (copy the arguments out of the agent's memory, re-check `ID_VALID`) →
//! resolve (inside the run's view, as the run's user) → decide (pure: `agentd_policy::decide`)
//! → act → audit.
//!
//! Acting follows the honesty rule (docs/security.md): a decision the kernel walls do not also
//! enforce is never carried out by `CONTINUE` on agent memory. Opens are emulated (the file is
//! opened here, in the run's root, with the run's filesystem identity, and the descriptor is
//! injected with `ADDFD`); IP connects are emulated on the agent's own socket (`pidfd_getfd`).
//! `CONTINUE` is used only where the walls hold whatever the agent rewrites: exec (Landlock
//! EXECUTE and `noexec` mounts), Unix/abstract sockets (the view, Landlock scoping), and every
//! call when the policy has no monitor-only rule for its kind.
//!
//! Fail closed: any error while handling a notification denies that call; if this thread
//! ends, the kernel fails every later mediated call with ENOSYS and the daemon kills the run.

mod act;
mod decode;
mod fifo;
mod held;
mod resolve;
mod sockaddr;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use agentd_policy::{Decision, Event, Policy, Verdict};

use crate::audit::{AuditHandle, Body, Entry, Kind};
use crate::launch::cgroup::RunCgroup;
use crate::sys::seccomp_notify::{self, Notif, Reply};
use crate::sys::{creds, mount_api};

pub use held::Held;

/// The run's policy, replaceable while the run goes on (host names re-resolved).
pub struct PolicyCell(std::sync::RwLock<Arc<Policy>>);

impl PolicyCell {
    pub fn new(p: Policy) -> Arc<PolicyCell> {
        Arc::new(PolicyCell(std::sync::RwLock::new(Arc::new(p))))
    }

    pub fn get(&self) -> Arc<Policy> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, p: Policy) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
    }
}

/// What a monitor needs to know about its run.
pub struct RunContext {
    pub run_id: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub user: String,
    /// Host pid of a process of the run (the agent at hand-over): its root is the view.
    pub agent_pid: i32,
    pub policy: Arc<PolicyCell>,
    pub cgroup: RunCgroup,
    pub audit: AuditHandle,
    /// The run's entry: pause state and temporary grants.
    pub run: Arc<crate::daemon::registry::RunEntry>,
    pub approvals: Arc<crate::daemon::approvals::Approvals>,
}

pub struct Monitor {
    ctx: RunContext,
    listener: Arc<OwnedFd>,
    /// `O_PATH` descriptor of the run's root (its view).
    root: OwnedFd,
    emulate_open: bool,
    emulate_connect: bool,
    held: Held,
    comm: HashMap<i32, String>,
    /// FIFO opens waiting on workers, released if their call goes away.
    fifos: Arc<fifo::FifoWatch>,
    /// The audit log stopped taking records: the monitor stops (fail closed).
    unrecorded: bool,
    /// Worker threads in flight (bounded: see `act::MAX_WORKERS`).
    workers: Arc<std::sync::atomic::AtomicUsize>,
}

/// How the monitor answers one notification.
pub(crate) enum Outcome {
    Reply(Reply),
    /// Parked (ask/pause): answered later by the approval machinery.
    Held,
    /// The task abandoned the call (signal, death): nothing to answer.
    Gone,
}

impl Monitor {
    /// Prepares the monitor of a run: opens the run's root through the agent.
    pub fn new(ctx: RunContext, listener: OwnedFd) -> std::io::Result<Monitor> {
        let root = mount_api::open_path_follow(
            &PathBuf::from(format!("/proc/{}/root", ctx.agent_pid)),
            false,
        )?;
        seccomp_notify::set_sync_wakeup(listener.as_fd())?;
        let listener = Arc::new(listener);
        let policy = ctx.policy.get();
        let held = Held::new(
            listener.clone(),
            ctx.run.clone(),
            ctx.approvals.clone(),
            policy.approval.timeout,
        );
        Ok(Monitor {
            emulate_open: policy.open_needs_emulation(),
            emulate_connect: policy.connect_needs_emulation(),
            ctx,
            listener,
            root,
            held,
            comm: HashMap::new(),
            workers: Arc::default(),
            unrecorded: false,
            fifos: Arc::default(),
        })
    }

    /// Runs the monitor on its own thread until the run's last task is gone. The thread's
    /// result is `true` when it stopped because of that, `false` on any other failure.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<bool>> {
        std::thread::Builder::new()
            .name(format!("monitor-{}", self.ctx.run_id))
            .spawn(move || self.run())
    }

    fn run(mut self) -> bool {
        // Emulated opens must be checked as the run's user: this thread takes its filesystem
        // identity for good (it serves this run only).
        if let Err(e) = creds::assume_fs_identity(self.ctx.uid, self.ctx.gid, &self.ctx.groups) {
            tracing::error!(run = %self.ctx.run_id, error = %e, "monitor cannot take the run's identity; killing the run");
            let _ = self.ctx.cgroup.kill();
            return false;
        }
        // What this thread opens, the agent gets, and a file keeps its opener's credentials
        // (procfs checks them: /proc/<pid>/pagemap opened with CAP_SYS_ADMIN shows physical
        // addresses). So beyond the run's filesystem identity, this thread (and the held and
        // worker threads it starts) keeps only CAP_SYS_PTRACE effective (reading the agent's
        // memory and taking its sockets need it, since its real uid stays 0) and
        // CAP_SETUID/CAP_SETGID (a held `pause` call switches to root's filesystem identity to
        // freeze the run, then back). CAP_SYS_PTRACE does pass procfs's ptrace check for the
        // opener, but not the file modes: another uid's /proc/<pid>/{mem,environ} stay closed
        // (no DAC capability is effective); see docs/security.md for what remains.
        let keep: caps::CapsHashSet = [
            caps::Capability::CAP_SYS_PTRACE,
            caps::Capability::CAP_SETUID,
            caps::Capability::CAP_SETGID,
        ]
        .into_iter()
        .collect();
        if let Err(e) = caps::set(None, caps::CapSet::Effective, &keep) {
            tracing::error!(run = %self.ctx.run_id, error = %e, "monitor cannot drop its capabilities; killing the run");
            let _ = self.ctx.cgroup.kill();
            return false;
        }
        // Emulated creates apply each task's own umask: this thread's must not add to it.
        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).is_ok() {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        }
        let mut notif = seccomp_notify::empty_notif();
        let orphaned = loop {
            match seccomp_notify::recv(self.listener.as_fd(), &mut notif) {
                Ok(()) => {}
                // ENOENT: the task died before we read its notification, or (POLLHUP) every
                // task of the run is gone and the filter is orphaned: then stop.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    if seccomp_notify::orphaned(self.listener.as_fd()) {
                        break true;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(run = %self.ctx.run_id, error = %e, "monitor stops");
                    break false;
                }
            }
            let outcome = self.handle(&notif);
            if self.unrecorded {
                let _ =
                    seccomp_notify::send(self.listener.as_fd(), notif.id, Reply::Error(libc::EIO));
                break false;
            }
            if let Outcome::Reply(reply) = outcome {
                if let Err(e) = seccomp_notify::send(self.listener.as_fd(), notif.id, reply) {
                    tracing::debug!(run = %self.ctx.run_id, error = %e, "reply failed");
                }
            }
        };
        self.held.deny_all();
        orphaned
    }

    /// Decodes, decides, acts and records one notification. Never panics; errors deny.
    fn handle(&mut self, n: &Notif) -> Outcome {
        let tid = i32::try_from(n.pid).unwrap_or(0);
        if tid == 0 {
            return Outcome::Reply(Reply::Error(libc::EPERM));
        }
        match decode::decode(self, n) {
            Ok(decoded) => act::act(self, n, decoded),
            Err(decode::DecodeError::Gone) => Outcome::Gone,
            Err(decode::DecodeError::Errno(e)) => Outcome::Reply(Reply::Error(e)),
        }
    }

    /// The task's command name (cached; refreshed on exec).
    pub(crate) fn comm(&mut self, tid: i32, refresh: bool) -> String {
        if refresh {
            self.comm.remove(&tid);
        }
        if self.comm.len() > 4096 {
            self.comm.clear();
        }
        self.comm
            .entry(tid)
            .or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{tid}/comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_default()
            })
            .clone()
    }

    /// Records a decision. A writer that stopped means the record cannot be kept: the run is
    /// killed rather than allowed to act unrecorded.
    /// Returns `false` when the record could not be kept: the call must then not go ahead.
    fn record(&mut self, tid: i32, event: &Event, decision: &Decision, by: &str) -> bool {
        self.record_marked(tid, event, decision, by, false)
    }

    /// [`Monitor::record`], marking the record `truncated` when the event holds only part of
    /// what the agent passed (a cut argv).
    fn record_marked(
        &mut self,
        tid: i32,
        event: &Event,
        decision: &Decision,
        by: &str,
        cut: bool,
    ) -> bool {
        let refresh = matches!(event, Event::Exec { .. });
        let comm = self.comm(tid, refresh);
        let who = RunContextLite {
            uid: self.ctx.uid,
            user: self.ctx.user.clone(),
        };
        let mut entry = entry_for(&who, tid, comm, event, decision, by);
        if cut {
            entry.body.truncated = Some(true);
        }
        if self.ctx.audit.record(entry).is_err() && !self.unrecorded {
            // This thread cannot write the run's cgroup (it has the run's filesystem
            // identity): it stops, and the daemon kills a run whose monitor stopped.
            tracing::error!(run = %self.ctx.run_id, "audit writer stopped; stopping the monitor");
            self.unrecorded = true;
        }
        !self.unrecorded
    }
}

pub(crate) fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Deny { .. } => "deny",
        Verdict::Ask => "ask",
        Verdict::Pause => "pause",
    }
}

/// The caller identity an audit entry names.
pub(crate) struct RunContextLite {
    pub uid: u32,
    pub user: String,
}

pub(crate) fn entry_for(
    ctx: &RunContextLite,
    tid: i32,
    comm: String,
    event: &Event,
    decision: &Decision,
    by: &str,
) -> Entry {
    let mut body = Body {
        uid: Some(ctx.uid),
        user: Some(ctx.user.clone()),
        pid: Some(tid),
        comm: Some(comm),
        verdict: Some(verdict_name(&decision.verdict).to_string()),
        rule: decision.rule_id.clone(),
        reason: Some(decision.reason.clone()),
        decided_by: Some(by.to_string()),
        ..Body::default()
    };
    if let Verdict::Deny { errno } = decision.verdict {
        body.errno = Some(errno);
    }
    let kind = match event {
        Event::Exec { path, argv } => {
            body.path = Some(path.display().to_string());
            body.argv = Some(argv.clone());
            Kind::Exec
        }
        Event::Open { path, access } => {
            body.path = Some(path.display().to_string());
            body.access = Some(format!("{access:?}").to_lowercase());
            Kind::Open
        }
        Event::Connect { addr } => {
            body.addr = Some(sockaddr::addr_text(addr));
            Kind::Connect
        }
    };
    Entry { kind, body }
}
