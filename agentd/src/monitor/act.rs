//! Decide and act: deny with the rule's errno; continue where the kernel walls hold whatever
//! the agent rewrites; otherwise emulate (open here and inject the descriptor; connect the
//! agent's own socket with the address we judged); hold `ask`/`pause` for a human.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use agentd_policy::{argv_matters, decide, Decision, Event, NetMode, SockAddr, Verdict};
use nix::sys::socket::{SockaddrLike, SockaddrStorage};

use std::sync::atomic::Ordering;

use super::decode::Decoded;
use super::held::Subject;
use super::{Monitor, Outcome};
use crate::sys::seccomp_notify::{self, Notif, Reply};
use crate::sys::{mount_api, pidfd};

/// Calls that may wait long (a connect to another host, a FIFO's open) in flight on worker
/// threads, per run.
pub const MAX_WORKERS: usize = 64;

pub(crate) fn act(m: &mut Monitor, n: &Notif, decoded: Decoded) -> Outcome {
    let tid = i32::try_from(n.pid).unwrap_or(0);
    match decoded {
        Decoded::Nothing => Outcome::Reply(Reply::Continue),
        Decoded::Absent { event } => {
            let policy = m.ctx.policy.get();
            let decided = decide(&policy, &event);
            // Worth a record: a refused path the policy names (hidden, or a rule), e.g. an agent
            // looking for ~/.ssh keys that its view does not even contain. Not: the many probes
            // of paths merely outside the grants (/sys, config files), which would drown the log.
            let named = decided.rule_id.is_some()
                || matches!(&event, Event::Open { path, .. }
                    if policy.filesystem.hide.iter().any(|g| g.matches_or_below(path)));
            if let (Verdict::Deny { .. }, true) = (decided.verdict, named) {
                let refused = Decision {
                    verdict: Verdict::Deny {
                        errno: libc::ENOENT,
                    },
                    rule_id: decided.rule_id,
                    reason: format!(
                        "not in the run's view, and refused by the policy: {}",
                        decided.reason
                    ),
                };
                m.record(tid, &event, &refused, "policy");
            }
            Outcome::Reply(Reply::Error(libc::ENOENT))
        }
        Decoded::Listen { sockfd, backlog } => listen(m, n, tid, sockfd, backlog),
        Decoded::Open {
            event,
            target,
            create,
            flags,
            mode,
            builtin,
        } => {
            let decision = builtin.unwrap_or_else(|| decide(&m.ctx.policy.get(), &event));
            if !m.record(tid, &event, &decision, "policy") {
                return Outcome::Reply(Reply::Error(libc::EIO));
            }
            let emulate = m.emulate_open || create.is_some();
            let open = Opening {
                target,
                create,
                flags,
                mode,
                tid,
                emulate,
            };
            match decision.verdict {
                Verdict::Deny { errno } => Outcome::Reply(Reply::Error(errno)),
                // A FIFO's open waits for the other end, which may be this run's next call.
                Verdict::Allow if open.waits() => {
                    let call = watched(m, open);
                    on_worker(m, n.id, call, Some(Reply::Error(libc::EAGAIN)))
                }
                Verdict::Allow => Outcome::Reply(open.perform(m.listener.as_fd(), n.id)),
                Verdict::Ask | Verdict::Pause if open.waits() => {
                    let call = watched(m, open);
                    let slow = Slow::Yes(Some(Reply::Error(libc::EAGAIN)));
                    let subject = Subject::of(&event);
                    hold(m, n, tid, event, decision, call, slow, subject)
                }
                Verdict::Ask | Verdict::Pause => {
                    let call = Box::new(move |l: BorrowedFd<'_>, id| open.perform(l, id));
                    let subject = Subject::of(&event);
                    hold(m, n, tid, event, decision, call, Slow::No, subject)
                }
            }
        }
        Decoded::Opened {
            event,
            decision,
            fd,
            cloexec,
        } => {
            if !m.record(tid, &event, &decision, "policy") {
                return Outcome::Reply(Reply::Error(libc::EIO));
            }
            Outcome::Reply(match fd {
                None => Reply::Continue,
                Some(fd) => install(m.listener.as_fd(), n.id, &fd, cloexec),
            })
        }
        Decoded::Exec {
            event,
            argv_cut,
            asked,
        } => {
            let policy = m.ctx.policy.get();
            let decided = decide(&policy, &event);
            let decision = match &event {
                // Judged on part of its argv, an exec could slip past an argv rule (`--force`
                // as argument 40,000), or be put to a human who cannot see all of it: refused
                // instead.
                Event::Exec { path, .. }
                    if argv_cut
                        && (argv_matters(&policy, path)
                            || matches!(decided.verdict, Verdict::Ask | Verdict::Pause)) =>
                {
                    Decision {
                        verdict: Verdict::Deny { errno: libc::E2BIG },
                        rule_id: decided.rule_id,
                        reason: format!(
                            "the argument list is longer than the monitor reads ({} arguments \
                             or {} KiB), and argv rules or a human's answer apply to this \
                             program: refused rather than judged on a part of it",
                            super::decode::MAX_ARGS,
                            super::decode::MAX_ARGV_BYTES / 1024
                        ),
                    }
                }
                _ => decided,
            };
            if !m.record_marked(tid, &event, &decision, "policy", argv_cut) {
                return Outcome::Reply(Reply::Error(libc::EIO));
            }
            // exec cannot be emulated: the wall is Landlock EXECUTE and `noexec` mounts, which
            // check the file really executed; the monitor judges and records. A held exec
            // continues only if the agent's memory still holds what was judged (the kernel
            // reads path and argv again).
            match decision.verdict {
                Verdict::Ask | Verdict::Pause => {
                    let Ok(root) = m.root.try_clone() else {
                        return Outcome::Reply(Reply::Error(libc::EMFILE));
                    };
                    let audit = m.ctx.audit.clone();
                    let who = super::RunContextLite {
                        uid: m.ctx.uid,
                        user: m.ctx.user.clone(),
                    };
                    let comm = m.comm(tid, false);
                    let (judged, rule_id) = (event.clone(), decision.rule_id.clone());
                    let subject = Subject::of(&event).with_raw_argv(asked.argv.clone());
                    let call = Box::new(move |_: BorrowedFd<'_>, _: u64| {
                        if asked.unchanged(tid, root.as_fd()) {
                            return Reply::Continue;
                        }
                        let refused = Decision {
                            verdict: Verdict::Deny {
                                errno: libc::EACCES,
                            },
                            rule_id,
                            reason: "approved, but its path, argv or file changed while it \
                                     was held: not run"
                                .into(),
                        };
                        let entry = super::entry_for(&who, tid, comm, &judged, &refused, "policy");
                        // Refused either way: whether the record is kept changes nothing here.
                        let _ = audit.record(entry);
                        Reply::Error(libc::EACCES)
                    });
                    hold(m, n, tid, event, decision, call, Slow::No, subject)
                }
                _ => simple(m, n, tid, event, decision),
            }
        }
        Decoded::Connect {
            event,
            sockfd,
            emulate,
        } => {
            let decision = decide(&m.ctx.policy.get(), &event);
            if !m.record(tid, &event, &decision, "policy") {
                return Outcome::Reply(Reply::Error(libc::EIO));
            }
            let Event::Connect {
                addr: agentd_policy::SockAddr::Inet(addr),
            } = event.clone()
            else {
                return simple(m, n, tid, event, decision);
            };
            let connect = move |listener: std::os::fd::BorrowedFd<'_>, id: u64| {
                if emulate {
                    connect_for(listener, id, tid, sockfd, addr)
                } else {
                    Reply::Continue
                }
            };
            match decision.verdict {
                Verdict::Deny { errno } => Outcome::Reply(Reply::Error(errno)),
                // A blocking connect to another host can take the TCP timeout.
                Verdict::Allow if emulate && !addr.ip().is_loopback() => {
                    on_worker(m, n.id, connect, None)
                }
                Verdict::Allow => Outcome::Reply(connect(m.listener.as_fd(), n.id)),
                Verdict::Ask | Verdict::Pause => {
                    let slow = if emulate && !addr.ip().is_loopback() {
                        Slow::Yes(None)
                    } else {
                        Slow::No
                    };
                    let subject = Subject::of(&event);
                    hold(m, n, tid, event, decision, Box::new(connect), slow, subject)
                }
            }
        }
        Decoded::Address { events, bind } => {
            // Every address is decided and recorded; the first refusal answers the call.
            let mut reply = Reply::Continue;
            let policy = m.ctx.policy.get();
            for event in events {
                let decided = decide(&policy, &event);
                let own_netns = bind
                    && decided.rule_id.is_none()
                    && policy.network.mode == NetMode::None
                    && matches!(
                        event,
                        Event::Connect {
                            addr: SockAddr::Inet(_)
                        }
                    );
                let decision = if own_netns {
                    // No rule names this address, and a socket bound in the run's own network
                    // namespace reaches nothing outside it: the namespace is the wall (a server
                    // binding 0.0.0.0 works). Explicit rules still apply.
                    Decision {
                        verdict: Verdict::Allow,
                        rule_id: Some("builtin:own-network-namespace".into()),
                        reason: "bind inside the run's own network namespace".into(),
                    }
                } else {
                    decided
                };
                if !m.record(tid, &event, &decision, "policy") {
                    return Outcome::Reply(Reply::Error(libc::EIO));
                }
                if let (Verdict::Deny { errno }, Reply::Continue) = (decision.verdict, reply) {
                    reply = Reply::Error(errno);
                }
                if matches!(decision.verdict, Verdict::Ask | Verdict::Pause)
                    && reply == Reply::Continue
                {
                    // Sends are not held (a datagram per approval is no way to work): an
                    // address that needs a human is refused; connect is where to ask.
                    reply = Reply::Error(libc::EACCES);
                }
            }
            Outcome::Reply(reply)
        }
    }
}

