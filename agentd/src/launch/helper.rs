//! The launcher process: `agentd __launch`, spawned by the daemon once per run.
//!
//! It is a fresh, single-threaded exec of agentd (so forking and setting up namespaces is safe,
//! unlike in the multi-threaded daemon). Descriptors: 0–2 are the agent's terminal or pipes, 3 is
//! a socket to the daemon. It reads the [`Spec`] (one JSON line), creates the namespaces, forks
//! the run's init, reports [`HelperEvent`]s, and stays until the run ends.
//!
//! Fail closed: when the daemon's end of the socket closes (the daemon died or was killed), the
//! launcher kills the run's init, which takes the whole pid namespace with it.

use std::io::{BufRead, BufReader, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, Pid};

use super::spec::Spec;
use super::{init, ChildReport, HelperEvent, LaunchError};
use crate::sys::{pidfd, process};

/// Largest spec accepted on the socket.
const MAX_SPEC: u64 = 8 * 1024 * 1024;

/// Entry point of `agentd __launch`; returns the process exit code.
pub fn main() -> i32 {
    if process::close_from(4).is_err() {
        return 2;
    }
    let Ok(fd3) = process::take_inherited(3) else {
        return 2;
    };
    let mut ctl = UnixStream::from(fd3);
    let spec = match read_spec(&ctl) {
        Ok(s) => s,
        Err(e) => {
            emit(
                &mut ctl,
                &HelperEvent::SetupFailed {
                    message: format!("launcher: {e}"),
                },
            );
            return 1;
        }
    };
    match launch(&spec, &mut ctl) {
        Ok(()) => 0,
        Err(e) => {
            emit(
                &mut ctl,
                &HelperEvent::SetupFailed {
                    message: e.to_string(),
                },
            );
            1
        }
    }
}

fn read_spec(ctl: &UnixStream) -> std::io::Result<Spec> {
    let mut line = String::new();
    BufReader::new(ctl.take(MAX_SPEC)).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

fn emit(ctl: &mut UnixStream, ev: &HelperEvent) {
    if let Ok(mut line) = serde_json::to_vec(ev) {
        line.push(b'\n');
        let _ = ctl.write_all(&line);
    }
}

fn launch(spec: &Spec, ctl: &mut UnixStream) -> Result<(), LaunchError> {
    // Only the pid namespace is created here (it applies to our next child, the run's init).
    // Everything else init creates for itself: the launcher must stay in the host's mount
    // namespace, or init's pivot_root would move the launcher's root into the view too.
    unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| LaunchError::Namespace(format!("unshare: {e}")))?;
    let pipe =
        |what: &'static str| move |e: nix::Error| LaunchError::Namespace(format!("{what}: {e}"));
    let (report_r, report_w) = pipe2(OFlag::O_CLOEXEC).map_err(pipe("pipe"))?;
    let (result_r, result_w) = pipe2(OFlag::O_CLOEXEC).map_err(pipe("pipe"))?;
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).map_err(pipe("pipe"))?;

    let init_pid =
        match process::fork_single_threaded().map_err(|e| LaunchError::Namespace(e.to_string()))? {
            process::ForkResult::Child => {
                drop(report_r);
                drop(result_r);
                drop(go_w);
                // The daemon's socket must not survive into the run.
                process::close_in_child(ctl.as_raw_fd());
                init::run_init(spec, report_w, result_w, go_r)
            }
            process::ForkResult::Parent { child } => child,
        };
    drop(report_w);
    drop(result_w);
    drop(go_r);

    let mut reports = BufReader::new(std::fs::File::from(report_r));
    let mut go = Some(go_w);
    loop {
        let mut line = String::new();
        // EOF: every writer closed its end, the agent's on a successful exec.
        if reports.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let failure = match serde_json::from_str::<ChildReport>(line.trim_end()) {
            Ok(ChildReport::Listener { fd }) => match hand_over_listener(init_pid, fd, ctl) {
                Ok(()) => {
                    if let Some(w) = go.take() {
                        let _ = nix::unistd::write(&w, b"g");
                    }
                    continue;
                }
                Err(e) => HelperEvent::SetupFailed {
                    message: format!("cannot hand the seccomp listener to agentd: {e}"),
                },
            },
            Ok(ChildReport::SetupFailed { message }) => HelperEvent::SetupFailed { message },
            Ok(ChildReport::ExecFailed { errno, message }) => {
                HelperEvent::ExecFailed { errno, message }
            }
            Err(_) => HelperEvent::SetupFailed {
                message: "the run's init failed silently".into(),
            },
        };
        let _ = kill(init_pid, Signal::SIGKILL);
        let _ = waitpid(init_pid, None);
        emit(ctl, &failure);
        return Ok(());
    }
    drop(go);
    let agent_pid = agent_pid_of(init_pid).unwrap_or(init_pid.as_raw());
    emit(
        ctl,
        &HelperEvent::Started {
            init_pid: init_pid.as_raw(),
            agent_pid,
        },
    );
    supervise(init_pid, result_r, ctl)
}

