//! The run's init (pid 1 of its pid namespace) and the agent process it forks.
//!
//! init: joins the run's cgroups, builds the view, forks the agent, drops every capability and
//! reaps until the agent exits; its own exit then makes the kernel kill whatever is left in the
//! namespace. agent: becomes the caller with no capabilities, applies Landlock and the seccomp
//! filter, and executes the command. Failures before `execve` are reported through the report
//! pipe (close-on-exec: EOF there means the command is running).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{access, AccessFlags};

use super::spec::Spec;
use super::{filter, landlock, mounts, privs, ChildReport, LaunchError};
use crate::sys::{netdev, process, seccomp_notify, tty};
use agentd_proto::ExitStatus;

/// Entry of the run's init. Never returns.
#[allow(clippy::exit)] // a forked child must end here, never unwind into the launcher's code
pub fn run_init(spec: &Spec, report: OwnedFd, result: OwnedFd, go: OwnedFd) -> ! {
    let code = match init(spec, report, result, go) {
        Ok(()) => 0,
        Err((e, report)) => {
            send(
                report,
                &ChildReport::SetupFailed {
                    message: e.to_string(),
                },
            );
            1
        }
    };
    std::process::exit(code)
}

fn send(fd: OwnedFd, msg: &ChildReport) {
    if let Ok(mut line) = serde_json::to_vec(msg) {
        line.push(b'\n');
        let _ = std::fs::File::from(fd).write_all(&line);
    }
}

fn init(
    spec: &Spec,
    report: OwnedFd,
    result: OwnedFd,
    go: OwnedFd,
) -> Result<(), (LaunchError, OwnedFd)> {
    macro_rules! tryr {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Err((e, report)),
            }
        };
    }
    let ns =
        |what: &'static str| move |e: nix::Error| LaunchError::Namespace(format!("{what}: {e}"));
    tryr!(nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(ns("pdeathsig")));
    for procs in &spec.cgroup_procs {
        tryr!(std::fs::write(procs, "0")
            .map_err(|e| LaunchError::Cgroup(procs.display().to_string(), e)));
    }
    let mut flags = CloneFlags::CLONE_NEWCGROUP
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if spec.isolate_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    tryr!(unshare(flags).map_err(ns("namespaces")));
    tryr!(mounts::build_view(spec));
    tryr!(nix::unistd::sethostname(&spec.hostname).map_err(ns("hostname")));
    if spec.isolate_network {
        tryr!(
            netdev::loopback_up().map_err(|e| LaunchError::Namespace(format!("loopback up: {e}")))
        );
    }
    let agent =
        match tryr!(process::fork_single_threaded()
            .map_err(|e| LaunchError::Namespace(format!("fork: {e}"))))
        {
            process::ForkResult::Child => {
                drop(result);
                run_agent(spec, report, go)
            }
            process::ForkResult::Parent { child } => child,
        };
    drop(report);
    drop(go);
    // init keeps root's uid (the agent cannot signal or trace it) but no capability.
    if privs::drop_caps_keep_uid().is_err() {
        let _ = nix::sys::signal::kill(agent, Signal::SIGKILL);
    }
    let status = reap_until(agent);
    let mut out = std::fs::File::from(result);
    let _ = out.write_all(&serde_json::to_vec(&status).unwrap_or_default());
    Ok(())
}

/// Reaps every child (orphans re-parent to init) until `agent` ends; returns its status.
fn reap_until(agent: nix::unistd::Pid) -> ExitStatus {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == agent => return ExitStatus::Code { code },
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == agent => {
                return ExitStatus::Signal { signal: sig as i32 }
            }
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(_) => {
                return ExitStatus::Killed {
                    reason: "agent process vanished".into(),
                }
            }
        }
    }
}

/// The agent process: confine, then exec. Never returns.
#[allow(clippy::exit)] // a forked child must end here, never unwind into the launcher's code
fn run_agent(spec: &Spec, report: OwnedFd, go: OwnedFd) -> ! {
    let msg = match confine_and_exec(spec, &report, go) {
        Err(AgentError::Setup(e)) => ChildReport::SetupFailed {
            message: e.to_string(),
        },
        Err(AgentError::Exec(errno, message)) => ChildReport::ExecFailed { errno, message },
    };
    send(report, &msg);
    std::process::exit(127)
}