/// `listen` on the agent's own socket (a duplicate taken with `pidfd_getfd`, so swapping the
/// descriptor afterwards changes nothing). On the host network (filtered mode) an IP socket
/// may not listen: anyone who can reach the host could pull data out through it.
fn listen(m: &mut Monitor, n: &Notif, tid: i32, sockfd: i32, backlog: i32) -> Outcome {
    let sock = match agent_socket(m.listener.as_fd(), n.id, tid, sockfd) {
        Ok(s) => s,
        Err(e) => return Outcome::Reply(Reply::Error(e)),
    };
    let local: Option<SockaddrStorage> = nix::sys::socket::getsockname(sock.as_raw_fd()).ok();
    let inet = local.as_ref().and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| std::net::SocketAddr::V4((*v4).into()))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|v6| std::net::SocketAddr::V6((*v6).into()))
            })
    });
    if let Some(addr) = inet {
        if m.ctx.policy.get().network.mode == NetMode::Filtered {
            let event = Event::Connect {
                addr: SockAddr::Inet(addr),
            };
            let decision = Decision {
                verdict: Verdict::Deny {
                    errno: libc::EACCES,
                },
                rule_id: Some("builtin:no-listen-on-host-network".into()),
                reason: "an IP socket may not listen on the host network (network = \"filtered\")"
                    .into(),
            };
            if !m.record(tid, &event, &decision, "policy") {
                return Outcome::Reply(Reply::Error(libc::EIO));
            }
            return Outcome::Reply(Reply::Error(libc::EACCES));
        }
    }
    match nix::sys::socket::listen(
        &sock,
        nix::sys::socket::Backlog::new(backlog).unwrap_or(nix::sys::socket::Backlog::MAXCONN),
    ) {
        Ok(()) => Outcome::Reply(Reply::Value(0)),
        Err(e) => Outcome::Reply(Reply::Error(e as i32)),
    }
}