/// Takes a copy of the agent's listener (descriptor `fd` of the agent) and sends it to the
/// daemon with a `listener` event.
fn hand_over_listener(init: Pid, fd: i32, ctl: &mut UnixStream) -> std::io::Result<()> {
    let agent = agent_pid_of(init).ok_or_else(|| {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", init.as_raw()));
        std::io::Error::other(format!(
            "agent process not found (init {init}: children {children:?})"
        ))
    })?;
    let pidfd = pidfd::open(agent)?;
    let listener = pidfd::get_fd(pidfd.as_fd(), fd)?;
    let mut line = serde_json::to_vec(&HelperEvent::Listener { agent_pid: agent })
        .map_err(std::io::Error::other)?;
    line.push(b'\n');
    let fds = [listener.as_raw_fd()];
    let sent = sendmsg::<()>(
        ctl.as_raw_fd(),
        &[IoSlice::new(&line)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    if sent != line.len() {
        return Err(std::io::Error::other("short write to agentd"));
    }
    Ok(())
}

/// The agent's host pid: init's only child right after the fork.
fn agent_pid_of(init: Pid) -> Option<i32> {
    let path = format!("/proc/{0}/task/{0}/children", init.as_raw());
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Waits for the run's init to exit, or for the daemon to go away (then kills the run).
fn supervise(init_pid: Pid, result_r: OwnedFd, ctl: &mut UnixStream) -> Result<(), LaunchError> {
    let pidfd = pidfd::open(init_pid.as_raw())
        .map_err(|e| LaunchError::Namespace(format!("pidfd: {e}")))?;
    loop {
        let mut fds = [
            PollFd::new(ctl.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(LaunchError::Namespace(format!("poll: {e}"))),
            Ok(_) => {}
        }
        let daemon_event = fds[0].revents().unwrap_or(PollFlags::empty());
        let init_exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        if init_exited {
            break;
        }
        if !daemon_event.is_empty() {
            let mut buf = [0u8; 256];
            match ctl.read(&mut buf) {
                Ok(0) | Err(_) => {
                    // The daemon is gone: no run continues unsupervised.
                    let _ = kill(init_pid, Signal::SIGKILL);
                    let _ = waitpid(init_pid, None);
                    return Ok(());
                }
                Ok(_) => {}
            }
        }
    }
    let _ = waitpid(init_pid, None);
    let mut raw = Vec::new();
    let _ = std::fs::File::from(result_r).read_to_end(&mut raw);
    let status = serde_json::from_slice(&raw).unwrap_or(agentd_proto::ExitStatus::Killed {
        reason: "the run was killed".into(),
    });
    emit(ctl, &HelperEvent::Exited { status });
    Ok(())
}