enum AgentError {
    Setup(LaunchError),
    Exec(i32, String),
}

impl From<LaunchError> for AgentError {
    fn from(e: LaunchError) -> Self {
        AgentError::Setup(e)
    }
}

/// Writes one report line without giving up the descriptor.
fn report_line(fd: &OwnedFd, msg: &ChildReport) -> Result<(), LaunchError> {
    let mut line = serde_json::to_vec(msg).map_err(|e| LaunchError::Namespace(e.to_string()))?;
    line.push(b'\n');
    let n = nix::unistd::write(fd, &line)
        .map_err(|e| LaunchError::Namespace(format!("report: {e}")))?;
    if n != line.len() {
        return Err(LaunchError::Namespace("short report write".into()));
    }
    Ok(())
}

fn confine_and_exec(
    spec: &Spec,
    report: &OwnedFd,
    go: OwnedFd,
) -> Result<std::convert::Infallible, AgentError> {
    let setup =
        |what: &'static str| move |e: nix::Error| LaunchError::Namespace(format!("{what}: {e}"));
    nix::unistd::setsid().map_err(setup("setsid"))?;
    if spec.tty {
        tty::set_controlling_terminal_stdin()
            .map_err(|e| LaunchError::Namespace(format!("controlling terminal: {e}")))?;
    }
    let ruleset = landlock::prepare(&spec.landlock)?;
    let program = filter::program(&filter::build(&spec.filter)?)?;
    privs::drop_to(&spec.identity)?;
    nix::unistd::chdir(&spec.cwd).map_err(|e| {
        LaunchError::Namespace(format!(
            "cannot enter working directory {}: {e}",
            spec.cwd.display()
        ))
    })?;
    landlock::enforce(ruleset)?;
    let exe = resolve_program(spec).map_err(|(errno, m)| AgentError::Exec(errno, m))?;
    let argv = cstrings(spec.argv.iter().map(|a| a.as_bytes()));
    let envp = cstrings(
        spec.env
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes()),
    );
    let prog = CString::new(exe.as_os_str().as_bytes()).map_err(|_| nul(&spec.argv[0]))?;
    // From here on exec, open and connect wait for the monitor: nothing below may use them
    // before exec (write/read/close are not mediated).
    let listener = seccomp_notify::install_with_listener(&program)
        .map_err(|e| LaunchError::Seccomp(format!("install filter: {e}")))?;
    report_line(
        report,
        &ChildReport::Listener {
            fd: listener.as_raw_fd(),
        },
    )?;
    let mut byte = [0u8; 1];
    match nix::unistd::read(&go, &mut byte) {
        Ok(1) if byte[0] == b'g' => {}
        _ => {
            return Err(LaunchError::Namespace("the launcher went away before exec".into()).into())
        }
    }
    drop(go);
    // The agent must never hold its own listener: it could answer its own notifications.
    drop(listener);
    match nix::unistd::execve(&prog, &argv, &envp) {
        Err(e) => Err(AgentError::Exec(
            e as i32,
            format!("{}: {}", spec.argv[0], e.desc()),
        )),
    }
}

fn nul(arg: &str) -> AgentError {
    AgentError::Exec(libc::EINVAL, format!("{arg}: contains a NUL byte"))
}

fn cstrings<I, B>(items: I) -> Vec<CString>
where
    I: Iterator<Item = B>,
    B: Into<Vec<u8>>,
{
    items.filter_map(|b| CString::new(b).ok()).collect()
}

/// `execvp`'s lookup in the run's `PATH`: ENOENT when nothing is found, EACCES when something
/// was found but none is executable.
fn resolve_program(spec: &Spec) -> Result<PathBuf, (i32, String)> {
    let name = &spec.argv[0];
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/local/bin:/usr/bin:/bin");
    let mut seen = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            seen = true;
            if access(&candidate, AccessFlags::X_OK).is_ok() {
                return Ok(candidate);
            }
        }
    }
    if seen {
        Err((libc::EACCES, format!("{name}: permission denied")))
    } else {
        Err((
            libc::ENOENT,
            format!("{name}: command not found in the run's PATH"),
        ))
    }
}