/// An allowed FIFO open to carry out (on a worker or a held call's thread), watched by the
/// run's FIFO watch so that a wait whose caller is gone is released ([`super::fifo`]).
fn watched(m: &Monitor, open: Opening) -> super::held::OnAllow {
    let fifos = m.fifos.clone();
    let listener = m.listener.clone();
    Box::new(move |l: BorrowedFd<'_>, id: u64| {
        let Ok(fifo) = open.target.try_clone() else {
            return Reply::Error(libc::EMFILE);
        };
        fifos.watch(&listener, id, fifo, open.flags);
        let reply = open.perform(l, id);
        fifos.done(id);
        reply
    })
}

/// Carries out a call that may wait long on a worker thread, so the run's other calls are not
/// held up behind it. At most [`MAX_WORKERS`] per run: beyond that the call gets `at_limit`
/// or, if that is `None` (a call that ends by itself, like a connect), is carried out inline,
/// which slows only this run and never grows the daemon.
/// The call runs with the worker's credentials: workers inherit the monitor thread's
/// filesystem identity (the run's user), since it is per thread and copied at spawn.
fn on_worker(
    m: &mut Monitor,
    id: u64,
    call: impl FnOnce(std::os::fd::BorrowedFd<'_>, u64) -> Reply + Send + 'static,
    at_limit: Option<Reply>,
) -> Outcome {
    if m.workers.fetch_add(1, Ordering::SeqCst) >= MAX_WORKERS {
        m.workers.fetch_sub(1, Ordering::SeqCst);
        return Outcome::Reply(at_limit.unwrap_or_else(|| call(m.listener.as_fd(), id)));
    }
    let listener = m.listener.clone();
    let workers = m.workers.clone();
    let spawned = std::thread::Builder::new()
        .name("monitor-worker".into())
        .spawn(move || {
            let reply = call(listener.as_fd(), id);
            let _ = seccomp_notify::send(listener.as_fd(), id, reply);
            workers.fetch_sub(1, Ordering::SeqCst);
        });
    match spawned {
        Ok(_) => Outcome::Held,
        // No thread to be had (the daemon is at its limits): the call fails, as a kernel out of
        // resources would fail it.
        Err(_) => {
            m.workers.fetch_sub(1, Ordering::SeqCst);
            Outcome::Reply(Reply::Error(libc::EAGAIN))
        }
    }
}

/// Exec and Unix-socket calls: the walls hold, so allow = continue.
fn simple(m: &mut Monitor, n: &Notif, tid: i32, event: Event, decision: Decision) -> Outcome {
    match decision.verdict {
        Verdict::Deny { errno } => Outcome::Reply(Reply::Error(errno)),
        Verdict::Allow => Outcome::Reply(Reply::Continue),
        Verdict::Ask | Verdict::Pause => {
            let call = Box::new(|_: BorrowedFd<'_>, _| Reply::Continue);
            let subject = Subject::of(&event);
            hold(m, n, tid, event, decision, call, Slow::No, subject)
        }
    }
}

/// Whether carrying out a call may wait long (a FIFO's open, a connect to another host): then
/// it is never carried out on the monitor thread itself, and the reply it gets when the run's
/// workers are all busy (`None`: carried out inline, for a call that ends by itself).
enum Slow {
    No,
    Yes(Option<Reply>),
}

#[allow(clippy::too_many_arguments)]
fn hold(
    m: &mut Monitor,
    n: &Notif,
    tid: i32,
    event: Event,
    decision: Decision,
    on_allow: super::held::OnAllow,
    slow: Slow,
    subject: Subject,
) -> Outcome {
    // An earlier `approve --for/--run` of the same rule and subject answers at once.
    let key = subject.key();
    if let Some(g) = m
        .ctx
        .run
        .grant_for(decision.rule_id.as_deref(), subject.kind, &key)
    {
        let allowed = Decision {
            verdict: Verdict::Allow,
            rule_id: decision.rule_id.clone(),
            reason: format!(
                "approved earlier for this run by uid {}: {}",
                g.by, decision.reason
            ),
        };
        if !m.record(tid, &event, &allowed, &format!("uid:{}", g.by)) {
            return Outcome::Reply(Reply::Error(libc::EIO));
        }
        return match slow {
            Slow::Yes(at_limit) => on_worker(m, n.id, on_allow, at_limit),
            Slow::No => Outcome::Reply(on_allow(m.listener.as_fd(), n.id)),
        };
    }
    let pause = decision.verdict == Verdict::Pause;
    let comm = m.comm(tid, false);
    let parked = super::held::Parked {
        id: n.id,
        tid,
        comm,
        event: event.clone(),
        decision: decision.clone(),
        pause,
        on_allow,
        audit: m.ctx.audit.clone(),
        entry_ctx: super::held::EntryCtx {
            uid: m.ctx.uid,
            gid: m.ctx.gid,
            groups: m.ctx.groups.clone(),
            user: m.ctx.user.clone(),
        },
        key,
    };
    if m.held.park(parked) {
        Outcome::Held
    } else {
        let refused = Decision {
            verdict: Verdict::Deny {
                errno: libc::EACCES,
            },
            rule_id: decision.rule_id.clone(),
            reason: format!("too many requests waiting for a human: {}", decision.reason),
        };
        m.record(tid, &event, &refused, "policy");
        Outcome::Reply(Reply::Error(libc::EACCES))
    }
}

/// An allowed open, to be carried out.
struct Opening {
    target: OwnedFd,
    create: Option<OsString>,
    flags: i32,
    mode: u32,
    tid: i32,
    emulate: bool,
}

impl Opening {
    /// Whether carrying out the open may wait for someone else: an emulated blocking open of
    /// a FIFO waits for the other end.
    fn waits(&self) -> bool {
        self.emulate
            && self.create.is_none()
            && self.flags & (libc::O_NONBLOCK | libc::O_PATH) == 0
            && nix::sys::stat::fstat(&self.target)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
    }

    fn perform(self, listener: std::os::fd::BorrowedFd<'_>, id: u64) -> Reply {
        // An `O_PATH` descriptor opens no content and cannot be injected (ADDFD refuses path
        // descriptors): the call continues (see docs/security.md).
        if !self.emulate || self.flags & libc::O_PATH != 0 {
            return Reply::Continue;
        }
        let umask = || umask_for(listener, id, self.tid);
        let opened = match &self.create {
            Some(name) => {
                let Some(umask) = umask() else {
                    return Reply::Error(libc::EACCES);
                };
                mount_api::create_beneath(self.target.as_fd(), name, self.flags, self.mode & !umask)
            }
            // An unnamed file in the directory `target`: the task's umask applies.
            None if self.flags & libc::O_TMPFILE == libc::O_TMPFILE => {
                let Some(umask) = umask() else {
                    return Reply::Error(libc::EACCES);
                };
                mount_api::create_beneath(
                    self.target.as_fd(),
                    std::ffi::OsStr::new("."),
                    self.flags,
                    self.mode & !umask,
                )
            }
            None => {
                // O_NOCTTY always: a terminal opened here must never become the daemon's.
                let keep = (self.flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW))
                    | libc::O_NOCTTY;
                mount_api::reopen(self.target.as_fd(), keep)
            }
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => return Reply::Error(e.raw_os_error().unwrap_or(libc::EACCES)),
        };
        install(listener, id, &fd, self.flags & libc::O_CLOEXEC != 0)
    }
}

/// Installs `fd` in the agent and answers the call with its number.
fn install(listener: std::os::fd::BorrowedFd<'_>, id: u64, fd: &OwnedFd, cloexec: bool) -> Reply {
    // Install and answer in one step: atomic (an interrupted agent is never left with a
    // stray descriptor) and, measured here, as fast as ADDFD then SEND or faster (24 vs 32 µs
    // per emulated open+close with the other CPU busy; alike with it idle; see
    // docs/performance.md).
    match seccomp_notify::add_fd_and_reply(listener, id, fd.as_fd(), cloexec) {
        Ok(_) => Reply::Sent,
        Err(e) => Reply::Error(e.raw_os_error().unwrap_or(libc::EMFILE)),
    }
}

/// The umask of the task whose call `id` is (emulated creates apply it; this thread's own
/// umask is 0). Read by tid, then confirmed: the call is still pending, so the task lived
/// throughout and the tid was its own (a held call is carried out long after its
/// notification, and a tid can be reused once its task is gone). `None` if unreadable.
fn umask_for(listener: std::os::fd::BorrowedFd<'_>, id: u64, tid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let v = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    let umask = u32::from_str_radix(v.trim(), 8).ok()?;
    seccomp_notify::id_valid(listener, id).then_some(umask)
}

/// The calling task's socket `sockfd` (a duplicate taken with `pidfd_getfd`), taken by tid and
/// then confirmed to be the calling task's, as in [`umask_for`]. Else the errno to answer.
fn agent_socket(
    listener: std::os::fd::BorrowedFd<'_>,
    id: u64,
    tid: i32,
    sockfd: i32,
) -> Result<OwnedFd, i32> {
    match pidfd::get_fd_of_thread(tid, sockfd) {
        Ok(s) if seccomp_notify::id_valid(listener, id) => Ok(s),
        Ok(_) => Err(libc::ESRCH),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EBADF)),
    }
}

/// Connects the agent's own socket ([`agent_socket`]) to the address we judged — never to what
/// the agent's memory says now.
fn connect_for(
    listener: std::os::fd::BorrowedFd<'_>,
    id: u64,
    tid: i32,
    sockfd: i32,
    addr: std::net::SocketAddr,
) -> Reply {
    let sock = match agent_socket(listener, id, tid, sockfd) {
        Ok(s) => s,
        Err(e) => return Reply::Error(e),
    };
    // A v4 address on an AF_INET6 socket must be given v4-mapped.
    let addr = match (addr, socket_family(&sock)) {
        (std::net::SocketAddr::V4(a), Some(libc::AF_INET6)) => std::net::SocketAddr::V6(
            std::net::SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        ),
        _ => addr,
    };
    let target = SockaddrStorage::from(addr);
    match nix::sys::socket::connect(sock.as_raw_fd(), &target) {
        Ok(()) => Reply::Value(0),
        Err(e) => Reply::Error(e as i32),
    }
}

pub(super) fn socket_family(sock: &OwnedFd) -> Option<i32> {
    let addr: SockaddrStorage = nix::sys::socket::getsockname(sock.as_raw_fd()).ok()?;
    addr.family().map(|f| f as i32)
}
